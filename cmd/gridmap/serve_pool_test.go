package main_test

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestServePoolSettings runs serve with a pool size from the environment
// and a request timeout no request can meet.
func TestServePoolSettings(t *testing.T) {
	env := append(withoutDatabaseURL(), "DATABASE_URL="+pgtest.ConnString(t), "GRIDMAP_DB_MAX_CONNS=5")
	// Under a 1 ns deadline not even a token can be checked: the metrics
	// are read from their own listener, which needs none.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	s := launchServe(t, env, filepath.Join(t.TempDir(), "unused"), "--request-timeout", "1ns", "--metrics-addr", metricsAddr)
	s.waitReady(t)
	defer s.stop(t, syscall.SIGTERM)

	res, err := http.Get(s.url + "/v1/reports")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Errorf("GET /v1/reports under a 1 ns request timeout: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	res, err = http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"\ngridmap_db_pool_max_connections 5\n", "\ngridmap_db_pool_acquires_total ", `gridmap_db_pool_wait_seconds_bucket{le="1"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
}
