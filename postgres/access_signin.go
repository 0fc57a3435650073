package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// Slowing down sign-ins: a name that failed nameFailures times within
// signInWindow, or an address that failed addressFailures times, waits
// signInDelay after its latest failure before it may try again.
const (
	signInWindow    = 15 * time.Minute
	nameFailures    = 5
	addressFailures = 20
	maxSignInDelay  = 15 * time.Minute
)

// signInDelay is how long after its latest failure a name or address with
// failures failed sign-ins in the window waits: nothing below limit, then
// one second, doubling with each further failure, at most maxSignInDelay.
func signInDelay(failures, limit int) time.Duration {
	if failures < limit {
		return 0
	}
	if n := failures - limit; n < 20 {
		return min(time.Second<<n, maxSignInDelay)
	}
	return maxSignInDelay
}

// signInWait is how long, at now, a name or an address with failures
// failed sign-ins in the window, the latest at last, still waits.
func signInWait(failures int, last *time.Time, limit int, now time.Time) time.Duration {
	d := signInDelay(failures, limit)
	if d == 0 || last == nil {
		return 0
	}
	return last.Add(d).Sub(now)
}

func wrongSignIn() error {
	return gridmap.Errorf(gridmap.EUNAUTHORIZED, "wrong username or password")
}

// SignIn checks a password and opens a session. The username is read in
// lower case. Returns EUNAUTHORIZED for an unknown name, a wrong password
// or a disabled account alike (the unknown name costs a password check
// too), ETOOMANY with RetryAfter while the name or the address is slowed
// down after failures (see signInDelay); a success clears the name's
// failures.
func (s *AccessStore) SignIn(ctx context.Context, username, password, address string) (*gridmap.Session, error) {
	username = strings.ToLower(strings.TrimSpace(username))
	if !usernamePattern.MatchString(username) {
		return nil, wrongSignIn() // no account has such a name: nothing to count it against
	}
	attempt, err := s.beginSignIn(ctx, username, address)
	if err != nil {
		return nil, err
	}
	var id int64
	var disabled bool
	hash := s.dummyHash
	err = s.db.Pool.QueryRow(ctx, `SELECT id, password_hash, disabled_at IS NOT NULL FROM accounts WHERE username = $1`, username).
		Scan(&id, &hash, &disabled)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, translate(err, "signing in")
	}
	found := err == nil
	ok, err := s.verifyPassword(ctx, password, hash)
	if err != nil {
		return nil, err
	}
	if !ok || !found || disabled {
		return nil, wrongSignIn() // the attempt stays counted as a failure
	}
	var session *gridmap.Session
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		// The password checked must still be the account's, and the
		// account enabled: a change committed meanwhile wins.
		a, err := scanAccount(tx.QueryRow(ctx, `UPDATE accounts a SET last_sign_in_at = now()
			WHERE a.id = $1 AND a.password_hash = $2 AND a.disabled_at IS NULL RETURNING `+accountColumns, id, hash))
		if errors.Is(err, pgx.ErrNoRows) {
			return wrongSignIn()
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM signin_failures WHERE username = $1 OR id = $2`, username, attempt); err != nil {
			return err
		}
		session, err = s.openSession(ctx, tx, a, address)
		return err
	})
	return session, translate(err, "signing in")
}

// beginSignIn counts a sign-in attempt as a failure before its password is
// checked, in a short transaction of its own, so that concurrent attempts
// (on any instance) see each other and a burst of guesses at once gets no
// more checks than guesses one by one; the success that follows deletes
// it. (So more than five sign-ins of one name, or twenty from one address,
// under way at the same instant make the next wait a second.) Returns the
// attempt's id, or ETOOMANY while the name or the address waits. An empty
// address is not counted.
func (s *AccessStore) beginSignIn(ctx context.Context, username, address string) (int64, error) {
	var attempt int64
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		// Attempts for one name, or from one address, take turns here;
		// always the name first, so two never wait for each other.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('gridmap sign-in name ' || $1, 0))`, username); err != nil {
			return err
		}
		if address != "" {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('gridmap sign-in address ' || $1, 0))`, address); err != nil {
				return err
			}
		}
		// The clock, not now(): this transaction may have waited for the
		// locks while later ones recorded attempts.
		var byName, byAddress int
		var lastByName, lastByAddress *time.Time
		var now time.Time
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE username = $1), max(at) FILTER (WHERE username = $1),
				count(*) FILTER (WHERE address = $2), max(at) FILTER (WHERE address = $2), clock_timestamp()
			FROM signin_failures
			WHERE (username = $1 OR address = $2 AND $2 <> '') AND at > clock_timestamp() - $3::float8 * interval '1 second'`,
			username, address, signInWindow.Seconds()).Scan(&byName, &lastByName, &byAddress, &lastByAddress, &now); err != nil {
			return err
		}
		wait := signInWait(byName, lastByName, nameFailures, now)
		if address != "" {
			wait = max(wait, signInWait(byAddress, lastByAddress, addressFailures, now))
		}
		if wait > 0 {
			wait = wait.Truncate(time.Second) + time.Second
			return &gridmap.Error{Code: gridmap.ETOOMANY, RetryAfter: wait,
				Message: "too many failed sign-ins; try again in " + wait.String()}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM signin_failures WHERE at < now() - $1::float8 * interval '1 second'`, signInWindow.Seconds()); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO signin_failures (username, address, at) VALUES ($1, $2, clock_timestamp()) RETURNING id`,
			username, address).Scan(&attempt)
	})
	return attempt, translate(err, "signing in")
}

// openSession opens a session for a signed-in account, and deletes the
// sessions that ended more than a day ago.
func (s *AccessStore) openSession(ctx context.Context, tx pgx.Tx, a *accountRow, address string) (*gridmap.Session, error) {
	secret, hash := newSecret(sessionPrefix)
	ses := &gridmap.Session{Secret: secret, CSRF: csrfToken(secret), Caller: a.caller()}
	if err := tx.QueryRow(ctx, `INSERT INTO sessions (hash, account_id, expires_at, address)
		VALUES ($1, $2, now() + $3::float8 * interval '1 second', $4) RETURNING expires_at`,
		hash[:], a.ID, s.SessionLifetime.Seconds(), address).Scan(&ses.ExpiresAt); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE expires_at < now() - interval '1 day'`); err != nil {
		return nil, err
	}
	s.touches.wrote(hash, time.Now())
	return ses, nil
}

// touchEvery is how often a session's last use is written: once a
// minute, or a quarter of the idle timeout when that is shorter.
func (s *AccessStore) touchEvery() time.Duration {
	return min(time.Minute, s.IdleTimeout/4)
}

func invalidSession() error {
	return gridmap.Errorf(gridmap.EUNAUTHORIZED, "the session has ended; sign in again")
}

// SessionCaller returns the caller of a live session and its CSRF token.
// Returns EUNAUTHORIZED for an unknown, expired, idle or revoked session,
// or a disabled account's.
func (s *AccessStore) SessionCaller(ctx context.Context, secret string) (*gridmap.Caller, string, error) {
	key, ok := secretHash(sessionPrefix, secret)
	if !ok {
		return nil, "", invalidSession()
	}
	now := time.Now()
	gen := s.cache.generation()
	if e, ok := s.cache.get(key, now); ok {
		if !now.Before(*e.expiresAt) {
			return nil, "", invalidSession()
		}
		// Idle here may be busy on another instance: the database knows.
		if now.Sub(e.lastSeen) <= s.IdleTimeout {
			s.cache.seen(key, now)
			s.touchSession(ctx, key, now)
			c := *e.caller // each request its own, whatever it does with it
			return &c, e.csrf, nil
		}
	}
	var expires time.Time
	a, err := scanAccount(s.db.Pool.QueryRow(ctx, `SELECT `+accountColumns+`, s.expires_at
		FROM sessions s JOIN accounts a ON a.id = s.account_id
		WHERE s.hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
		  AND s.last_seen_at > now() - $2::float8 * interval '1 second' AND a.disabled_at IS NULL`,
		key[:], s.IdleTimeout.Seconds()), &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		s.cache.dropKey(key)
		return nil, "", invalidSession()
	} else if e, ok := s.cache.stale(key, now); err != nil && ok && Unreachable(err) &&
		now.Before(*e.expiresAt) && now.Sub(e.lastSeen) <= s.IdleTimeout {
		s.cache.seen(key, now)
		c := *e.caller // the database is down: as last read (accessOutageGrace)
		return &c, e.csrf, nil
	} else if err != nil {
		return nil, "", translate(err, "reading a session")
	}
	c, csrf := a.caller(), csrfToken(secret)
	s.cache.put(key, &cachedCaller{caller: c, csrf: csrf, expiresAt: &expires, lastSeen: now, cachedAt: now}, gen)
	s.touchSession(ctx, key, now)
	out := *c
	return &out, csrf, nil
}

// touchSession writes a session's last use when it is due. A failure is
// logged, not returned: the session was checked, and the next write is a
// minute away at most.
func (s *AccessStore) touchSession(ctx context.Context, key [sha256.Size]byte, now time.Time) {
	if !s.touches.due(key, now, s.touchEvery()) {
		return
	}
	if _, err := s.db.Pool.Exec(ctx, `UPDATE sessions SET last_seen_at = greatest(last_seen_at, now()) WHERE hash = $1`, key[:]); err != nil {
		s.db.Logger.Warn("recording a session's use failed", "err", err)
	}
}

// SignOut ends a session; an unknown or ended one is no error.
func (s *AccessStore) SignOut(ctx context.Context, secret string) error {
	key, ok := secretHash(sessionPrefix, secret)
	if !ok {
		return nil
	}
	// The notice names the session, so that a sign-out, the commonest
	// change by far, drops only its own entry on every instance.
	_, err := s.db.Pool.Exec(ctx, `WITH ended AS (
			UPDATE sessions SET revoked_at = now() WHERE hash = $1 AND revoked_at IS NULL RETURNING 1)
		SELECT pg_notify($2, $3) FROM ended`, key[:], AccessChannel, sessionNotice+hex.EncodeToString(key[:]))
	s.cache.dropKey(key) // whatever came of the write: it may have committed
	if err != nil {
		return translate(err, "signing out")
	}
	return nil
}

// Longest validity of a sign-in link.
const maxLinkTTL = 7 * 24 * time.Hour

// CreateSignInLink makes a one-time sign-in link for an account, valid for
// ttl (at most seven days), and returns its secret. Returns ENOTFOUND,
// EINVALID for a disabled account or a bad ttl, EFORBIDDEN for an account
// the caller in ctx may not grant.
func (s *AccessStore) CreateSignInLink(ctx context.Context, username string, ttl time.Duration) (string, error) {
	if ttl <= 0 || ttl > maxLinkTTL {
		return "", gridmap.Errorf(gridmap.EINVALID, "a sign-in link is valid for more than nothing and at most %v", maxLinkTTL)
	}
	secret, hash := newSecret(linkPrefix)
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		a, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts a WHERE a.username = $1`, username))
		if errors.Is(err, pgx.ErrNoRows) {
			return gridmap.Errorf(gridmap.ENOTFOUND, "account %q does not exist", username)
		} else if err != nil {
			return err
		}
		if err := checkGrant(ctx, tx, a.Role, a.Scope); err != nil {
			return err
		}
		if a.Disabled {
			return gridmap.Errorf(gridmap.EINVALID, "account %s is disabled; enable it first", username)
		}
		// One link per account works at a time: a new one ends those
		// printed before (in logs that outlive them).
		if _, err := tx.Exec(ctx, `DELETE FROM signin_links WHERE expires_at < now() - interval '1 day'
			OR (account_id = $1 AND used_at IS NULL)`, a.ID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO signin_links (hash, account_id, expires_at)
			VALUES ($1, $2, now() + $3::float8 * interval '1 second')`, hash[:], a.ID, ttl.Seconds())
		return err
	})
	if err != nil {
		return "", translate(err, "sign-in link for "+username)
	}
	return secret, nil
}

// SignInWithLink opens a session with a one-time sign-in link's secret;
// of several uses at once, one wins. Returns EUNAUTHORIZED for a used,
// expired or unknown link, or a disabled account's.
func (s *AccessStore) SignInWithLink(ctx context.Context, secret string) (*gridmap.Session, error) {
	unusable := gridmap.Errorf(gridmap.EUNAUTHORIZED, "this sign-in link has been used, has expired or is unknown; ask for a new one")
	key, ok := secretHash(linkPrefix, secret)
	if !ok {
		return nil, unusable
	}
	var session *gridmap.Session
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		a, err := scanAccount(tx.QueryRow(ctx, `WITH used AS (
				UPDATE signin_links SET used_at = now() WHERE hash = $1 AND used_at IS NULL AND expires_at > now()
				RETURNING account_id)
			UPDATE accounts a SET last_sign_in_at = now() FROM used
			WHERE a.id = used.account_id AND a.disabled_at IS NULL RETURNING `+accountColumns, key[:]))
		if errors.Is(err, pgx.ErrNoRows) {
			return unusable
		} else if err != nil {
			return err
		}
		session, err = s.openSession(ctx, tx, a, "")
		return err
	})
	return session, translate(err, "signing in with a link")
}
