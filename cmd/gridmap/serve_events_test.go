package main_test

import (
	"bufio"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestSIGTERMEndsEventStreams stops a server with three dispatchers'
// event streams open: the streams end at once and the process exits within
// 2 s, instead of waiting for them through the whole drain.
func TestSIGTERMEndsEventStreams(t *testing.T) {
	env := append(withoutDatabaseURL(), "DATABASE_URL="+pgtest.ConnString(t))
	s := startServeEnv(t, env, filepath.Join(t.TempDir(), "unused"))
	for range 3 {
		res, err := http.Get(s.url + "/v1/events")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		// The stream is open once its first line arrives.
		line, err := bufio.NewReader(res.Body).ReadString('\n')
		if res.StatusCode != 200 || err != nil || !strings.HasPrefix(line, "retry:") {
			t.Fatalf("events: %d %q %v", res.StatusCode, line, err)
		}
	}
	began := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("serve exited with %v\n%s", err, s.stderr)
		}
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		t.Fatalf("serve did not exit a minute after SIGTERM\n%s", s.stderr)
	}
	took := time.Since(began)
	t.Logf("serve exited %v after SIGTERM", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("serve took %v to exit after SIGTERM with event streams open, want at most 2 s", took.Round(time.Millisecond))
	}
}
