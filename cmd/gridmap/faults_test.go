package main_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres"
)

// TestDatabaseOutage stops PostgreSQL under load for 10 s, the managed
// cluster and one given by DATABASE_URL: meanwhile lookups and tiles
// already drawn are served from memory, requests that need the database
// answer 503 with Retry-After (never 500, never a hang past the deadline),
// and /readyz says so; once PostgreSQL is back the same server takes
// reports again without a restart, every report acknowledged before is
// there, and the webhook job delivers each event once.
func TestDatabaseOutage(t *testing.T) {
	t.Run("the managed cluster", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "data")
		s := startServe(t, dataDir, "--demo")
		defer s.stop(t, syscall.SIGTERM)
		c, err := postgres.NewCluster(dataDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Stopped as an operator or a failover would (a fast shutdown),
		// and started again beside the server, which stays up.
		outage(t, s, dataDir, func() {
			pidFile, err := os.ReadFile(filepath.Join(dataDir, "pg", "postmaster.pid"))
			if err != nil {
				t.Fatal(err)
			}
			postmaster, _ := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
			if err := syscall.Kill(postmaster, syscall.SIGINT); err != nil {
				t.Fatalf("stopping PostgreSQL (pid %d): %v", postmaster, err)
			}
		}, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := c.Start(ctx); err != nil {
				t.Fatalf("starting PostgreSQL again: %v", err)
			}
			t.Cleanup(func() { c.Release(false) })
		})
	})
	t.Run("DATABASE_URL", func(t *testing.T) {
		pgDir := filepath.Join(t.TempDir(), "pg")
		c, err := postgres.NewCluster(pgDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Release(true) })
		env := append(withoutDatabaseURL(), "DATABASE_URL="+c.ConnString(postgres.DatabaseName))
		s := startServeEnv(t, env, filepath.Join(t.TempDir(), "data"), "--demo")
		defer s.stop(t, syscall.SIGTERM)
		outage(t, s, pgDir, func() {
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
		}, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := c.Start(ctx); err != nil {
				t.Fatalf("starting PostgreSQL again: %v", err)
			}
		})
	})
}

// outage runs the load on s across stop and, 10 s later, start of the
// PostgreSQL under pgDir (a cluster directory: its pg/ subdirectory is
// the data).
func outage(t *testing.T, s *server, pgDir string, stop, start func()) {
	// A department whose webhook counts deliveries by their key.
	var deliveries sync.Map // Idempotency-Key -> *atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := deliveries.LoadOrStore(r.Header.Get("Idempotency-Key"), new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}))
	defer receiver.Close()
	send := func(method, path, body string) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := (&http.Client{Timeout: 40 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header
	}
	if status, _ := send("PUT", "/v1/departments/outage", `{"name":"outage test","webhook_url":"`+receiver.URL+`"}`); status/100 != 2 {
		t.Fatalf("department: %d", status)
	}
	if status, _ := send("PUT", "/v1/categories/outage", `{"name":"outage","departments":["outage"],"limit":{"value":2,"clock":"urgent_hours"}}`); status/100 != 2 {
		t.Fatalf("category: %d", status)
	}
	report := func(i int) (int, http.Header) {
		return send("POST", "/v1/reports", fmt.Sprintf(`{"external_id":"outage-%d","category":"outage","location":{"type":"Point","coordinates":[%.4f,30.24]}}`,
			i, 120.05+float64(i%50)*0.001))
	}
	lookup := "/v1/lookup?layer=demo&lon=120.08&lat=30.24"
	n := 1 << 14
	x := int(math.Floor((120.08 + 180) / 360 * float64(n)))
	lat := 30.24 * math.Pi / 180
	y := int(math.Floor((1 - math.Log(math.Tan(lat)+1/math.Cos(lat))/math.Pi) / 2 * float64(n)))
	tile := fmt.Sprintf("/tiles/demo/14/%d/%d.mvt", x, y)
	for _, path := range []string{lookup, tile} {
		if status, _ := send("GET", path, ""); status != 200 {
			t.Fatalf("GET %s before the outage: %d", path, status)
		}
	}
	var acked []int
	for i := range 5 {
		if status, _ := report(i); status != 201 {
			t.Fatalf("report %d before the outage: %d", i, status)
		}
		acked = append(acked, i)
	}

	stop()
	for deadline := time.Now().Add(30 * time.Second); len(postgresOf(pgDir)) > 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("PostgreSQL did not stop")
		}
	}
	down := time.Now()
	statuses := map[string]map[int]int{}
	count := func(what string, status int) {
		if statuses[what] == nil {
			statuses[what] = map[int]int{}
		}
		statuses[what][status]++
	}
	for i := 100; time.Since(down) < 10*time.Second; i++ {
		status, _ := send("GET", lookup, "")
		count("lookup", status)
		status, _ = send("GET", tile, "")
		count("cached tile", status)
		status, h := report(i)
		count("report", status)
		if status == 503 && h.Get("Retry-After") == "" {
			t.Errorf("a 503 for a report without Retry-After")
		}
		if status == 201 || status == 200 {
			acked = append(acked, i)
		}
		status, _ = send("GET", "/v1/reports?limit=5", "")
		count("report list", status)
		status, _ = send("GET", "/readyz", "")
		count("readyz", status)
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("answers while PostgreSQL was down: %v", statuses)
	for what, want := range map[string]int{"lookup": 200, "cached tile": 200, "report": 503, "report list": 503, "readyz": 503} {
		for status, k := range statuses[what] {
			if status != want {
				t.Errorf("%s answered %d %d times while PostgreSQL was down; want %d", what, status, k, want)
			}
		}
	}

	start()
	for i := 1000; ; i++ {
		status, _ := report(i)
		if status == 201 {
			acked = append(acked, i)
			break
		}
		if status != 503 {
			t.Fatalf("a report after PostgreSQL came back: %d", status)
		}
		if time.Since(down) > 2*time.Minute {
			t.Fatal("the server still refuses reports a minute after PostgreSQL came back")
		}
		time.Sleep(500 * time.Millisecond)
	}
	select {
	case err := <-s.done:
		t.Fatalf("the server exited: %v\n%s", err, s.stderr)
	default:
	}
	var stored struct {
		Reports []struct {
			ExternalID string `json:"external_id"`
		}
	}
	if status := getJSON(t, s.url+"/v1/reports?category=outage&limit=1000", &stored); status != 200 {
		t.Fatalf("listing reports after the outage: %d", status)
	}
	have := map[string]bool{}
	for _, r := range stored.Reports {
		have[r.ExternalID] = true
	}
	for _, i := range acked {
		if !have[fmt.Sprintf("outage-%d", i)] {
			t.Errorf("report outage-%d was acknowledged and is not there after the outage", i)
		}
	}
	// Every event of the acknowledged reports reaches the webhook once.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(250 * time.Millisecond) {
		keys := 0
		deliveries.Range(func(_, _ any) bool { keys++; return true })
		if keys >= len(acked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries for %d acknowledged reports a minute after the outage", keys, len(acked))
		}
	}
	time.Sleep(2 * time.Second) // a repeat would come within the retry's backoff
	deliveries.Range(func(key, n any) bool {
		if k := n.(*atomic.Int64).Load(); k != 1 {
			t.Errorf("delivery %v arrived %d times", key, k)
		}
		return true
	})
}
