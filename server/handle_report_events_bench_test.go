package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// moveBench holds the reports the workflow benchmarks move: filed and
// registered once per test binary, each then suspended and resumed in
// turn (moves counts the moves of each).
var moveBench struct {
	once  sync.Once
	ids   []int64
	moves []atomic.Int64
	err   error
}

// moveReports files 1,024 reports under a category whose department has
// a webhook (so every move writes an outbox row) and registers them.
func moveReports(b *testing.B, url string, pts [][2]float64) []int64 {
	b.Helper()
	moveBench.once.Do(func() {
		for _, s := range []struct{ path, body string }{
			{"/v1/departments/benchmove", `{"name":"bench moves","webhook_url":"http://127.0.0.1:9/gridmap"}`},
			{"/v1/categories/benchmove", `{"name":"bench moves","departments":["benchmove"],"limit":{"value":4,"clock":"working_hours"}}`},
		} {
			req, _ := http.NewRequest("PUT", url+s.path, strings.NewReader(s.body))
			if moveBench.err = drain(http.DefaultClient.Do(req)); moveBench.err != nil {
				return
			}
		}
		run := time.Now().UnixNano()
		for i := range 1024 {
			body, _ := json.Marshal(map[string]any{"external_id": fmt.Sprintf("move-%d-%d", run, i), "category": "benchmove",
				"location": map[string]any{"type": "Point", "coordinates": pts[i%len(pts)]}})
			res, err := http.Post(url+"/v1/reports", "application/json", bytes.NewReader(body))
			if err != nil {
				moveBench.err = err
				return
			}
			var r struct{ ID int64 }
			err = json.NewDecoder(res.Body).Decode(&r)
			res.Body.Close()
			if err == nil {
				err = postMove(http.DefaultClient, url, r.ID, "register")
			}
			if err != nil {
				moveBench.err = err
				return
			}
			moveBench.ids = append(moveBench.ids, r.ID)
		}
		moveBench.moves = make([]atomic.Int64, len(moveBench.ids))
	})
	if moveBench.err != nil {
		b.Fatal(moveBench.err)
	}
	return moveBench.ids
}

func postMove(client *http.Client, url string, id int64, action string) error {
	return drain(client.Post(fmt.Sprintf("%s/v1/reports/%d/events", url, id), "application/json",
		strings.NewReader(`{"action":"`+action+`","note":"bench"}`)))
}

// nextMove suspends or resumes the i-th report in turn. Ops on one report
// are 1,024 ops apart, so they never overlap among 16 clients.
func nextMove(client *http.Client, url string, ids []int64, i int) error {
	k := i % len(ids)
	action := "suspend"
	if moveBench.moves[k].Add(1)%2 == 0 {
		action = "resume"
	}
	return postMove(client, url, ids[k], action)
}

// BenchmarkWorkflowMovesHTTP moves reports through the workflow from 16
// concurrent clients over loopback, each move a durable transaction with
// its event, outbox row and notice, and reports moves per second.
func BenchmarkWorkflowMovesHTTP(b *testing.B) {
	url, pts := benchServer(b)
	ids := moveReports(b, url, pts)
	client, done := loadClient(16)
	defer done()
	b.ReportMetric(loadTest(b, 16, func(i int) error { return nextMove(client, url, ids, i) }), "moves/s")
}

// BenchmarkWorkflowMovesHTTPMonths is BenchmarkWorkflowMovesHTTP on a
// server keeping GRIDMAP_BENCH_REPORT_MONTHS months of reports before this
// one (see BenchmarkReportIntakeHTTPMonths). Skipped without them.
func BenchmarkWorkflowMovesHTTPMonths(b *testing.B) {
	if benchReportMonths() == 0 {
		b.Skip("GRIDMAP_BENCH_REPORT_MONTHS is not set")
	}
	BenchmarkWorkflowMovesHTTP(b)
}

// BenchmarkDurableUpdate is the baseline for moves: the database's own
// rate for single-row durable UPDATEs from 16 connections.
func BenchmarkDurableUpdate(b *testing.B) {
	db := pgtest.SharedWith(b, postgres.Options{MaxConns: 16})
	ctx := b.Context()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_rows (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
		INSERT INTO bench_rows (id) SELECT generate_series(0, 1023) ON CONFLICT DO NOTHING`); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(loadTest(b, 16, func(i int) error {
		_, err := db.Pool.Exec(ctx, `UPDATE bench_rows SET n = n + 1 WHERE id = $1`, i%1024)
		return err
	}), "updates/s")
}

// BenchmarkWorkflowMoveLatencyAt300 paces moves at 300/s from 16 clients
// and reports the median and 99th percentile of the request time.
func BenchmarkWorkflowMoveLatencyAt300(b *testing.B) {
	url, pts := benchServer(b)
	ids := moveReports(b, url, pts)
	client, done := loadClient(16)
	defer done()
	p50, p99 := pacedLatencies(b, 300, 16, func(i int) error { return nextMove(client, url, ids, i) })
	b.ReportMetric(p50, "p50_ms")
	b.ReportMetric(p99, "p99_ms")
}
