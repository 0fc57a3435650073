package main_test

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadyzWhenTheDatabaseIsGone kills the PostgreSQL under a running
// server: /readyz says the database is unreachable, in those words, and
// keeps the driver's error (addresses, sockets) for the log.
func TestReadyzWhenTheDatabaseIsGone(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServe(t, dataDir)
	t.Cleanup(func() { // should the test end early
		for _, pid := range postgresOf(dataDir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if status := getJSON(t, s.url+"/readyz", nil); status != 200 {
		t.Fatalf("readyz before: %d", status)
	}
	pids := postgresOf(dataDir)
	if len(pids) == 0 {
		t.Fatal("no PostgreSQL found under the data directory")
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	var body struct{ Status, Reason string }
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		status := getJSON(t, s.url+"/readyz", &body)
		if status == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d after PostgreSQL was killed", status)
		}
	}
	if body.Status != "unavailable" || body.Reason != "the database is unreachable" {
		t.Errorf("readyz answered %+v", body)
	}
	s.stop(t, syscall.SIGTERM)
	if log := s.stderr.String(); !strings.Contains(log, "not ready") || !strings.Contains(log, "the database is unreachable: ") {
		t.Errorf("the log lacks the error underneath:\n%s", log)
	}
}
