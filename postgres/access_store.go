package postgres

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// AccessStore keeps accounts, sessions, tokens and the audit log
// (gridmap.AccessService). Session and token lookups, on every request's
// path, are cached in memory while Follow listens for changes elsewhere.
//
// Writes that grant access (a new or changed account, a token, a sign-in
// link) are limited by the caller ctx carries, if any: it may grant no
// role stronger than its own, and a scoped caller nothing outside its
// scope (EFORBIDDEN). With no caller (the command line) anything goes.
type AccessStore struct {
	db *DB

	// SessionLifetime is how long a session lasts from its sign-in,
	// however busy; IdleTimeout ends one unused for that long (up to a
	// quarter of it, at most a minute, early: last use is written at most
	// that often). Set them before the store is used.
	SessionLifetime time.Duration
	IdleTimeout     time.Duration

	hashing   chan struct{} // slots for argon2 work
	dummyHash string        // see dummyPasswordHash

	cache     callerCache
	touches   touchLimiter
	listening chan struct{}
	listenOK  sync.Once
}

// Session defaults.
const (
	DefaultSessionLifetime = 12 * time.Hour
	DefaultIdleTimeout     = 2 * time.Hour
)

// NewAccessStore returns an AccessStore over db with the default session
// lifetime and idle timeout. Call Follow to cache lookups.
func NewAccessStore(db *DB) *AccessStore {
	return &AccessStore{db: db, SessionLifetime: DefaultSessionLifetime, IdleTimeout: DefaultIdleTimeout,
		hashing: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))), dummyHash: dummyPasswordHash(),
		listening: make(chan struct{})}
}

var _ gridmap.AccessService = (*AccessStore)(nil)

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.@-]{0,63}$`)

const maxDisplayName = 200

// accountColumns read an account from accounts a, scanned by scanAccount.
const accountColumns = `a.id, a.username, a.display_name, a.role, a.scope_layer, a.scope_code,
	a.person_layer, a.person_grid, a.person_name, a.disabled_at IS NOT NULL, a.created_at, a.updated_at, a.last_sign_in_at`

// accountRow is an account as stored: its scope as written, before the
// person's grid stands in for a missing one.
type accountRow struct {
	gridmap.Account
	scope *gridmap.Scope
}

// scanAccount scans accountColumns, then the columns after them into
// extra.
func scanAccount(row pgx.Row, extra ...any) (*accountRow, error) {
	var a accountRow
	var sl, sc, pl, pg, pn *string
	dest := append([]any{&a.ID, &a.Username, &a.DisplayName, &a.Role, &sl, &sc, &pl, &pg, &pn,
		&a.Disabled, &a.CreatedAt, &a.UpdatedAt, &a.LastSignInAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if sl != nil && sc != nil {
		a.scope = &gridmap.Scope{Layer: *sl, Code: *sc}
	}
	if pl != nil && pg != nil && pn != nil {
		a.Person = &gridmap.PersonRef{Layer: *pl, Grid: *pg, Name: *pn}
	}
	a.Scope = effectiveScope(a.scope, a.Person)
	return &a, nil
}

// effectiveScope is an account's scope: the one it was given, else the
// grid of the person it is linked to, else none.
func effectiveScope(scope *gridmap.Scope, person *gridmap.PersonRef) *gridmap.Scope {
	switch {
	case scope != nil:
		return scope
	case person != nil:
		return &gridmap.Scope{Layer: person.Layer, Code: person.Grid}
	}
	return nil
}

func (a *accountRow) caller() *gridmap.Caller {
	return &gridmap.Caller{Kind: gridmap.CallerAccount, ID: a.ID, Name: a.Username, DisplayName: a.DisplayName,
		Role: a.Role, Scope: a.Scope, Person: a.Person}
}

// scopeColumns and personColumns are the nullable column values of a scope
// and a person link.
func scopeColumns(s *gridmap.Scope) (layer, code *string) {
	if s == nil {
		return nil, nil
	}
	return &s.Layer, &s.Code
}

func personColumns(p *gridmap.PersonRef) (layer, grid, name *string) {
	if p == nil {
		return nil, nil, nil
	}
	return &p.Layer, &p.Grid, &p.Name
}

func displayNameOr(name, username string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return username, nil
	}
	if utf8.RuneCountInString(name) > maxDisplayName {
		return "", gridmap.Errorf(gridmap.EINVALID, "a display name may have at most %d characters", maxDisplayName)
	}
	return name, nil
}

// AddAccount creates an account with a password. An account linked to a
// person and given no scope is scoped to the person's grid. Returns
// EINVALID for a bad name, role, scope, person or password (saying which),
// ECONFLICT for a username in use, EFORBIDDEN for access the caller in
// ctx may not grant.
func (s *AccessStore) AddAccount(ctx context.Context, a *gridmap.Account, password string) error {
	if !usernamePattern.MatchString(a.Username) {
		return gridmap.Errorf(gridmap.EINVALID, "username %q must be 1-64 lower-case letters, digits, '_', '.', '@' or '-', starting with a letter or digit", a.Username)
	}
	name, err := displayNameOr(a.DisplayName, a.Username)
	if err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	if err := gridmap.CheckRole(a.Role); err != nil {
		return err
	}
	scope, person := blankScope(a.Scope), blankPerson(a.Person)
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	var row *accountRow
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if err := checkAccess(ctx, tx, nil, a.Role, scope, person); err != nil {
			return err
		}
		sl, sc := scopeColumns(scope)
		pl, pg, pn := personColumns(person)
		row, err = scanAccount(tx.QueryRow(ctx, `INSERT INTO accounts AS a (username, display_name, password_hash, role,
				scope_layer, scope_code, person_layer, person_grid, person_name, disabled_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $10 THEN now() END)
			RETURNING `+accountColumns, a.Username, name, hash, a.Role, sl, sc, pl, pg, pn, a.Disabled))
		return err
	})
	if err != nil {
		return translate(err, "account "+a.Username)
	}
	*a = row.Account
	return nil
}

// blankScope is nil for a scope with no code; blankPerson likewise for a
// person link with neither grid nor name.
func blankScope(s *gridmap.Scope) *gridmap.Scope {
	if s == nil || s.Code == "" {
		return nil
	}
	return s
}

func blankPerson(p *gridmap.PersonRef) *gridmap.PersonRef {
	if p == nil || p.Grid == "" && p.Name == "" {
		return nil
	}
	return p
}

// checkAccess checks that the role, scope and person link given to an
// account or a token are valid (EINVALID), those of them that differ from
// prev's (nil for a new one), and that the caller in ctx may grant them
// (EFORBIDDEN). A scope or person kept as it was stays valid when its grid
// is gone: it then holds nothing.
func checkAccess(ctx context.Context, q querier, prev *accountRow, role string, scope *gridmap.Scope, person *gridmap.PersonRef) error {
	if err := gridmap.CheckRole(role); err != nil {
		return err
	}
	var prevScope *gridmap.Scope
	var prevPerson *gridmap.PersonRef
	if prev != nil {
		prevScope, prevPerson = prev.scope, prev.Person
	}
	if scope != nil && !sameScope(scope, prevScope) {
		if err := checkScopeGrid(ctx, q, scope); err != nil {
			return err
		}
	}
	personScopes := scope == nil && prevScope != nil // the person's grid becomes the scope
	if person != nil && (prevPerson == nil || *person != *prevPerson || personScopes) {
		if err := checkPerson(ctx, q, person, scope == nil); err != nil {
			return err
		}
	}
	return checkGrant(ctx, q, role, effectiveScope(scope, person))
}

// checkScopeGrid returns EINVALID unless scope names a current grid of a
// comprehensive layer.
func checkScopeGrid(ctx context.Context, q querier, scope *gridmap.Scope) error {
	var kind string
	var exists bool
	err := q.QueryRow(ctx, `SELECT l.kind, EXISTS (SELECT 1 FROM grid_versions g WHERE g.layer_id = l.id AND g.code = $2 AND g.valid_to IS NULL)
		FROM layers l WHERE l.id = $1`, scope.Layer, scope.Code).Scan(&kind, &exists)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return gridmap.Errorf(gridmap.EINVALID, "scope layer %q does not exist", scope.Layer)
	case err != nil:
		return err
	case kind != gridmap.KindComprehensive:
		return gridmap.Errorf(gridmap.EINVALID, "scope layer %q is %s; a scope is a grid of a comprehensive layer", scope.Layer, kind)
	case !exists:
		return gridmap.Errorf(gridmap.EINVALID, "scope grid %q is not a current grid of layer %s", scope.Code, scope.Layer)
	}
	return nil
}

// checkPerson returns EINVALID unless the grid has a person of that name;
// when the person's grid is to be the scope, it must be a comprehensive
// layer's.
func checkPerson(ctx context.Context, q querier, p *gridmap.PersonRef, scopes bool) error {
	var kind string
	err := q.QueryRow(ctx, `SELECT l.kind FROM grid_people p JOIN layers l ON l.id = p.layer_id
		WHERE p.layer_id = $1 AND p.grid_code = $2 AND p.name = $3 LIMIT 1`, p.Layer, p.Grid, p.Name).Scan(&kind)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return gridmap.Errorf(gridmap.EINVALID, "grid %s of layer %q has no person named %q", p.Grid, p.Layer, p.Name)
	case err != nil:
		return err
	case scopes && kind != gridmap.KindComprehensive:
		return gridmap.Errorf(gridmap.EINVALID, "person %q is in %s layer %s; give the account a scope in a comprehensive layer", p.Name, kind, p.Layer)
	}
	return nil
}

// checkGrant returns EFORBIDDEN when the caller in ctx may not grant role
// and scope: a role stronger than its own (gridmap.Caller.Can), or, for a
// scoped caller, a scope whose grid its scope does not hold
// (gridmap.Scope.Holds: its own grid or one below it).
func checkGrant(ctx context.Context, q querier, role string, scope *gridmap.Scope) error {
	c := gridmap.CallerFrom(ctx)
	if c == nil {
		return nil
	}
	if !c.Can(role) {
		return gridmap.Errorf(gridmap.EFORBIDDEN, "role %s is stronger than your own (%s)", role, c.Role)
	}
	outer := c.ScopeOf()
	if outer == nil {
		return nil
	}
	if scope == nil {
		return gridmap.Errorf(gridmap.EFORBIDDEN, "you act only inside grid %s of layer %s, and may grant nothing wider", outer.Code, outer.Layer)
	}
	rows, err := q.Query(ctx, `WITH RECURSIVE up (code, parent_code, depth) AS (
			SELECT code, parent_code, 0 FROM grid_versions WHERE layer_id = $1 AND code = $2 AND valid_to IS NULL
			UNION
			SELECT g.code, g.parent_code, up.depth + 1 FROM grid_versions g JOIN up ON g.code = up.parent_code
			WHERE g.layer_id = $1 AND g.valid_to IS NULL AND up.depth < 64)
		SELECT code FROM up ORDER BY depth DESC`, scope.Layer, scope.Code)
	if err != nil {
		return err
	}
	chain, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gridmap.GridRef, error) {
		var g gridmap.GridRef
		err := r.Scan(&g.Code)
		return g, err
	})
	if err != nil {
		return err
	}
	if !outer.Holds(scope.Layer, chain) {
		return gridmap.Errorf(gridmap.EFORBIDDEN, "grid %s of layer %s is outside grid %s of layer %s, where you act",
			scope.Code, scope.Layer, outer.Code, outer.Layer)
	}
	return nil
}

// Account returns one account. Returns ENOTFOUND.
func (s *AccessStore) Account(ctx context.Context, username string) (*gridmap.Account, error) {
	a, err := scanAccount(s.db.Pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts a WHERE a.username = $1`, username))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "account %q does not exist", username)
	} else if err != nil {
		return nil, translate(err, "reading account "+username)
	}
	return &a.Account, nil
}

// Accounts lists every account by username.
func (s *AccessStore) Accounts(ctx context.Context) ([]*gridmap.Account, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts a ORDER BY a.username`)
	if err != nil {
		return nil, translate(err, "reading accounts")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*gridmap.Account, error) {
		a, err := scanAccount(r)
		if err != nil {
			return nil, err
		}
		return &a.Account, nil
	})
	return out, translate(err, "reading accounts")
}

// ChangeAccount changes an account. Disabling it or changing its password,
// role or scope (its person's grid included, where that is its scope) ends
// its sessions; disabling it or changing its password also voids its
// unused sign-in links. Returns ENOTFOUND, EINVALID, EFORBIDDEN for an
// account or a change the caller in ctx may not make.
func (s *AccessStore) ChangeAccount(ctx context.Context, username string, ch gridmap.AccountChange) (*gridmap.Account, error) {
	var hash *string
	if ch.Password != nil {
		if err := checkPassword(*ch.Password); err != nil {
			return nil, err
		}
		h, err := s.hashPassword(ctx, *ch.Password)
		if err != nil {
			return nil, err
		}
		hash = &h
	}
	var out *accountRow
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		cur, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts a WHERE a.username = $1 FOR UPDATE`, username))
		if errors.Is(err, pgx.ErrNoRows) {
			return gridmap.Errorf(gridmap.ENOTFOUND, "account %q does not exist", username)
		} else if err != nil {
			return err
		}
		if err := checkGrant(ctx, tx, cur.Role, cur.Scope); err != nil {
			return err
		}
		next, err := changed(cur, ch)
		if err != nil {
			return err
		}
		if cur.Scope != nil && next.Scope == nil && ch.Scope == nil {
			// Unlinking the person an account's area came from must not
			// quietly give it the whole service.
			return gridmap.Errorf(gridmap.EINVALID, "account %s gets its area from its person; give it a scope in the same change", username)
		}
		if err := checkAccess(ctx, tx, cur, next.Role, next.scope, next.Person); err != nil {
			return err
		}
		if err := keepAnAdmin(ctx, tx, cur, next); err != nil {
			return err
		}
		sl, sc := scopeColumns(next.scope)
		pl, pg, pn := personColumns(next.Person)
		out, err = scanAccount(tx.QueryRow(ctx, `UPDATE accounts a SET display_name = $2, role = $3,
				scope_layer = $4, scope_code = $5, person_layer = $6, person_grid = $7, person_name = $8,
				disabled_at = CASE WHEN $9 THEN coalesce(a.disabled_at, now()) END,
				password_hash = coalesce($10, a.password_hash), updated_at = now()
			WHERE a.id = $1 RETURNING `+accountColumns,
			cur.ID, next.DisplayName, next.Role, sl, sc, pl, pg, pn, next.Disabled, hash))
		if err != nil {
			return err
		}
		return endAccess(ctx, tx, cur, out, hash != nil)
	})
	s.cache.drop() // whatever came of the write: it may have committed
	if err != nil {
		return nil, translate(err, "account "+username)
	}
	return &out.Account, nil
}

// changed returns cur with ch applied.
func changed(cur *accountRow, ch gridmap.AccountChange) (*accountRow, error) {
	next := *cur
	if ch.DisplayName != nil {
		name, err := displayNameOr(*ch.DisplayName, cur.Username)
		if err != nil {
			return nil, err
		}
		next.DisplayName = name
	}
	if ch.Role != nil {
		next.Role = *ch.Role
	}
	if ch.Scope != nil {
		next.scope = blankScope(ch.Scope)
	}
	if ch.Person != nil {
		next.Person = blankPerson(ch.Person)
	}
	if ch.Disabled != nil {
		next.Disabled = *ch.Disabled
	}
	next.Scope = effectiveScope(next.scope, next.Person)
	return &next, nil
}

// endAccess ends what an account change takes away (see ChangeAccount)
// and tells every process to forget the callers it cached.
func endAccess(ctx context.Context, tx pgx.Tx, cur, next *accountRow, newPassword bool) error {
	disabled := next.Disabled && !cur.Disabled
	if disabled || newPassword || next.Role != cur.Role || !sameScope(next.Scope, cur.Scope) {
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL`, cur.ID); err != nil {
			return err
		}
	}
	if disabled || newPassword {
		if _, err := tx.Exec(ctx, `DELETE FROM signin_links WHERE account_id = $1 AND used_at IS NULL`, cur.ID); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, AccessChannel, "account "+cur.Username)
	return err
}

func sameScope(a, b *gridmap.Scope) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// accountsLockID is the advisory lock that makes EnsureAdmin create one
// admin when several instances start on an empty database at once.
const accountsLockID = 0x6772_6964_7573_6572 // "griduser"

// EnsureAdmin creates the account admin (role admin, display name
// Administrator) with a random password (gridmap.NewPassword) when no account
// exists at all, and returns that password with created set. Instances
// starting together create one.
func (s *AccessStore) EnsureAdmin(ctx context.Context) (password string, created bool, err error) {
	var exists bool
	if err := s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts)`).Scan(&exists); err != nil || exists {
		return "", false, translate(err, "reading accounts")
	}
	password = gridmap.NewPassword()
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return "", false, err
	}
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(accountsLockID)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO accounts (username, display_name, password_hash, role)
			SELECT 'admin', 'Administrator', $1, $2 WHERE NOT EXISTS (SELECT 1 FROM accounts)`, hash, gridmap.RoleAdmin)
		created = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil || !created {
		return "", false, translate(err, "creating the first admin")
	}
	return password, true, nil
}

// EnsureDemoAccounts creates an account demo-ROLE for each role, all with
// password, all scoped to scope. Names
// that exist are left as they are. Returns EINVALID for a bad scope or
// password, whether or not the accounts exist.
func (s *AccessStore) EnsureDemoAccounts(ctx context.Context, scope gridmap.Scope, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	if err := checkScopeGrid(ctx, s.db.Pool, &scope); err != nil {
		return translate(err, "demo accounts")
	}
	for _, role := range gridmap.Roles {
		username := "demo-" + role
		// Every demo account, admin too, is limited to the demo street:
		// their password is published.
		a := &gridmap.Account{Username: username, DisplayName: "Demo " + role, Role: role, Scope: &scope}
		if _, err := s.Account(ctx, username); err == nil {
			continue
		} else if gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
			return err
		}
		if err := s.AddAccount(ctx, a, password); err != nil && gridmap.ErrorCode(err) != gridmap.ECONFLICT {
			return err
		}
	}
	return nil
}

// keepAnAdmin refuses a change that would leave no enabled, unscoped admin:
// nobody could then manage accounts, layers or categories.
func keepAnAdmin(ctx context.Context, tx pgx.Tx, cur, next *accountRow) error {
	wasAdmin := cur.Role == gridmap.RoleAdmin && cur.Scope == nil && !cur.Disabled
	isAdmin := next.Role == gridmap.RoleAdmin && next.Scope == nil && !next.Disabled
	if !wasAdmin || isAdmin {
		return nil
	}
	// Such changes take turns, and each counts what the one before
	// committed: two at once cannot both pass.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('gridmap last admin', 0))`); err != nil {
		return err
	}
	var others int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM accounts WHERE role = 'admin' AND scope_code IS NULL AND person_grid IS NULL
		AND disabled_at IS NULL AND id <> $1`, cur.ID).Scan(&others); err != nil {
		return err
	}
	if others == 0 {
		return gridmap.Errorf(gridmap.ECONFLICT, "%s is the last admin for the whole service; make another first", cur.Username)
	}
	return nil
}
