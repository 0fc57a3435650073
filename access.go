package gridmap

import (
	"context"
	"crypto/rand"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Roles, weakest first: each may do what the ones before it may.
const (
	RoleViewer     = "viewer"     // reads maps, grids and reports
	RoleReporter   = "reporter"   // files reports (a grid worker, a hotline system)
	RoleDispatcher = "dispatcher" // moves reports through the workflow
	RoleEditor     = "editor"     // redraws boundaries
	RoleAdmin      = "admin"      // layers, categories, departments, calendar, accounts, tokens, audit
)

// Roles lists the roles weakest first.
var Roles = []string{RoleViewer, RoleReporter, RoleDispatcher, RoleEditor, RoleAdmin}

// RoleRank is a role's place in Roles (0 = viewer), or -1 for a name that
// is not a role.
func RoleRank(role string) int { return slices.Index(Roles, role) }

// CheckRole returns EINVALID naming the roles for a name that is not one.
func CheckRole(role string) error {
	if RoleRank(role) < 0 {
		return Errorf(EINVALID, "role %q is not one of viewer, reporter, dispatcher, editor, admin", role)
	}
	return nil
}

// Scope is a grid of a comprehensive layer: a scoped caller acts only inside
// its subtree (the grid and every grid below it).
type Scope struct {
	Layer string `json:"layer"`
	Code  string `json:"code"`
}

// Holds reports whether a grid of layer whose chain (root first, the grid
// last) is chain lies inside the scope: the scope's grid is in the chain.
// A nil scope holds everything.
func (s *Scope) Holds(layer string, chain []GridRef) bool {
	if s == nil {
		return true
	}
	if layer != s.Layer {
		return false
	}
	for _, g := range chain {
		if g.Code == s.Code {
			return true
		}
	}
	return false
}

// HoldsReport reports whether a report belongs to the scope: its primary
// grid or one of its co-owners lies inside it, that is the scope's grid is
// among ReportScopeCodes. A report no grid owns (outside coverage) belongs
// only to unscoped callers.
func (s *Scope) HoldsReport(a *Assignment) bool {
	if s == nil {
		return true
	}
	return a != nil && a.Layer == s.Layer && slices.Contains(ReportScopeCodes(a), s.Code)
}

// HoldsLocation reports whether a new report may be filed by a caller of
// the scope: its primary grid lies inside it. (A co-owner is not enough: a
// large stated accuracy would make the neighbours' streets co-owners.)
func (s *Scope) HoldsLocation(a *Assignment) bool {
	return s == nil || a != nil && a.Primary != nil && s.Holds(a.Layer, a.Primary.Chain)
}

// ReportScopeCodes are the codes of every grid in the chains of a report's
// owners, primary and co-owners, sorted: the jurisdictions the report
// belongs to. Stores keep them beside the assignment, for finding a
// jurisdiction's reports.
func ReportScopeCodes(a *Assignment) []string {
	codes := []string{}
	if a == nil {
		return codes
	}
	if a.Primary != nil {
		for _, g := range a.Primary.Chain {
			codes = append(codes, g.Code)
		}
	}
	for _, o := range a.CoOwners {
		for _, g := range o.Chain {
			codes = append(codes, g.Code)
		}
	}
	slices.Sort(codes)
	return slices.Compact(codes)
}

// Caller is who is making a request: a signed-in account, a token, or
// nobody (anonymous, where the deployment opens reads to everyone).
type Caller struct {
	// Kind is "account", "token" or "anonymous".
	Kind string `json:"kind"`
	// Name is the account's username or the token's name.
	Name        string `json:"name"`
	DisplayName string `json:"display_name,omitempty"`
	Role        string `json:"role"`
	Scope       *Scope `json:"scope,omitempty"`
	// Person is the grid person an account acts as, if linked.
	Person *PersonRef `json:"person,omitempty"`
	// ID is the account's or the token's id.
	ID int64 `json:"-"`
}

// Caller kinds.
const (
	CallerAccount   = "account"
	CallerToken     = "token"
	CallerAnonymous = "anonymous"
)

// Can reports whether the caller's role is role or stronger. A nil caller is
// the service itself (command line, background jobs) and may do anything.
func (c *Caller) Can(role string) bool {
	return c == nil || RoleRank(c.Role) >= RoleRank(role) && RoleRank(role) >= 0
}

// ScopeOf is the caller's scope; nil for an unscoped or nil caller.
func (c *Caller) ScopeOf() *Scope {
	if c == nil {
		return nil
	}
	return c.Scope
}

// Actor names the caller in report histories and the audit log:
// "user:NAME" or "token:NAME"; "" for the service itself.
func (c *Caller) Actor() string {
	switch {
	case c == nil:
		return ""
	case c.Kind == CallerAccount:
		return "user:" + c.Name
	case c.Kind == CallerToken:
		return "token:" + c.Name
	}
	return c.Kind
}

type callerKey struct{}

// NewContextWithCaller returns ctx carrying the caller. Stores read it to
// keep scoped callers inside their subtree.
func NewContextWithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller ctx carries, nil when it carries none (the
// service itself).
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// PersonRef links an account to one of a grid's people (网格长, 网格员), by
// the grid and the person's name, which survive the grid's people being
// replaced.
type PersonRef struct {
	Layer string `json:"layer"`
	Grid  string `json:"grid"`
	Name  string `json:"name"`
}

// Account is a person who signs in to the web pages.
type Account struct {
	ID          int64      `json:"-"`
	Username    string     `json:"username"`
	DisplayName string     `json:"display_name"`
	Role        string     `json:"role"`
	Scope       *Scope     `json:"scope,omitempty"`
	Person      *PersonRef `json:"person,omitempty"`
	Disabled    bool       `json:"disabled"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	// LastSignInAt is the last successful sign-in.
	LastSignInAt *time.Time `json:"last_sign_in_at,omitempty"`
}

// AccountChange changes an account; nil fields are kept. Scope with an
// empty Code removes the scope; Person likewise.
type AccountChange struct {
	DisplayName *string    `json:"display_name"`
	Role        *string    `json:"role"`
	Scope       *Scope     `json:"scope"`
	Person      *PersonRef `json:"person"`
	Disabled    *bool      `json:"disabled"`
	Password    *string    `json:"password"`
}

// Token is a key another system calls with. Its secret is shown once, at
// creation, and stored only as a hash.
type Token struct {
	ID         int64      `json:"-"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Scope      *Scope     `json:"scope,omitempty"`
	CreatedBy  string     `json:"created_by,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Session is a signed-in account's session. Secret goes in the cookie and
// CSRF in the X-CSRF-Token header of every write the cookie authenticates;
// both are known only when the session is made.
type Session struct {
	Secret    string    `json:"-"`
	CSRF      string    `json:"csrf_token"`
	Caller    *Caller   `json:"caller"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AuditEntry is one write, as the audit log keeps it.
type AuditEntry struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Role      string    `json:"role"`
	Action    string    `json:"action"` // "PUT /v1/categories/:code"
	Target    string    `json:"target"` // "/v1/categories/road"
	RequestID string    `json:"request_id"`
	Status    int       `json:"status"` // the HTTP status answered
	Address   string    `json:"address,omitempty"`
	// Before and After are the target's versions around the write, where
	// it has versions (grids, reports' revisions, data versions).
	Before any `json:"before,omitempty"`
	After  any `json:"after,omitempty"`
}

// AuditFilter selects audit entries, newest first; Cursor is the last id of
// the previous page.
type AuditFilter struct {
	Actor  string
	Target string // a prefix of the target
	From   *time.Time
	To     *time.Time
	Limit  int
	Cursor int64
}

// AccessService keeps accounts, sessions, tokens and the audit log.
type AccessService interface {
	// AddAccount creates an account with a password. Returns EINVALID for a
	// bad name, role or scope, ECONFLICT for a username in use.
	AddAccount(ctx context.Context, a *Account, password string) error
	// Account returns one account. Returns ENOTFOUND.
	Account(ctx context.Context, username string) (*Account, error)
	Accounts(ctx context.Context) ([]*Account, error)
	// ChangeAccount changes an account; disabling it or changing its
	// password, role or scope ends its sessions. Returns ENOTFOUND, EINVALID.
	ChangeAccount(ctx context.Context, username string, ch AccountChange) (*Account, error)
	// SignIn checks a password and opens a session. Returns EUNAUTHORIZED
	// for a wrong name or password or a disabled account (the same answer
	// for each), ETOOMANY while sign-ins for the name or the address are
	// slowed down after failures.
	SignIn(ctx context.Context, username, password, address string) (*Session, error)
	// SignInWithLink opens a session with a one-time sign-in link's secret.
	// Returns EUNAUTHORIZED for a used, expired or unknown link.
	SignInWithLink(ctx context.Context, secret string) (*Session, error)
	// CreateSignInLink makes a one-time sign-in link for an account, valid
	// for ttl, and returns its secret; links made before for the account
	// stop working.
	CreateSignInLink(ctx context.Context, username string, ttl time.Duration) (string, error)
	// SessionCaller returns the caller of a live session and its CSRF token.
	// Returns EUNAUTHORIZED for an unknown, expired, idle, revoked session
	// or a disabled account.
	SessionCaller(ctx context.Context, secret string) (*Caller, string, error)
	// SignOut ends a session.
	SignOut(ctx context.Context, secret string) error
	// CreateToken creates a token and returns its secret. Returns EINVALID,
	// ECONFLICT for a name in use.
	CreateToken(ctx context.Context, t *Token) (string, error)
	Tokens(ctx context.Context) ([]*Token, error)
	// RevokeToken revokes a token by name. Returns ENOTFOUND.
	RevokeToken(ctx context.Context, name string) error
	// TokenCaller returns the caller a token's secret stands for. Returns
	// EUNAUTHORIZED for an unknown, revoked or expired token.
	TokenCaller(ctx context.Context, secret string) (*Caller, error)
	// Audit appends entries to the audit log, in one statement.
	Audit(ctx context.Context, entries ...*AuditEntry) error
	// AuditLog returns a page of entries, newest first, and the next cursor.
	AuditLog(ctx context.Context, f AuditFilter) ([]*AuditEntry, int64, error)
}

// passwordAlphabet leaves out characters read wrongly when a password is
// passed on by phone or on paper (0/O, 1/l/I).
const passwordAlphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// NewPassword returns a random password of 20 characters (about 116 bits).
func NewPassword() string {
	var b strings.Builder
	buf := make([]byte, 1)
	for b.Len() < 20 {
		rand.Read(buf)
		// Rejection sampling keeps every character equally likely.
		if int(buf[0]) < 256/len(passwordAlphabet)*len(passwordAlphabet) {
			b.WriteByte(passwordAlphabet[int(buf[0])%len(passwordAlphabet)])
		}
	}
	return b.String()
}

// ParseLifetime reads how long a token lives: a Go duration ("720h") or a
// number of days ("30d"). Returns EINVALID saying the forms.
func ParseLifetime(v string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d <= 0 || d > maxLifetime {
		return 0, Errorf(EINVALID, "lifetime %q must be a positive duration of at most ten years, such as 720h or 30d", v)
	}
	return d, nil
}

// maxLifetime bounds a token's lifetime (and keeps days from overflowing).
const maxLifetime = 10 * 365 * 24 * time.Hour
