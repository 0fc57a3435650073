package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/gridmap/gridmap/tiles"
)

// tileBenchServer serves the NYC borough > NTA > tract layer ("nyc3") as
// tiles over loopback TCP, and lists the z14 tiles over the middle of the
// city.
func tileBenchServer(b *testing.B) (svc *tiles.Service, urls []string) {
	b.Helper()
	db := pgtest.Shared(b)
	pgtest.LoadNYCHierarchy(b, db, "nyc3")
	svc = tiles.NewService(postgres.NewTileStore(db), 512<<20)
	s := New(Config{}, Deps{Layers: postgres.NewLayerStore(db), Tiles: svc, Ready: func(context.Context) error { return nil }},
		slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(s.Handler())
	b.Cleanup(hs.Close)
	x0, y0, x1, y1 := tiles.Covering(14, [4]float64{-74.02, 40.65, -73.9, 40.8}, 0)
	for x := x0; x <= x1; x++ {
		for y := y0; y <= y1; y++ {
			urls = append(urls, fmt.Sprintf("%s/tiles/nyc3/14/%d/%d.mvt", hs.URL, x, y))
		}
	}
	return svc, urls
}

// tileLoad requests urls round-robin from several clients (as a browser
// does, accepting gzip) and reports requests per second; before, if set,
// runs ahead of request i.
func tileLoad(b *testing.B, urls []string, workers int, before func(i int)) {
	transport := &http.Transport{MaxIdleConnsPerHost: workers}
	client := &http.Client{Transport: transport}
	defer transport.CloseIdleConnections()
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
				if before != nil {
					before(i)
				}
				res, err := client.Get(urls[i%len(urls)])
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Errorf("status %d", res.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkTileColdZ14 requests z14 tiles of New York that are not cached,
// one client after another request: each is rendered in PostGIS. Reports
// the median time of a cold tile.
func BenchmarkTileColdZ14(b *testing.B) {
	svc, urls := tileBenchServer(b)
	client := &http.Client{}
	var took []time.Duration
	i := 0
	for b.Loop() {
		svc.Cache().InvalidateAll()
		start := time.Now()
		res, err := client.Get(urls[i%len(urls)])
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		took = append(took, time.Since(start))
		i++
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median_ms")
}

// BenchmarkTileColdLoadZ14 is the load generator over tiles that are not
// cached: every request renders.
func BenchmarkTileColdLoadZ14(b *testing.B) {
	svc, urls := tileBenchServer(b)
	tileLoad(b, urls, 2*runtime.GOMAXPROCS(0), func(int) { svc.Cache().InvalidateAll() })
}

// BenchmarkTileWarmLoadZ14 is the same load generator over the same tiles
// once they are cached.
func BenchmarkTileWarmLoadZ14(b *testing.B) {
	_, urls := tileBenchServer(b)
	for _, u := range urls {
		res, err := http.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	tileLoad(b, urls, 2*runtime.GOMAXPROCS(0), nil)
}
