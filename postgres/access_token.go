package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

var tokenName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

const tokenColumns = `id, name, role, scope_layer, scope_code, created_by, created_at, expires_at, revoked_at, last_used_at`

func scanToken(row pgx.Row) (*gridmap.Token, error) {
	var t gridmap.Token
	var sl, sc *string
	if err := row.Scan(&t.ID, &t.Name, &t.Role, &sl, &sc, &t.CreatedBy, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt, &t.LastUsedAt); err != nil {
		return nil, err
	}
	if sl != nil && sc != nil {
		t.Scope = &gridmap.Scope{Layer: *sl, Code: *sc}
	}
	return &t, nil
}

// CreateToken creates a token and returns its secret, shown this once. An
// empty name is filled with token- and 8 random hex digits; an empty CreatedBy with the
// caller in ctx. Returns EINVALID for a bad name, role, scope or an expiry
// in the past, ECONFLICT for a name in use, EFORBIDDEN for access the
// caller in ctx may not grant.
func (s *AccessStore) CreateToken(ctx context.Context, t *gridmap.Token) (string, error) {
	if t.Name == "" {
		t.Name = "token-" + hex.EncodeToString(randomBytes(4))
	}
	if !tokenName.MatchString(t.Name) {
		return "", gridmap.Errorf(gridmap.EINVALID, "token name %q must be 1-64 letters, digits, '_', '.' or '-'", t.Name)
	}
	if t.ExpiresAt != nil && !t.ExpiresAt.After(time.Now()) {
		return "", gridmap.Errorf(gridmap.EINVALID, "token %s would expire at %s, which has passed", t.Name, t.ExpiresAt.Format(time.RFC3339))
	}
	if t.CreatedBy == "" {
		t.CreatedBy = gridmap.CallerFrom(ctx).Actor()
	}
	scope := blankScope(t.Scope)
	secret, hash := newSecret(tokenPrefix)
	var out *gridmap.Token
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if err := checkAccess(ctx, tx, nil, t.Role, scope, nil); err != nil {
			return err
		}
		sl, sc := scopeColumns(scope)
		var err error
		out, err = scanToken(tx.QueryRow(ctx, `INSERT INTO tokens (name, hash, role, scope_layer, scope_code, created_by, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+tokenColumns, t.Name, hash[:], t.Role, sl, sc, t.CreatedBy, t.ExpiresAt))
		return err
	})
	if err != nil {
		return "", translate(err, "token "+t.Name)
	}
	*t = *out
	return secret, nil
}

// Tokens lists every token by name, revoked and expired ones too.
func (s *AccessStore) Tokens(ctx context.Context) ([]*gridmap.Token, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY name`)
	if err != nil {
		return nil, translate(err, "reading tokens")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*gridmap.Token, error) { return scanToken(r) })
	return out, translate(err, "reading tokens")
}

// RevokeToken revokes a token by name, at once on every instance that
// follows AccessChannel. Revoking a revoked token changes nothing.
// Returns ENOTFOUND, EFORBIDDEN for a token the caller in ctx may not
// grant.
func (s *AccessStore) RevokeToken(ctx context.Context, name string) error {
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		t, err := scanToken(tx.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE name = $1 FOR UPDATE`, name))
		if errors.Is(err, pgx.ErrNoRows) {
			return gridmap.Errorf(gridmap.ENOTFOUND, "token %q does not exist", name)
		} else if err != nil {
			return err
		}
		if err := checkGrant(ctx, tx, t.Role, t.Scope); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, t.ID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, AccessChannel, "token "+name)
		return err
	})
	// Dropped whatever came of the write: a revocation may have committed
	// with its answer lost.
	s.cache.drop()
	if err != nil {
		return translate(err, "token "+name)
	}
	return nil
}

func invalidToken() error {
	return gridmap.Errorf(gridmap.EUNAUTHORIZED, "the token is unknown, revoked or expired")
}

// TokenCaller returns the caller a token's secret stands for. Returns
// EUNAUTHORIZED for an unknown, revoked or expired token.
func (s *AccessStore) TokenCaller(ctx context.Context, secret string) (*gridmap.Caller, error) {
	key, ok := secretHash(tokenPrefix, secret)
	if !ok {
		return nil, invalidToken()
	}
	now := time.Now()
	gen := s.cache.generation()
	if e, ok := s.cache.get(key, now); ok {
		if e.expiresAt != nil && !now.Before(*e.expiresAt) {
			return nil, invalidToken()
		}
		s.touchToken(ctx, key, e.caller.ID, now)
		c := *e.caller // each request its own, whatever it does with it
		return &c, nil
	}
	t, err := scanToken(s.db.Pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens
		WHERE hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`, key[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		s.cache.dropKey(key)
		return nil, invalidToken()
	} else if e, ok := s.cache.stale(key, now); err != nil && ok && Unreachable(err) &&
		(e.expiresAt == nil || now.Before(*e.expiresAt)) {
		c := *e.caller // the database is down: as last read (accessOutageGrace)
		return &c, nil
	} else if err != nil {
		return nil, translate(err, "reading a token")
	}
	c := gridmap.Caller{Kind: gridmap.CallerToken, ID: t.ID, Name: t.Name, Role: t.Role, Scope: t.Scope}
	s.cache.put(key, &cachedCaller{caller: &c, expiresAt: t.ExpiresAt, cachedAt: now}, gen)
	s.touchToken(ctx, key, t.ID, now)
	out := c
	return &out, nil
}

// touchToken writes a token's last use at most once a minute. A failure
// is logged, not returned: the token was checked.
func (s *AccessStore) touchToken(ctx context.Context, key [sha256.Size]byte, id int64, now time.Time) {
	if !s.touches.due(key, now, time.Minute) {
		return
	}
	if _, err := s.db.Pool.Exec(ctx, `UPDATE tokens SET last_used_at = now() WHERE id = $1`, id); err != nil {
		s.db.Logger.Warn("recording a token's use failed", "token", id, "err", err)
	}
}
