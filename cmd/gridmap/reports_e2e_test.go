package main_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestReportsSurviveKill posts 5,000 reports from 8 clients and kills the
// server and PostgreSQL with SIGKILL partway: after a restart every report
// that got a 201 is there, and retrying all 5,000 completes the set
// without a duplicate.
func TestReportsSurviveKill(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServe(t, dataDir, "--demo")
	put := func(url, path, body string) {
		req, _ := http.NewRequest("PUT", url+path, strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode/100 != 2 {
			t.Fatalf("PUT %s: %v %v", path, res, err)
		}
		res.Body.Close()
	}
	put(s.url, "/v1/departments/kill-test", `{"name":"test department"}`)
	put(s.url, "/v1/categories/kill-test", `{"name":"test","departments":["kill-test"],"limit":{"value":2,"clock":"urgent_hours"}}`)

	const n = 5000
	body := func(i int) string {
		return fmt.Sprintf(`{"external_id":"kill-%d","category":"kill-test","location":{"type":"Point","coordinates":[%.6f,%.6f]},"reported_at":"2026-11-20T10:00:00+08:00"}`,
			i, 120.10+float64(i%100)*0.001, 30.22+float64(i/100)*0.001)
	}
	// send posts reports [0, n) from 8 clients; with stopOnError it stops at
	// the first failure (the server is gone).
	send := func(url string, stopOnError bool) (acked []int, statuses map[int]int) {
		var mu sync.Mutex
		statuses = map[int]int{}
		var next atomic.Int64
		var failed atomic.Bool
		var wg sync.WaitGroup
		client := &http.Client{Timeout: 30 * time.Second}
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= n || (stopOnError && failed.Load()) {
						return
					}
					res, err := client.Post(url+"/v1/reports", "application/json", strings.NewReader(body(i)))
					if err != nil {
						failed.Store(true)
						continue
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					mu.Lock()
					statuses[res.StatusCode]++
					if res.StatusCode == 201 || res.StatusCode == 200 {
						acked = append(acked, i)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return acked, statuses
	}

	var acked []int
	done := make(chan struct{})
	go func() {
		acked, _ = send(s.url, true)
		close(done)
	}()
	// Let part of the load through, then kill the server and the database.
	time.Sleep(1500 * time.Millisecond)
	s.stop(t, syscall.SIGKILL)
	for _, pid := range postgresOf(dataDir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	<-done
	if len(acked) == 0 || len(acked) >= n {
		t.Fatalf("%d of %d reports acknowledged before the kill; the test needs the kill to land mid-load", len(acked), n)
	}

	s = startServe(t, dataDir)
	defer s.stop(t, syscall.SIGTERM)
	stored := func() map[string]int {
		ids := map[string]int{}
		cursor := ""
		for {
			var page struct {
				Reports []struct {
					ExternalID string `json:"external_id"`
				}
				Next string
			}
			if status := getJSON(t, s.url+"/v1/reports?limit=1000"+cursor, &page); status != 200 {
				t.Fatalf("listing reports: %d", status)
			}
			for _, r := range page.Reports {
				if strings.HasPrefix(r.ExternalID, "kill-") { // not the demo's own reports
					ids[r.ExternalID]++
				}
			}
			if page.Next == "" {
				return ids
			}
			cursor = "&cursor=" + page.Next
		}
	}
	after := stored()
	for _, i := range acked {
		if after[fmt.Sprintf("kill-%d", i)] != 1 {
			t.Fatalf("report kill-%d was acknowledged before the kill and is missing after the restart", i)
		}
	}
	t.Logf("%d reports acknowledged before SIGKILL of server and PostgreSQL, %d stored after restart", len(acked), len(after))

	_, statuses := send(s.url, false)
	if statuses[201]+statuses[200] != n {
		t.Fatalf("retry statuses %v", statuses)
	}
	final := stored()
	if len(final) != n {
		t.Errorf("%d distinct reports after the retry, want %d", len(final), n)
	}
	for id, count := range final {
		if count != 1 {
			t.Errorf("report %s stored %d times", id, count)
		}
	}
}
