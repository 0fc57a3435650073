package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// benchServer serves the NYC tracts (layer "tracts") over real loopback TCP,
// with request logging off as in production at info level for lookups.
func benchServer(b *testing.B) (url string, pts [][2]float64) {
	b.Helper()
	env := newLookupBench(b)
	return env.url, env.pts
}

// lookupBench is benchServer's server and what the baselines beside it
// need: its database, its index and the admin token its clients send.
type lookupBench struct {
	url     string
	pts     [][2]float64
	db      *postgres.DB
	locator *postgres.Locator
	token   string
	server  *Server
}

// benchReportMonths is GRIDMAP_BENCH_REPORT_MONTHS: the benchmark server
// keeps that many months of reports before this one, as a server does after
// so many months (their partitions, empty). 0 when not set.
func benchReportMonths() int {
	n, _ := strconv.Atoi(os.Getenv("GRIDMAP_BENCH_REPORT_MONTHS"))
	return max(n, 0)
}

func newLookupBench(b *testing.B) *lookupBench {
	b.Helper()
	nyc := pgtest.NYCDir(b)
	// 16 connections, as the baselines have, for 16 clients.
	db := pgtest.SharedWith(b, postgres.Options{MaxConns: 16})
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	layers, grids := postgres.NewLayerStore(db), postgres.NewGridStore(db)
	if _, err := layers.Layer(ctx, "tracts"); gridmap.ErrorCode(err) == gridmap.ENOTFOUND {
		f, err := os.Open(filepath.Join(nyc, "L3_tracts2010.geojson"))
		if err != nil {
			b.Fatal(err)
		}
		_, err = grids.Import(ctx, "tracts", geo.NewFeatureReader(f, geo.FieldMap{Code: "boroct2010", Name: "ctlabel", DefaultLevel: "tract"}),
			gridmap.ImportOptions{MakeValid: true, Levels: []string{"tract"}})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		b.Fatal(err)
	}
	reports := postgres.NewReportStore(db, loc, shanghai)
	if n := benchReportMonths(); n > 0 {
		var months []time.Time
		now := time.Now().UTC()
		for i := range n {
			months = append(months, time.Date(now.Year(), now.Month()-1-time.Month(i), 1, 0, 0, 0, 0, time.UTC))
		}
		if _, err := reports.MakeMonths(ctx, months...); err != nil {
			b.Fatal(err)
		}
	}
	// The live feed numbers every event, as on a server.
	feed := postgres.NewFeed(db)
	if os.Getenv("NOFEED") == "" {
		go feed.Run(ctx)
	}
	// Every request carries a token, checked as on a server.
	access := postgres.NewAccessStore(db)
	go access.Follow(ctx)
	<-access.Listening()
	s := New(Config{}, Deps{Layers: layers, Grids: grids, Importer: grids, Editor: grids, Drafts: grids, Locator: loc,
		Reports: reports, Categories: postgres.NewCategoryStore(db), Feed: feed,
		Ready: func(context.Context) error { return nil }, Access: access}, slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(s.Handler())
	b.Cleanup(hs.Close)
	token := signInAsAdmin(b, access, hs.Listener.Addr().String())
	rnd := rand.New(rand.NewPCG(9, 9))
	pts := make([][2]float64, 100_000)
	for i := range pts {
		pts[i] = [2]float64{-74.256 + rnd.Float64()*0.556, 40.496 + rnd.Float64()*0.42}
	}
	return &lookupBench{url: hs.URL, pts: pts, db: db, locator: loc, token: token, server: s}
}

// BenchmarkLookupBatchHTTP posts batches of 100,000 points over loopback
// and reports points answered per second.
func BenchmarkLookupBatchHTTP(b *testing.B) { benchBatches(b, newLookupBench(b)) }

// BenchmarkLookupBatchHTTPInInputOrder is its baseline: the same batches
// answered in the order their points came in, each chunk written as it is
// ready, as every batch was before large ones were answered in space order.
func BenchmarkLookupBatchHTTPInInputOrder(b *testing.B) {
	env := newLookupBench(b)
	env.server.spaceOrderFrom = gridmap.MaxLookupPoints + 1
	benchBatches(b, env)
}

func benchBatches(b *testing.B, env *lookupBench) {
	url, pts := env.url, env.pts
	var body strings.Builder
	body.WriteString(`{"layer":"tracts","points":[`)
	for i, p := range pts {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, "[%.6f,%.6f]", p[0], p[1])
	}
	body.WriteString("]}")
	payload := []byte(body.String())
	client := &http.Client{}
	post := func() {
		res, err := client.Post(url+"/v1/lookup", "application/json", bytes.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, res.Body); err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	// The first batch after the index is built also fills the lattice of
	// near cells for the points outside every tract (two thirds of these):
	// timed on its own, then the batches of a server at work.
	start := time.Now()
	post()
	first := float64(len(pts)) / time.Since(start).Seconds()
	n := 0
	for b.Loop() {
		if n == 0 {
			start = time.Now()
		}
		post()
		n++
	}
	b.ReportMetric(float64(n*len(pts))/time.Since(start).Seconds(), "points/s")
	b.ReportMetric(first, "first_points/s") // after the timed loop, whose start clears metrics
}

// loadTest runs op(0) ... op(b.N-1) from workers goroutines, timed, and
// returns operations per second. The first error stops its worker.
func loadTest(b *testing.B, workers int, op func(i int) error) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(b.N) / time.Since(start).Seconds()
}

// loadClient is an HTTP client keeping a connection per worker.
func loadClient(workers int) (*http.Client, func()) {
	transport := &http.Transport{MaxIdleConnsPerHost: workers}
	return &http.Client{Transport: &adminTransport{base: transport}}, transport.CloseIdleConnections
}

// drain reads and closes a response, and fails one without a 2xx status.
func drain(res *http.Response, err error) error {
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}

// getLoad sends GET requests for urls round-robin from 4 clients per core
// and reports requests per second; before, if set, runs ahead of request i.
func getLoad(b *testing.B, urls []string, workers int, before func(i int)) {
	if workers == 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	client, done := loadClient(workers)
	defer done()
	b.ReportMetric(loadTest(b, workers, func(i int) error {
		if before != nil {
			before(i)
		}
		return drain(client.Get(urls[i%len(urls)]))
	}), "req/s")
}

// BenchmarkLookupGetHTTP sends single-point GET /v1/lookup requests.
func BenchmarkLookupGetHTTP(b *testing.B) {
	url, pts := benchServer(b)
	urls := make([]string, 10_000)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/v1/lookup?layer=tracts&lon=%.6f&lat=%.6f", url, pts[i][0], pts[i][1])
	}
	getLoad(b, urls, 0, nil)
}

// BenchmarkHealthzGetHTTP is the baseline for BenchmarkLookupGetHTTP: the
// same load generator against the cheapest route, /healthz.
func BenchmarkHealthzGetHTTP(b *testing.B) {
	url, _ := benchServer(b)
	getLoad(b, []string{url + "/healthz"}, 0, nil)
}
