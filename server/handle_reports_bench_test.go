package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

var benchRun atomic.Int64

// benchCategory defines the department and category the intake benchmarks
// file their reports under.
func benchCategory(b *testing.B, url string) {
	b.Helper()
	for _, s := range []struct{ path, body string }{
		{"/v1/departments/bench", `{"name":"bench"}`},
		{"/v1/categories/bench", `{"name":"bench","departments":["bench"],"limit":{"value":4,"clock":"working_hours"}}`},
	} {
		req, _ := http.NewRequest("PUT", url+s.path, strings.NewReader(s.body))
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode/100 != 2 {
			b.Fatalf("%s: %v %v", s.path, res, err)
		}
		res.Body.Close()
	}
}

// BenchmarkReportIntakeHTTP posts reports from 16 concurrent clients over
// loopback into the NYC tract layer, each committed durably, and reports
// reports per second.
func BenchmarkReportIntakeHTTP(b *testing.B) {
	url, pts := benchServer(b)
	benchCategory(b, url)
	run := fmt.Sprintf("%d-%d", time.Now().UnixNano(), benchRun.Add(1))
	client, done := loadClient(16)
	defer done()
	b.ReportMetric(loadTest(b, 16, func(i int) error {
		body, _ := json.Marshal(map[string]any{"external_id": fmt.Sprintf("bench-%s-%d", run, i), "category": "bench",
			"location": map[string]any{"type": "Point", "coordinates": pts[i%len(pts)]}, "source": "bench"})
		return drain(client.Post(url+"/v1/reports", "application/json", bytes.NewReader(body)))
	}), "reports/s")
}

// BenchmarkReportIntakeHTTPMonths is BenchmarkReportIntakeHTTP on a server
// keeping GRIDMAP_BENCH_REPORT_MONTHS months of reports before this one
// (make bench runs it apart, with 36): against BenchmarkReportIntakeHTTP of
// the same run, what the months kept cost intake. Skipped without them.
func BenchmarkReportIntakeHTTPMonths(b *testing.B) {
	if benchReportMonths() == 0 {
		b.Skip("GRIDMAP_BENCH_REPORT_MONTHS is not set")
	}
	BenchmarkReportIntakeHTTP(b)
}

// BenchmarkDurableInsert is the baseline: the database's own rate for
// single-row durable commits from 16 concurrent connections, no HTTP and
// no assignment.
func BenchmarkDurableInsert(b *testing.B) {
	db := pgtest.SharedWith(b, postgres.Options{MaxConns: 16})
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_inserts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, external_id text UNIQUE, body jsonb)`); err != nil {
		b.Fatal(err)
	}
	run := fmt.Sprintf("%d-%d", time.Now().UnixNano(), benchRun.Add(1))
	b.ReportMetric(loadTest(b, 16, func(i int) error {
		_, err := db.Pool.Exec(ctx, `INSERT INTO bench_inserts (external_id, body) VALUES ($1, '{"category":"bench"}')`, fmt.Sprintf("%s-%d", run, i))
		return err
	}), "reports/s")
}

// BenchmarkReportLatencyAt300 paces intake at 300 reports/s from 16
// clients and reports the median and 99th percentile of the request time.
func BenchmarkReportLatencyAt300(b *testing.B) {
	url, pts := benchServer(b)
	benchCategory(b, url)
	run := fmt.Sprintf("lat-%d-%d", time.Now().UnixNano(), benchRun.Add(1))
	client, done := loadClient(16)
	defer done()
	p50, p99 := pacedLatencies(b, 300, 16, func(i int) error {
		body, _ := json.Marshal(map[string]any{"external_id": fmt.Sprintf("%s-%d", run, i), "category": "bench",
			"location": map[string]any{"type": "Point", "coordinates": pts[i%len(pts)]}})
		return drain(client.Post(url+"/v1/reports", "application/json", bytes.NewReader(body)))
	})
	b.ReportMetric(p50, "p50_ms")
	b.ReportMetric(p99, "p99_ms")
}

// pacedLatencies starts b.N ops at rate per second, spread over workers,
// and returns the median and 99th percentile of their times in
// milliseconds. Before the clock starts, every worker runs a few ops at
// once, so that the pool's connections are open and have prepared their
// statements: the figures are those of a running service, not of its
// first second.
func pacedLatencies(b *testing.B, rate, workers int, op func(i int) error) (p50, p99 float64) {
	var warm sync.WaitGroup
	for w := range workers {
		warm.Go(func() {
			for k := range 4 {
				if err := op(b.N + w*4 + k); err != nil {
					b.Error(err)
				}
			}
		})
	}
	warm.Wait()
	latencies := make([]time.Duration, b.N)
	ticks := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ticks {
				start := time.Now()
				if err := op(i); err != nil {
					b.Error(err)
				}
				latencies[i] = time.Since(start)
			}
		}()
	}
	b.ResetTimer()
	pace := time.NewTicker(time.Second / time.Duration(rate))
	for i := 0; i < b.N; i++ {
		<-pace.C
		ticks <- i
	}
	pace.Stop()
	close(ticks)
	wg.Wait()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return ms(latencies[len(latencies)/2]), ms(latencies[len(latencies)*99/100])
}

// BenchmarkReportListHTTP lists the 200 open reports most urgent in a box
// of about a tenth of New York (sort=deadline) and counts the box's
// reports, over 5,000 reports in the NYC tracts filed before the clock
// starts; the baseline is the same list in arrival order, as it was before
// there was a choice.
func BenchmarkReportListHTTP(b *testing.B) {
	url, pts := benchServer(b)
	benchCategory(b, url)
	var counts struct{ Total int }
	if err := getJSON(url+"/v1/reports/counts?category=bench&source=benchlist", &counts); err != nil {
		b.Fatal(err)
	}
	run := fmt.Sprintf("list-%d-%d", time.Now().UnixNano(), benchRun.Add(1))
	b.Logf("%d reports filed before", counts.Total)
	client, done := loadClient(16)
	defer done()
	if n := 5000 - counts.Total; n > 0 {
		// Reported over the last three days: some overdue, deadlines spread.
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
					body, _ := json.Marshal(map[string]any{"external_id": fmt.Sprintf("%s-%d", run, i), "category": "bench", "source": "benchlist",
						"reported_at": time.Now().Add(-time.Duration(i%4320) * time.Minute), "urgent": i%5 == 0,
						"location": map[string]any{"type": "Point", "coordinates": pts[i%len(pts)]}})
					if err := drain(client.Post(url+"/v1/reports", "application/json", bytes.NewReader(body))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	const box = "-74.05,40.65,-73.9,40.8"
	for _, q := range []struct{ name, path string }{
		{"arrival (baseline)", "/v1/reports?bbox=" + box + "&status=open&limit=200"},
		{"deadline", "/v1/reports?bbox=" + box + "&sort=deadline&status=open&limit=200"},
		{"counts", "/v1/reports/counts?bbox=" + box},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := drain(client.Get(url + q.path)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// getJSON decodes the answer of a GET into v.
func getJSON(url string, v any) error {
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	return json.NewDecoder(res.Body).Decode(v)
}
