package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestUserAndTokenCommands manages accounts and tokens from the command
// line, and checks through the store that what it printed works.
func TestUserAndTokenCommands(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.ConnString(t)
	env := append(withoutDatabaseURL(), "DATABASE_URL="+conn)
	run := func(t *testing.T, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		return runEnv(t, env, args...)
	}
	mustRun := func(t *testing.T, args ...string) string {
		t.Helper()
		out, errOut, code := run(t, args...)
		if code != 0 {
			t.Fatalf("gridmap %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	lastLine := func(out string) string {
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		return lines[len(lines)-1]
	}
	// Grid A1 is in both comprehensive layers north and south, B1 in south
	// only; beat A1 of departmental layer police does not count.
	for _, l := range []struct{ layer, kind, codes string }{
		{"north", gridmap.KindComprehensive, "A1"},
		{"south", gridmap.KindComprehensive, "A1,B1"},
		{"police", gridmap.KindDepartmental, "A1"},
	} {
		var features []string
		for i, code := range strings.Split(l.codes, ",") {
			x := 120 + float64(i)*0.1
			features = append(features, `{"type":"Feature","properties":{"code":"`+code+`"},"geometry":{"type":"Polygon","coordinates":[[[`+
				ftoa(x)+`,30],[`+ftoa(x+0.1)+`,30],[`+ftoa(x+0.1)+`,30.1],[`+ftoa(x)+`,30.1],[`+ftoa(x)+`,30]]]}}`)
		}
		file := filepath.Join(t.TempDir(), l.layer+".geojson")
		if err := os.WriteFile(file, []byte(`{"type":"FeatureCollection","features":[`+strings.Join(features, ",")+`]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		mustRun(t, "import", file, "--layer", l.layer, "--kind", l.kind, "--levels", "grid", "--level", "grid")
	}
	db, err := postgres.Open(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	access := postgres.NewAccessStore(db)

	t.Run("user add prints a password that signs in", func(t *testing.T) {
		out := mustRun(t, "user", "add", "ann", "--role", "dispatcher", "--scope", "B1", "--display-name", "Ann Li")
		password := lastLine(out)
		if len(password) != 20 || !strings.Contains(out, "south/B1") {
			t.Fatalf("output:\n%s", out)
		}
		ses, err := access.SignIn(ctx, "ann", password, "")
		if err != nil {
			t.Fatal(err)
		}
		if c := ses.Caller; c.Role != gridmap.RoleDispatcher || c.Scope == nil || *c.Scope != (gridmap.Scope{Layer: "south", Code: "B1"}) || c.DisplayName != "Ann Li" {
			t.Errorf("caller %+v", c)
		}
	})
	t.Run("a code in two comprehensive layers needs --layer", func(t *testing.T) {
		_, errOut, code := run(t, "user", "add", "amb", "--role", "viewer", "--scope", "A1")
		if code != 1 || !strings.Contains(errOut, "north, south") || !strings.Contains(errOut, "--layer") {
			t.Errorf("exit %d\n%s", code, errOut)
		}
		mustRun(t, "user", "add", "amb", "--role", "viewer", "--scope", "A1", "--layer", "north")
		_, errOut, code = run(t, "user", "add", "beat", "--role", "viewer", "--scope", "A1", "--layer", "police")
		if code != 1 || !strings.Contains(errOut, "comprehensive") {
			t.Errorf("a departmental scope: exit %d\n%s", code, errOut)
		}
	})
	t.Run("a password from a file is not printed", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "password")
		if err := os.WriteFile(file, []byte("a long enough password\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out := mustRun(t, "user", "add", "pat", "--role", "viewer", "--password-file", file)
		if strings.Contains(out, "password") {
			t.Errorf("output mentions the password:\n%s", out)
		}
		if _, err := access.SignIn(ctx, "pat", "a long enough password", ""); err != nil {
			t.Errorf("signing in with the file's password: %v", err)
		}
		if err := os.WriteFile(file, []byte("short\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := run(t, "user", "add", "shorty", "--role", "viewer", "--password-file", file)
		if code != 1 || !strings.Contains(errOut, "at least 10 characters") {
			t.Errorf("a short password: exit %d\n%s", code, errOut)
		}
	})
	t.Run("bad input says what to fix", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"user", "add", "root", "--role", "superuser"}, "viewer, reporter, dispatcher, editor, admin"},
			{[]string{"user", "add", "ann", "--role", "viewer"}, "already exists"},
			{[]string{"user", "add", "nowhere", "--role", "viewer", "--scope", "Z9"}, `no comprehensive layer has a current grid "Z9"`},
			{[]string{"user", "disable", "nobody"}, `account "nobody" does not exist`},
			{[]string{"token", "create", "--role", "viewer", "--expires", "soon"}, "30d"},
			{[]string{"token", "revoke", "nope"}, `token "nope" does not exist`},
		} {
			_, errOut, code := run(t, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("gridmap %s: exit %d, want 1 and %q\n%s", strings.Join(tc.args, " "), code, tc.want, errOut)
			}
		}
		if _, _, code := run(t, "user", "add"); code != 2 {
			t.Errorf("user add with no name: exit %d, want 2", code)
		}
	})
	t.Run("list, disable, enable, passwd", func(t *testing.T) {
		out := mustRun(t, "user", "list")
		for _, want := range []string{"USERNAME", "ann", "Ann Li", "dispatcher", "south/B1", "amb", "north/A1"} {
			if !strings.Contains(out, want) {
				t.Errorf("user list lacks %q:\n%s", want, out)
			}
		}
		mustRun(t, "user", "disable", "pat")
		if !strings.Contains(mustRun(t, "user", "list"), "disabled") {
			t.Error("user list does not show pat disabled")
		}
		if _, err := access.SignIn(ctx, "pat", "a long enough password", ""); gridmap.ErrorCode(err) != gridmap.EUNAUTHORIZED {
			t.Errorf("a disabled account signs in: %v", err)
		}
		mustRun(t, "user", "enable", "pat")
		password := lastLine(mustRun(t, "user", "passwd", "pat"))
		if _, err := access.SignIn(ctx, "pat", password, ""); err != nil {
			t.Errorf("the new password: %v", err)
		}
	})
	t.Run("token create prints a secret that works until revoked", func(t *testing.T) {
		out := mustRun(t, "token", "create", "--role", "reporter", "--scope", "B1", "--expires", "30d")
		secret := lastLine(out)
		c, err := access.TokenCaller(ctx, secret)
		if err != nil {
			t.Fatalf("the printed token: %v\n%s", err, out)
		}
		if !strings.HasPrefix(c.Name, "token-") || c.Role != gridmap.RoleReporter || c.Scope == nil || c.Scope.Code != "B1" {
			t.Errorf("caller %+v", c)
		}
		secret = lastLine(mustRun(t, "token", "create", "--name", "hotline", "--role", "reporter", "--expires", "2h"))
		if _, err := access.TokenCaller(ctx, secret); err != nil {
			t.Fatal(err)
		}
		out = mustRun(t, "token", "list")
		for _, want := range []string{"NAME", "hotline", "reporter", "south/B1", "cli"} {
			if !strings.Contains(out, want) {
				t.Errorf("token list lacks %q:\n%s", want, out)
			}
		}
		mustRun(t, "token", "revoke", "hotline")
		if _, err := access.TokenCaller(ctx, secret); gridmap.ErrorCode(err) != gridmap.EUNAUTHORIZED {
			t.Errorf("a revoked token: %v", err)
		}
		tokens, err := access.Tokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range tokens {
			if tok.Name == "hotline" && (tok.RevokedAt == nil || tok.ExpiresAt == nil) {
				t.Errorf("hotline %+v", tok)
			}
		}
		// What the command line changed is in the audit log, as the API's
		// changes are.
		entries, _, err := access.AuditLog(ctx, gridmap.AuditFilter{Target: "hotline"})
		if err != nil {
			t.Fatal(err)
		}
		actions := map[string]bool{}
		for _, e := range entries {
			if strings.HasPrefix(e.Actor, "cli") && e.Status == 200 {
				actions[e.Action] = true
			}
		}
		if !actions["gridmap token revoke"] {
			t.Errorf("the audit log lacks the revocation: %+v", entries)
		}
	})
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
