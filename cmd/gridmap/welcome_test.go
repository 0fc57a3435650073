package main_test

import (
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestFirstStartIsOneClickFromSignedIn: the first start on an empty
// database creates admin with a password in a file only its owner reads,
// and prints a sign-in link that signs a browser in once.
func TestFirstStartIsOneClickFromSignedIn(t *testing.T) {
	db := pgtest.NewDB(t)
	env := append(withoutDatabaseURL(), "DATABASE_URL="+db.Pool.Config().ConnString())
	data := t.TempDir()
	s := startServeEnv(t, env, data)
	defer s.stop(t, syscall.SIGTERM)

	var link string
	for link == "" {
		select {
		case line := <-s.lines:
			if _, l, ok := strings.Cut(line, ": http://"); ok && strings.HasPrefix(line, "sign in as admin") {
				link = "http://" + l
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no sign-in link printed\n%s", s.stderr)
		}
	}
	file := filepath.Join(data, "admin-password")
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin password file: %v, mode %v, want 0600", err, st.Mode())
	}
	password, _ := os.ReadFile(file)
	res, err := http.Post(s.url+"/v1/session", "application/json",
		strings.NewReader(`{"username":"admin","password":"`+strings.TrimSpace(string(password))+`"}`))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("signing in with the written password: %v %v", err, res)
	}
	res.Body.Close()

	open := func() (*http.Response, *http.Client) {
		jar, _ := cookiejar.New(nil)
		// A browser of its own: no token from the tests' transport.
		client := &http.Client{Jar: jar, Transport: &http.Transport{}}
		res, err := client.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res, client
	}
	res, client := open()
	if res.Request.URL.Path != "/" || res.StatusCode != 200 {
		t.Fatalf("the sign-in link ended at %s with %d, want the start page", res.Request.URL, res.StatusCode)
	}
	who, err := client.Get(s.url + "/v1/session")
	if err != nil || who.StatusCode != 200 {
		t.Fatalf("signed in by the link: %v %v", err, who)
	}
	who.Body.Close()
	if again, _ := open(); again.Request.URL.Path != "/login" {
		t.Errorf("the link worked twice: ended at %s", again.Request.URL)
	}
}
