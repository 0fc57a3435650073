package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

const goodPassword = "correct horse battery"

// accessWorld makes a database of its own with comprehensive layer acc
// (district D > streets S1, S2 > grids G11 under S1 and G21 under S2, Li
// Wei working in G11) and departmental layer beats (beat P1, officer Zhang
// in it), and returns an AccessStore over it.
func accessWorld(t *testing.T, opts postgres.Options) (*postgres.DB, *postgres.AccessStore) {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDBWith(t, opts)
	layers, grids := postgres.NewLayerStore(db), postgres.NewGridStore(db)
	load := func(l *gridmap.Layer, features ...string) {
		t.Helper()
		if _, err := layers.PutLayer(ctx, l); err != nil {
			t.Fatal(err)
		}
		r := geo.NewFeatureReader(strings.NewReader(collection(features...)), geo.DefaultFieldMap)
		if _, err := grids.Import(ctx, l.ID, r, gridmap.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	load(&gridmap.Layer{ID: "acc", Kind: gridmap.KindComprehensive, Levels: []string{"district", "street", "grid"}},
		feature("D", "district", "", rect(121, 31, 121.04, 31.02)),
		feature("S1", "street", "D", rect(121, 31, 121.02, 31.02)),
		feature("S2", "street", "D", rect(121.02, 31, 121.04, 31.02)),
		feature("G11", "grid", "S1", rect(121, 31, 121.02, 31.02)),
		feature("G21", "grid", "S2", rect(121.02, 31, 121.04, 31.02)))
	load(&gridmap.Layer{ID: "beats", Kind: gridmap.KindDepartmental, Levels: []string{"beat"}},
		feature("P1", "beat", "", rect(121, 31, 121.04, 31.02)))
	if err := grids.SetPeople(ctx, "acc", "G11", []gridmap.Person{{Role: gridmap.RoleGridWorker, Name: "Li Wei"}}); err != nil {
		t.Fatal(err)
	}
	if err := grids.SetPeople(ctx, "beats", "P1", []gridmap.Person{{Role: gridmap.RolePolice, Name: "Zhang"}}); err != nil {
		t.Fatal(err)
	}
	return db, postgres.NewAccessStore(db)
}

// follow starts s following access changes until the test ends.
func follow(t *testing.T, s *postgres.AccessStore) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go s.Follow(ctx)
	select {
	case <-s.Listening():
	case <-time.After(time.Minute):
		t.Fatal("the access store did not start listening")
	}
}

func addAccount(t *testing.T, s *postgres.AccessStore, name, role string, scope *gridmap.Scope) *gridmap.Account {
	t.Helper()
	a := &gridmap.Account{Username: name, Role: role, Scope: scope}
	if err := s.AddAccount(context.Background(), a, goodPassword); err != nil {
		t.Fatalf("adding account %s: %v", name, err)
	}
	return a
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if gridmap.ErrorCode(err) != code {
		t.Errorf("%s: got %v, want %s", what, err, code)
	}
}

func TestAccessSecretsAreNeverStoredInClear(t *testing.T) {
	ctx := context.Background()
	db, s := accessWorld(t, postgres.Options{})
	addAccount(t, s, "clerk", gridmap.RoleViewer, nil)
	session, err := s.SignIn(ctx, "clerk", goodPassword, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	token, err := s.CreateToken(ctx, &gridmap.Token{Name: "hotline", Role: gridmap.RoleReporter})
	if err != nil {
		t.Fatal(err)
	}
	link, err := s.CreateSignInLink(ctx, "clerk", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{session.Secret, token, link} {
		if len(secret) != 47 || !strings.HasPrefix(secret, "gm") {
			t.Errorf("secret %q: want a 4-character prefix and 43 characters of base64url", secret)
		}
	}
	if !strings.HasPrefix(token, "gmt_") || !strings.HasPrefix(session.Secret, "gms_") || !strings.HasPrefix(link, "gml_") {
		t.Errorf("prefixes: token %.4s, session %.4s, link %.4s", token, session.Secret, link)
	}
	if session.CSRF == "" || strings.Contains(session.Secret, session.CSRF) {
		t.Errorf("CSRF token %q", session.CSRF)
	}
	secrets := map[string]string{"password": goodPassword, "session": session.Secret, "session body": session.Secret[4:],
		"csrf": session.CSRF, "token": token, "token body": token[4:], "link": link, "link body": link[4:]}

	rows, err := db.Pool.Query(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name IN ('accounts', 'sessions', 'tokens', 'signin_links')
		  AND data_type IN ('text', 'bytea') ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	type column struct{ Table, Name, Kind string }
	columns, err := pgx.CollectRows(rows, pgx.RowToStructByPos[column])
	if err != nil {
		t.Fatal(err)
	}
	if len(columns) < 15 {
		t.Fatalf("only %d text and bytea columns found: %v", len(columns), columns)
	}
	for _, c := range columns {
		for what, secret := range secrets {
			var n int
			// Text columns are searched as text, bytea ones for the raw bytes.
			q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE position($1::text IN %s) > 0`,
				pgx.Identifier{c.Table}.Sanitize(), pgx.Identifier{c.Name}.Sanitize())
			if c.Kind == "bytea" {
				q = fmt.Sprintf(`SELECT count(*) FROM %s WHERE position(convert_to($1::text, 'UTF8') IN %s) > 0`,
					pgx.Identifier{c.Table}.Sanitize(), pgx.Identifier{c.Name}.Sanitize())
			}
			if err := db.Pool.QueryRow(ctx, q, secret).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				t.Errorf("the %s is stored in clear in %s.%s", what, c.Table, c.Name)
			}
		}
	}
	var hash string
	if err := db.Pool.QueryRow(ctx, `SELECT password_hash FROM accounts WHERE username = 'clerk'`).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Count(hash, "$") != 5 {
		t.Errorf("password hash %q is not an argon2id PHC string of the expected cost", hash)
	}
}

func TestAccountChecks(t *testing.T) {
	ctx := context.Background()
	_, s := accessWorld(t, postgres.Options{})
	tests := []struct {
		name     string
		account  gridmap.Account
		password string
		code     string
	}{
		{"a short password", gridmap.Account{Username: "short", Role: gridmap.RoleViewer}, "123456789", gridmap.EINVALID},
		{"an upper-case name", gridmap.Account{Username: "Alice", Role: gridmap.RoleViewer}, goodPassword, gridmap.EINVALID},
		{"an unknown role", gridmap.Account{Username: "boss", Role: "root"}, goodPassword, gridmap.EINVALID},
		{"a scope in no layer", gridmap.Account{Username: "nolayer", Role: gridmap.RoleViewer, Scope: &gridmap.Scope{Layer: "nope", Code: "S1"}}, goodPassword, gridmap.EINVALID},
		{"a scope in a departmental layer", gridmap.Account{Username: "beat", Role: gridmap.RoleViewer, Scope: &gridmap.Scope{Layer: "beats", Code: "P1"}}, goodPassword, gridmap.EINVALID},
		{"a scope naming no grid", gridmap.Account{Username: "nogrid", Role: gridmap.RoleViewer, Scope: &gridmap.Scope{Layer: "acc", Code: "S9"}}, goodPassword, gridmap.EINVALID},
		{"a person who is not there", gridmap.Account{Username: "ghost", Role: gridmap.RoleReporter, Person: &gridmap.PersonRef{Layer: "acc", Grid: "G11", Name: "Nobody"}}, goodPassword, gridmap.EINVALID},
		{"a departmental person and no scope", gridmap.Account{Username: "zhang", Role: gridmap.RoleReporter, Person: &gridmap.PersonRef{Layer: "beats", Grid: "P1", Name: "Zhang"}}, goodPassword, gridmap.EINVALID},
		{"a departmental person with a scope", gridmap.Account{Username: "zhang2", Role: gridmap.RoleReporter, Person: &gridmap.PersonRef{Layer: "beats", Grid: "P1", Name: "Zhang"}, Scope: &gridmap.Scope{Layer: "acc", Code: "S1"}}, goodPassword, ""},
		{"a street scope", gridmap.Account{Username: "street", Role: gridmap.RoleDispatcher, Scope: &gridmap.Scope{Layer: "acc", Code: "S1"}}, goodPassword, ""},
		{"a name in use", gridmap.Account{Username: "street", Role: gridmap.RoleViewer}, goodPassword, gridmap.ECONFLICT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.account
			wantCode(t, "AddAccount", s.AddAccount(ctx, &a, tc.password), tc.code)
		})
	}

	t.Run("a person's grid is the scope of an account given none", func(t *testing.T) {
		a := &gridmap.Account{Username: "liwei", Role: gridmap.RoleReporter, Person: &gridmap.PersonRef{Layer: "acc", Grid: "G11", Name: "Li Wei"}}
		if err := s.AddAccount(ctx, a, goodPassword); err != nil {
			t.Fatal(err)
		}
		if a.Scope == nil || *a.Scope != (gridmap.Scope{Layer: "acc", Code: "G11"}) || a.DisplayName != "liwei" {
			t.Errorf("account %+v scope %+v", a, a.Scope)
		}
		got, err := s.ChangeAccount(ctx, "liwei", gridmap.AccountChange{Scope: &gridmap.Scope{Layer: "acc", Code: "S1"}})
		if err != nil || *got.Scope != (gridmap.Scope{Layer: "acc", Code: "S1"}) {
			t.Fatalf("explicit scope: %+v, %v", got, err)
		}
		got, err = s.ChangeAccount(ctx, "liwei", gridmap.AccountChange{Scope: &gridmap.Scope{}})
		if err != nil || *got.Scope != (gridmap.Scope{Layer: "acc", Code: "G11"}) {
			t.Fatalf("scope removed: %+v, %v", got, err)
		}
	})

	t.Run("a caller grants nothing beyond its own role and scope", func(t *testing.T) {
		streetAdmin := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerAccount, Name: "sa", Role: gridmap.RoleAdmin,
			Scope: &gridmap.Scope{Layer: "acc", Code: "S1"}})
		editor := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerAccount, Name: "ed", Role: gridmap.RoleEditor})
		grants := []struct {
			name string
			ctx  context.Context
			role string
			sc   *gridmap.Scope
			code string
		}{
			{"a grid below the caller's street", streetAdmin, gridmap.RoleEditor, &gridmap.Scope{Layer: "acc", Code: "G11"}, ""},
			{"the caller's own street", streetAdmin, gridmap.RoleAdmin, &gridmap.Scope{Layer: "acc", Code: "S1"}, ""},
			{"the other street", streetAdmin, gridmap.RoleViewer, &gridmap.Scope{Layer: "acc", Code: "S2"}, gridmap.EFORBIDDEN},
			{"the district above", streetAdmin, gridmap.RoleViewer, &gridmap.Scope{Layer: "acc", Code: "D"}, gridmap.EFORBIDDEN},
			{"no scope at all", streetAdmin, gridmap.RoleViewer, nil, gridmap.EFORBIDDEN},
			{"a role below the caller's", editor, gridmap.RoleDispatcher, nil, ""},
			{"a role above the caller's", editor, gridmap.RoleAdmin, nil, gridmap.EFORBIDDEN},
		}
		for i, g := range grants {
			a := &gridmap.Account{Username: fmt.Sprintf("granted%d", i), Role: g.role, Scope: g.sc}
			wantCode(t, g.name+": account", s.AddAccount(g.ctx, a, goodPassword), g.code)
			_, err := s.CreateToken(g.ctx, &gridmap.Token{Role: g.role, Scope: g.sc})
			wantCode(t, g.name+": token", err, g.code)
		}
		_, err := s.ChangeAccount(streetAdmin, "granted0", gridmap.AccountChange{Role: ptr(gridmap.RoleAdmin)})
		wantCode(t, "raising an account in scope to the caller's role", err, "")
		_, err = s.ChangeAccount(streetAdmin, "granted5", gridmap.AccountChange{Disabled: ptr(true)})
		wantCode(t, "disabling an unscoped account", err, gridmap.EFORBIDDEN)
		_, err = s.CreateSignInLink(streetAdmin, "granted5", time.Hour)
		wantCode(t, "a sign-in link for an unscoped account", err, gridmap.EFORBIDDEN)
	})
}

func ptr[T any](v T) *T { return &v }

func TestSignIn(t *testing.T) {
	ctx := context.Background()
	_, s := accessWorld(t, postgres.Options{})
	addAccount(t, s, "alice", gridmap.RoleDispatcher, &gridmap.Scope{Layer: "acc", Code: "S1"})
	addAccount(t, s, "gone", gridmap.RoleViewer, nil)
	if _, err := s.ChangeAccount(ctx, "gone", gridmap.AccountChange{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}

	t.Run("wrong password, unknown name and disabled account get one answer", func(t *testing.T) {
		var messages []string
		for _, try := range [][2]string{{"alice", "not the password"}, {"nobody", goodPassword}, {"gone", goodPassword}} {
			_, err := s.SignIn(ctx, try[0], try[1], "")
			wantCode(t, try[0], err, gridmap.EUNAUTHORIZED)
			messages = append(messages, gridmap.ErrorMessage(err))
		}
		if messages[0] != messages[1] || messages[1] != messages[2] {
			t.Errorf("the answers differ: %q", messages)
		}
	})
	t.Run("the right password opens a session for the account", func(t *testing.T) {
		ses, err := s.SignIn(ctx, " Alice ", goodPassword, "192.0.2.7")
		if err != nil {
			t.Fatal(err)
		}
		c := ses.Caller
		if c.Kind != gridmap.CallerAccount || c.Name != "alice" || c.Role != gridmap.RoleDispatcher || c.Scope == nil || c.Scope.Code != "S1" {
			t.Errorf("caller %+v", c)
		}
		if d := time.Until(ses.ExpiresAt); d < 11*time.Hour || d > 12*time.Hour {
			t.Errorf("session expires in %v, want 12 h", d)
		}
		got, csrf, err := s.SessionCaller(ctx, ses.Secret)
		if err != nil || csrf != ses.CSRF || got.Name != "alice" || got.Scope.Code != "S1" {
			t.Errorf("SessionCaller: %+v %q %v", got, csrf, err)
		}
		a, err := s.Account(ctx, "alice")
		if err != nil || a.LastSignInAt == nil {
			t.Errorf("last sign-in not recorded: %+v %v", a, err)
		}
		if err := s.SignOut(ctx, ses.Secret); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.SessionCaller(ctx, ses.Secret)
		wantCode(t, "a signed-out session", err, gridmap.EUNAUTHORIZED)
	})
	t.Run("secrets of the wrong kind are refused", func(t *testing.T) {
		token, err := s.CreateToken(ctx, &gridmap.Token{Role: gridmap.RoleViewer})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = s.SessionCaller(ctx, token)
		wantCode(t, "a token as a session", err, gridmap.EUNAUTHORIZED)
		_, err = s.TokenCaller(ctx, "gmt_short")
		wantCode(t, "a malformed token", err, gridmap.EUNAUTHORIZED)
	})
	t.Run("a new password ends the sessions and replaces the old one", func(t *testing.T) {
		ses, err := s.SignIn(ctx, "alice", goodPassword, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ChangeAccount(ctx, "alice", gridmap.AccountChange{DisplayName: ptr("Alice Wang")}); err != nil {
			t.Fatal(err)
		}
		if c, _, err := s.SessionCaller(ctx, ses.Secret); err != nil || c.DisplayName != "Alice Wang" {
			t.Errorf("a new display name should keep the session and show: %+v %v", c, err)
		}
		if _, err := s.ChangeAccount(ctx, "alice", gridmap.AccountChange{Password: ptr("a brand new password")}); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.SessionCaller(ctx, ses.Secret)
		wantCode(t, "a session from before the new password", err, gridmap.EUNAUTHORIZED)
		_, err = s.SignIn(ctx, "alice", goodPassword, "")
		wantCode(t, "the old password", err, gridmap.EUNAUTHORIZED)
		if _, err := s.SignIn(ctx, "alice", "a brand new password", ""); err != nil {
			t.Errorf("the new password: %v", err)
		}
		_, err = s.ChangeAccount(ctx, "alice", gridmap.AccountChange{Password: ptr("short")})
		wantCode(t, "a short new password", err, gridmap.EINVALID)
		_, err = s.ChangeAccount(ctx, "nobody", gridmap.AccountChange{Role: ptr(gridmap.RoleViewer)})
		wantCode(t, "an unknown account", err, gridmap.ENOTFOUND)
	})
}

func retryAfter(err error) time.Duration {
	var e *gridmap.Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

func TestSignInThrottle(t *testing.T) {
	ctx := context.Background()
	db, s := accessWorld(t, postgres.Options{})
	addAccount(t, s, "bob", gridmap.RoleViewer, nil)
	addAccount(t, s, "carol", gridmap.RoleViewer, nil)

	t.Run("five failures of a name slow it down, the right password too", func(t *testing.T) {
		for i := range 5 {
			_, err := s.SignIn(ctx, "bob", fmt.Sprintf("guess number %d", i), fmt.Sprintf("198.51.100.%d", i))
			wantCode(t, fmt.Sprintf("failure %d", i+1), err, gridmap.EUNAUTHORIZED)
		}
		_, err := s.SignIn(ctx, "bob", goodPassword, "198.51.100.99")
		wantCode(t, "after five failures", err, gridmap.ETOOMANY)
		if d := retryAfter(err); d < time.Second || d > 2*time.Second {
			t.Errorf("RetryAfter %v after five failures, want about a second", d)
		}
		if _, err := s.SignIn(ctx, "carol", goodPassword, "198.51.100.99"); err != nil {
			t.Errorf("another name is not slowed down: %v", err)
		}
	})
	t.Run("failures below the limit never slow down, however recent", func(t *testing.T) {
		// As recorded by attempts that started after this one and took
		// their turn first.
		if _, err := db.Pool.Exec(ctx, `INSERT INTO signin_failures (username, address, at)
			SELECT 'carol', '198.51.100.200', now() + interval '2 seconds' FROM generate_series(1, 4)`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SignIn(ctx, "carol", goodPassword, "198.51.100.200"); err != nil {
			t.Errorf("after four failures: %v", err)
		}
		if _, err := db.Pool.Exec(ctx, `DELETE FROM signin_failures WHERE address = '198.51.100.200'`); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the wait doubles with each failure", func(t *testing.T) {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO signin_failures (username, address) SELECT 'bob', '' FROM generate_series(1, 3)`); err != nil {
			t.Fatal(err)
		}
		_, err := s.SignIn(ctx, "bob", goodPassword, "")
		wantCode(t, "after eight failures", err, gridmap.ETOOMANY)
		if d := retryAfter(err); d < 7*time.Second || d > 9*time.Second {
			t.Errorf("RetryAfter %v after eight failures, want about 2^3 s", d)
		}
	})
	t.Run("the window passing lets the name in, and a success clears its failures", func(t *testing.T) {
		if _, err := db.Pool.Exec(ctx, `UPDATE signin_failures SET at = at - interval '16 minutes'`); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			if _, err := s.SignIn(ctx, "bob", fmt.Sprintf("fresh guess %d", i), ""); gridmap.ErrorCode(err) != gridmap.EUNAUTHORIZED {
				t.Fatalf("failure %d after the window: %v", i+1, err)
			}
		}
		if _, err := s.SignIn(ctx, "bob", goodPassword, ""); err != nil {
			t.Fatalf("the right password after the window: %v", err)
		}
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM signin_failures WHERE username = 'bob'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d failures of bob left after a success (%v)", n, err)
		}
	})
	t.Run("twenty failures from an address slow every name from it down", func(t *testing.T) {
		const address = "203.0.113.5"
		for i := range 20 {
			_, err := s.SignIn(ctx, fmt.Sprintf("spray%d", i), goodPassword, address)
			wantCode(t, fmt.Sprintf("spray %d", i), err, gridmap.EUNAUTHORIZED)
		}
		_, err := s.SignIn(ctx, "carol", goodPassword, address)
		wantCode(t, "a real account from the address", err, gridmap.ETOOMANY)
		if retryAfter(err) <= 0 {
			t.Errorf("no RetryAfter: %v", err)
		}
		if _, err := s.SignIn(ctx, "carol", goodPassword, "203.0.113.6"); err != nil {
			t.Errorf("from another address: %v", err)
		}
	})
	t.Run("attempts at once at the threshold let one through", func(t *testing.T) {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO signin_failures (username, address) SELECT 'carol', '' FROM generate_series(1, 4)`); err != nil {
			t.Fatal(err)
		}
		codes := make([]string, 8)
		var wg sync.WaitGroup
		for i := range codes {
			wg.Go(func() {
				_, err := s.SignIn(ctx, "carol", "a wrong guess", "")
				codes[i] = gridmap.ErrorCode(err)
			})
		}
		wg.Wait()
		if n := strings.Count(strings.Join(codes, ","), gridmap.EUNAUTHORIZED); n != 1 {
			t.Errorf("%d of 8 guesses at once were checked, want 1: %v", n, codes)
		}
	})
}

func TestRevocationIsImmediate(t *testing.T) {
	ctx := context.Background()
	db, s := accessWorld(t, postgres.Options{})
	other := postgres.NewAccessStore(db) // a second instance on the same database
	follow(t, s)
	follow(t, other)
	addAccount(t, s, "dave", gridmap.RoleEditor, nil)

	t.Run("lookups are cached while following", func(t *testing.T) {
		token, err := s.CreateToken(ctx, &gridmap.Token{Name: "cached", Role: gridmap.RoleViewer})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenCaller(ctx, token); err != nil {
			t.Fatal(err)
		}
		// Behind the store's back, with no notice: the cache answers.
		if _, err := db.Pool.Exec(ctx, `UPDATE tokens SET role = 'admin' WHERE name = 'cached'`); err != nil {
			t.Fatal(err)
		}
		if c, err := s.TokenCaller(ctx, token); err != nil || c.Role != gridmap.RoleViewer {
			t.Errorf("cached caller %+v %v, want the viewer read first", c, err)
		}
	})
	t.Run("a revoked token fails on the next call, on every instance", func(t *testing.T) {
		token, err := s.CreateToken(ctx, &gridmap.Token{Name: "hotline", Role: gridmap.RoleReporter})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range []*postgres.AccessStore{s, other, s, other} {
			if _, err := st.TokenCaller(ctx, token); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RevokeToken(ctx, "hotline"); err != nil {
			t.Fatal(err)
		}
		_, err = s.TokenCaller(ctx, token)
		wantCode(t, "the revoking instance", err, gridmap.EUNAUTHORIZED)
		eventually(t, "the other instance refuses the revoked token", func() bool {
			_, err := other.TokenCaller(ctx, token)
			return gridmap.ErrorCode(err) == gridmap.EUNAUTHORIZED
		})
		wantCode(t, "an unknown token", s.RevokeToken(ctx, "nope"), gridmap.ENOTFOUND)
	})
	t.Run("a disabled account's session fails on the next call, on every instance", func(t *testing.T) {
		ses, err := s.SignIn(ctx, "dave", goodPassword, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range []*postgres.AccessStore{s, other, s, other} {
			if _, _, err := st.SessionCaller(ctx, ses.Secret); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.ChangeAccount(ctx, "dave", gridmap.AccountChange{Disabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.SessionCaller(ctx, ses.Secret)
		wantCode(t, "the disabling instance", err, gridmap.EUNAUTHORIZED)
		eventually(t, "the other instance refuses the disabled account's session", func() bool {
			_, _, err := other.SessionCaller(ctx, ses.Secret)
			return gridmap.ErrorCode(err) == gridmap.EUNAUTHORIZED
		})
		if _, err := s.ChangeAccount(ctx, "dave", gridmap.AccountChange{Disabled: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.SessionCaller(ctx, ses.Secret)
		wantCode(t, "enabling again does not bring the session back", err, gridmap.EUNAUTHORIZED)
	})
	t.Run("a new role ends the sessions", func(t *testing.T) {
		ses, err := s.SignIn(ctx, "dave", goodPassword, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := other.SessionCaller(ctx, ses.Secret); err != nil {
			t.Fatal(err)
		}
		if _, err := other.ChangeAccount(ctx, "dave", gridmap.AccountChange{Role: ptr(gridmap.RoleViewer)}); err != nil {
			t.Fatal(err)
		}
		_, _, err = other.SessionCaller(ctx, ses.Secret)
		wantCode(t, "a session from before the new role", err, gridmap.EUNAUTHORIZED)
	})
	t.Run("without following nothing is cached", func(t *testing.T) {
		idle := postgres.NewAccessStore(db)
		token, err := idle.CreateToken(ctx, &gridmap.Token{Name: "uncached", Role: gridmap.RoleViewer})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := idle.TokenCaller(ctx, token); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `UPDATE tokens SET revoked_at = now() WHERE name = 'uncached'`); err != nil {
			t.Fatal(err)
		}
		_, err = idle.TokenCaller(ctx, token)
		wantCode(t, "a token revoked behind a store that does not follow", err, gridmap.EUNAUTHORIZED)
	})
}

// eventually waits for ok, a notice's way across instances.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("%s: not within 10 s", what)
			return
		}
	}
}

func TestExpiryAndIdleTimeout(t *testing.T) {
	ctx := context.Background()
	db, s := accessWorld(t, postgres.Options{})
	follow(t, s)
	addAccount(t, s, "erin", gridmap.RoleViewer, nil)

	t.Run("an expired token stops working though cached", func(t *testing.T) {
		expires := time.Now().Add(time.Second)
		token, err := s.CreateToken(ctx, &gridmap.Token{Name: "brief", Role: gridmap.RoleViewer, ExpiresAt: &expires})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenCaller(ctx, token); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(expires) + 10*time.Millisecond)
		_, err = s.TokenCaller(ctx, token)
		wantCode(t, "after expiry", err, gridmap.EUNAUTHORIZED)
		past := time.Now().Add(-time.Minute)
		_, err = s.CreateToken(ctx, &gridmap.Token{Role: gridmap.RoleViewer, ExpiresAt: &past})
		wantCode(t, "a token expiring in the past", err, gridmap.EINVALID)
	})
	t.Run("a busy session lives on, an idle one ends", func(t *testing.T) {
		s.IdleTimeout = 800 * time.Millisecond
		defer func() { s.IdleTimeout = postgres.DefaultIdleTimeout }()
		ses, err := s.SignIn(ctx, "erin", goodPassword, "")
		if err != nil {
			t.Fatal(err)
		}
		for range 8 {
			if _, _, err := s.SessionCaller(ctx, ses.Secret); err != nil {
				t.Fatalf("a session used every 200 ms: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(s.IdleTimeout)
		_, _, err = s.SessionCaller(ctx, ses.Secret)
		wantCode(t, "a session idle past the timeout", err, gridmap.EUNAUTHORIZED)
	})
	t.Run("the database's clock ends sessions too", func(t *testing.T) {
		plain := postgres.NewAccessStore(db)
		for _, tc := range []struct{ name, update string }{
			{"idle for three hours", `UPDATE sessions SET last_seen_at = now() - interval '3 hours' WHERE hash = sha256($1::bytea)`},
			{"past its lifetime", `UPDATE sessions SET expires_at = now() - interval '1 second' WHERE hash = sha256($1::bytea)`},
		} {
			ses, err := plain.SignIn(ctx, "erin", goodPassword, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Pool.Exec(ctx, tc.update, []byte(ses.Secret)); err != nil {
				t.Fatal(err)
			}
			_, _, err = plain.SessionCaller(ctx, ses.Secret)
			wantCode(t, tc.name, err, gridmap.EUNAUTHORIZED)
		}
	})
}

func TestSignInLinks(t *testing.T) {
	ctx := context.Background()
	db, s := accessWorld(t, postgres.Options{})
	addAccount(t, s, "frank", gridmap.RoleReporter, nil)

	t.Run("one of eight uses at once wins", func(t *testing.T) {
		link, err := s.CreateSignInLink(ctx, "frank", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		sessions := make([]*gridmap.Session, 8)
		codes := make([]string, 8)
		var wg sync.WaitGroup
		for i := range sessions {
			wg.Go(func() {
				var err error
				sessions[i], err = s.SignInWithLink(ctx, link)
				codes[i] = gridmap.ErrorCode(err)
			})
		}
		wg.Wait()
		won := 0
		for i, ses := range sessions {
			if ses != nil {
				won++
				if ses.Caller.Name != "frank" {
					t.Errorf("the link signed in %+v", ses.Caller)
				}
			} else if codes[i] != gridmap.EUNAUTHORIZED {
				t.Errorf("a losing use: %s", codes[i])
			}
		}
		if won != 1 {
			t.Errorf("%d uses won, want 1: %v", won, codes)
		}
		_, err = s.SignInWithLink(ctx, link)
		wantCode(t, "a used link", err, gridmap.EUNAUTHORIZED)
	})
	t.Run("expired, unknown and disabled accounts' links do not sign in", func(t *testing.T) {
		expired, err := s.CreateSignInLink(ctx, "frank", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `UPDATE signin_links SET expires_at = now() - interval '1 second' WHERE hash = sha256($1::bytea)`, []byte(expired)); err != nil {
			t.Fatal(err)
		}
		_, err = s.SignInWithLink(ctx, expired)
		wantCode(t, "an expired link", err, gridmap.EUNAUTHORIZED)
		_, err = s.SignInWithLink(ctx, "gml_"+strings.Repeat("A", 43))
		wantCode(t, "an unknown link", err, gridmap.EUNAUTHORIZED)
		pending, err := s.CreateSignInLink(ctx, "frank", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ChangeAccount(ctx, "frank", gridmap.AccountChange{Disabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ChangeAccount(ctx, "frank", gridmap.AccountChange{Disabled: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		_, err = s.SignInWithLink(ctx, pending)
		wantCode(t, "a link made before the account was disabled", err, gridmap.EUNAUTHORIZED)
		_, err = s.CreateSignInLink(ctx, "nobody", time.Hour)
		wantCode(t, "a link for nobody", err, gridmap.ENOTFOUND)
		_, err = s.CreateSignInLink(ctx, "frank", 0)
		wantCode(t, "a link valid for nothing", err, gridmap.EINVALID)
	})
}

func TestEnsureAdminCreatesOneAdmin(t *testing.T) {
	ctx := context.Background()
	db, _ := accessWorld(t, postgres.Options{})
	type result struct {
		password string
		created  bool
		err      error
	}
	results := make([]result, 4)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			// Four servers starting at once, each with a store of its own.
			var r result
			r.password, r.created, r.err = postgres.NewAccessStore(db).EnsureAdmin(ctx)
			results[i] = r
		})
	}
	wg.Wait()
	var password string
	for _, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.created {
			if password != "" {
				t.Error("two admins created")
			}
			password = r.password
		}
	}
	if len(password) != 20 {
		t.Fatalf("created password %q, want 20 characters", password)
	}
	s := postgres.NewAccessStore(db)
	accounts, err := s.Accounts(ctx)
	if err != nil || len(accounts) != 1 || accounts[0].Username != "admin" || accounts[0].Role != gridmap.RoleAdmin || accounts[0].DisplayName != "Administrator" {
		t.Fatalf("accounts %+v %v", accounts, err)
	}
	if _, err := s.SignIn(ctx, "admin", password, ""); err != nil {
		t.Errorf("signing in with the printed password: %v", err)
	}
	if _, created, err := s.EnsureAdmin(ctx); created || err != nil {
		t.Errorf("a second start: created %v, %v", created, err)
	}

	t.Run("demo accounts, once", func(t *testing.T) {
		for range 2 {
			if err := s.EnsureDemoAccounts(ctx, gridmap.Scope{Layer: "acc", Code: "S1"}, goodPassword); err != nil {
				t.Fatal(err)
			}
		}
		for _, role := range gridmap.Roles {
			a, err := s.Account(ctx, "demo-"+role)
			if err != nil || a.Role != role || a.Scope == nil || a.Scope.Code != "S1" {
				t.Errorf("demo-%s: %+v %v", role, a, err)
			}
		}
		wantCode(t, "demo accounts in a scope that is not", s.EnsureDemoAccounts(ctx, gridmap.Scope{Layer: "acc", Code: "nope"}, "another long password"), gridmap.EINVALID)
	})
}

func TestAuditLog(t *testing.T) {
	ctx := context.Background()
	db, s := accessWorld(t, postgres.Options{})
	start := time.Now()
	entries := []*gridmap.AuditEntry{
		{Actor: "user:amy", Role: "admin", Action: "PUT /v1/categories/:code", Target: "/v1/categories/road", Status: 201,
			After: map[string]any{"code": "road"}},
		{Actor: "user:amy", Role: "admin", Action: "PUT /v1/categories/:code", Target: "/v1/categories/roadside", Status: 200},
		{Actor: "token:hotline", Role: "reporter", Action: "POST /v1/reports", Target: "/v1/reports/1", Status: 201},
		{Actor: "user:ben", Role: "editor", Action: "POST /v1/layers/:layer/changesets", Target: "/v1/layers/acc/grids/S1", Status: 200,
			Before: map[string]any{"version": 1}, After: map[string]any{"version": 2}},
		{Actor: "user:amy", Role: "admin", Action: "DELETE /v1/categories/:code", Target: "/v1/categories/rail", Status: 204},
	}
	if err := s.Audit(ctx, entries...); err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		if e.ID == 0 || i > 0 && e.ID <= entries[i-1].ID || e.At.IsZero() {
			t.Fatalf("entry %d written as id %d at %v", i, e.ID, e.At)
		}
	}
	wantCode(t, "an entry with no action", s.Audit(ctx, &gridmap.AuditEntry{Actor: "user:amy"}), gridmap.EINVALID)

	ids := func(es []*gridmap.AuditEntry) string {
		var out []string
		for _, e := range es {
			for i, w := range entries {
				if w.ID == e.ID {
					out = append(out, fmt.Sprint(i))
				}
			}
		}
		return strings.Join(out, ",")
	}
	later := time.Now().Add(time.Hour)
	tests := []struct {
		name   string
		filter gridmap.AuditFilter
		want   string // entries' indexes, newest first
	}{
		{"everything, newest first", gridmap.AuditFilter{}, "4,3,2,1,0"},
		{"by actor", gridmap.AuditFilter{Actor: "user:amy"}, "4,1,0"},
		{"by target prefix", gridmap.AuditFilter{Target: "/v1/categories/road"}, "1,0"},
		{"a prefix is not a pattern", gridmap.AuditFilter{Target: "/v1/categories/r_a%"}, ""},
		{"actor and target", gridmap.AuditFilter{Actor: "user:amy", Target: "/v1/categories/ra"}, "4"},
		{"from a time", gridmap.AuditFilter{From: &start}, "4,3,2,1,0"},
		{"up to a time", gridmap.AuditFilter{To: &start}, ""},
		{"in a window", gridmap.AuditFilter{From: &start, To: &later, Actor: "user:ben"}, "3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := s.AuditLog(ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if ids(got) != tc.want || next != 0 {
				t.Errorf("got %q (next %d), want %q", ids(got), next, tc.want)
			}
		})
	}
	t.Run("pages", func(t *testing.T) {
		var pages []string
		f := gridmap.AuditFilter{Limit: 2}
		for {
			got, next, err := s.AuditLog(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, ids(got))
			if next == 0 {
				break
			}
			f.Cursor = next
		}
		if strings.Join(pages, "|") != "4,3|2,1|0" {
			t.Errorf("pages %q", pages)
		}
	})
	t.Run("versions come back as JSON", func(t *testing.T) {
		got, _, err := s.AuditLog(ctx, gridmap.AuditFilter{Actor: "user:ben"})
		if err != nil || len(got) != 1 {
			t.Fatal(got, err)
		}
		before, _ := got[0].Before.(json.RawMessage)
		after, _ := got[0].After.(json.RawMessage)
		if !bytes.Equal(before, []byte(`{"version": 1}`)) || !bytes.Equal(after, []byte(`{"version": 2}`)) {
			t.Errorf("before %s after %s", before, after)
		}
	})
	t.Run("the log cannot be rewritten", func(t *testing.T) {
		for _, sql := range []string{
			`UPDATE audit_log SET actor = 'someone else'`,
			`UPDATE audit_log SET actor = 'x' WHERE id < 0`,
			`DELETE FROM audit_log`,
			`DELETE FROM audit_log WHERE id < 0`,
			`TRUNCATE audit_log`,
		} {
			if _, err := db.Pool.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: %v", sql, err)
			}
		}
		got, _, err := s.AuditLog(ctx, gridmap.AuditFilter{})
		if err != nil || len(got) != len(entries) || got[len(got)-1].Actor != "user:amy" {
			t.Errorf("after the attempts: %d entries, %v", len(got), err)
		}
	})
}

// TestAccessManyClients validates tokens and sessions and signs in from 16
// goroutines at once over a pool of two connections, one token revoked
// midway.
func TestAccessManyClients(t *testing.T) {
	ctx := context.Background()
	_, s := accessWorld(t, postgres.Options{MaxConns: 2})
	follow(t, s)
	const clients = 16
	tokens := make([]string, clients)
	for i := range tokens {
		addAccount(t, s, fmt.Sprintf("client%d", i), gridmap.RoleViewer, nil)
		var err error
		if tokens[i], err = s.CreateToken(ctx, &gridmap.Token{Name: fmt.Sprintf("client%d", i), Role: gridmap.RoleReporter}); err != nil {
			t.Fatal(err)
		}
	}
	revoked := tokens[0]
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			// One address for all (an office behind one router): sign-ins
			// at once, none failing, are not slowed down.
			ses, err := s.SignIn(ctx, fmt.Sprintf("client%d", i), goodPassword, "192.0.2.1")
			if err != nil {
				errs <- fmt.Errorf("client %d signing in: %w", i, err)
				return
			}
			for j := range 50 {
				if c, err := s.TokenCaller(ctx, tokens[(i+j)%clients]); err != nil && tokens[(i+j)%clients] != revoked {
					errs <- fmt.Errorf("client %d token: %w", i, err)
					return
				} else if err == nil && c.Kind != gridmap.CallerToken {
					errs <- fmt.Errorf("client %d token caller %+v", i, c)
					return
				}
				if c, _, err := s.SessionCaller(ctx, ses.Secret); err != nil || c.Name != fmt.Sprintf("client%d", i) {
					errs <- fmt.Errorf("client %d session: %+v %w", i, c, err)
					return
				}
				if i == 0 && j == 25 {
					if err := s.RevokeToken(ctx, "client0"); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, err := s.TokenCaller(ctx, revoked)
	wantCode(t, "the token revoked midway", err, gridmap.EUNAUTHORIZED)
}

// TestANewSignInLinkEndsTheOldOne: of the links made for one account, only
// the newest works.
func TestANewSignInLinkEndsTheOldOne(t *testing.T) {
	_, s := accessWorld(t, postgres.Options{})
	addAccount(t, s, "link.once", gridmap.RoleViewer, nil)
	ctx := context.Background()
	old, err := s.CreateSignInLink(ctx, "link.once", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := s.CreateSignInLink(ctx, "link.once", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.SignInWithLink(ctx, old)
	wantCode(t, "the older link", err, gridmap.EUNAUTHORIZED)
	if _, err := s.SignInWithLink(ctx, fresh); err != nil {
		t.Errorf("the newest link: %v", err)
	}
}

// TestTheLastAdminStays: the last enabled admin for the whole service can
// be neither disabled nor demoted, even by two changes at once.
func TestTheLastAdminStays(t *testing.T) {
	_, s := accessWorld(t, postgres.Options{})
	ctx := context.Background()
	for _, name := range []string{"boss.a", "boss.b"} {
		addAccount(t, s, name, gridmap.RoleAdmin, nil)
	}
	// Other tests' admins share nothing with this database's.
	accounts, err := s.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var admins []string
	for _, a := range accounts {
		if a.Role == gridmap.RoleAdmin && a.Scope == nil && !a.Disabled {
			admins = append(admins, a.Username)
		}
	}
	disabled := true
	errs := make(chan error, len(admins))
	for _, name := range admins {
		go func(name string) {
			_, err := s.ChangeAccount(ctx, name, gridmap.AccountChange{Disabled: &disabled})
			errs <- err
		}(name)
	}
	refused := 0
	for range admins {
		if err := <-errs; gridmap.ErrorCode(err) == gridmap.ECONFLICT {
			refused++
		} else if err != nil {
			t.Errorf("disabling an admin: %v", err)
		}
	}
	if refused != 1 {
		t.Errorf("disabling all %d admins at once: %d refused, want exactly 1", len(admins), refused)
	}
}

// TestUnlinkingAPersonKeepsTheAreaUnlessGiven: an account whose area comes
// from its person is not widened to the whole service by unlinking it.
func TestUnlinkingAPersonKeepsTheAreaUnlessGiven(t *testing.T) {
	_, s := accessWorld(t, postgres.Options{})
	ctx := context.Background()
	a := &gridmap.Account{Username: "li.wei", Role: gridmap.RoleReporter, Person: &gridmap.PersonRef{Layer: "acc", Grid: "G11", Name: "Li Wei"}}
	if err := s.AddAccount(ctx, a, goodPassword); err != nil {
		t.Fatal(err)
	}
	if a.Scope == nil || a.Scope.Code != "G11" {
		t.Fatalf("a grid worker's area: %+v, want G11", a.Scope)
	}
	_, err := s.ChangeAccount(ctx, "li.wei", gridmap.AccountChange{Person: &gridmap.PersonRef{}})
	wantCode(t, "unlinking without a scope", err, gridmap.EINVALID)
	got, err := s.ChangeAccount(ctx, "li.wei", gridmap.AccountChange{Person: &gridmap.PersonRef{}, Scope: &gridmap.Scope{Layer: "acc", Code: "S1"}})
	if err != nil || got.Scope == nil || got.Scope.Code != "S1" || got.Person != nil {
		t.Errorf("unlinking with a scope: %+v %v", got, err)
	}
}

// TestSignOutDropsOnlyItsSession: a sign-out ends its session on every
// instance, and leaves the other callers those instances cached cached.
func TestSignOutDropsOnlyItsSession(t *testing.T) {
	ctx := context.Background()
	db, s := accessWorld(t, postgres.Options{})
	other := postgres.NewAccessStore(db)
	follow(t, s)
	follow(t, other)
	addAccount(t, s, "erin", gridmap.RoleViewer, nil)
	leaving, err := s.SignIn(ctx, "erin", goodPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	token, err := s.CreateToken(ctx, &gridmap.Token{Name: "staying", Role: gridmap.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*postgres.AccessStore{s, other} {
		if _, _, err := st.SessionCaller(ctx, leaving.Secret); err != nil {
			t.Fatal(err)
		}
		if _, err := st.TokenCaller(ctx, token); err != nil {
			t.Fatal(err)
		}
	}
	// Behind the stores' backs: a cached token keeps its cached role.
	if _, err := db.Pool.Exec(ctx, `UPDATE tokens SET role = 'admin' WHERE name = 'staying'`); err != nil {
		t.Fatal(err)
	}
	if err := s.SignOut(ctx, leaving.Secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other instance ends the signed-out session", func() bool {
		_, _, err := other.SessionCaller(ctx, leaving.Secret)
		return gridmap.ErrorCode(err) == gridmap.EUNAUTHORIZED
	})
	for name, st := range map[string]*postgres.AccessStore{"signing-out": s, "other": other} {
		if c, err := st.TokenCaller(ctx, token); err != nil || c.Role != gridmap.RoleViewer {
			t.Errorf("the %s instance dropped the token it had cached: %+v %v", name, c, err)
		}
	}
}
