package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
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
	// As gridmap serve draws them: z14 tiles from blocks kept in memory
	// (dropped by the notices a TileStore follows; nothing changes here).
	ts := postgres.NewTileStore(db)
	ts.KeepTileBlocks(128 << 20)
	svc = tiles.NewService(ts, 512<<20)
	access := postgres.NewAccessStore(db)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go access.Follow(ctx)
	<-access.Listening()
	s := New(Config{}, Deps{Layers: postgres.NewLayerStore(db), Tiles: svc, Ready: func(context.Context) error { return nil }, Access: access},
		slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(s.Handler())
	b.Cleanup(hs.Close)
	signInAsAdmin(b, access, hs.Listener.Addr().String())
	x0, y0, x1, y1 := tiles.Covering(14, [4]float64{-74.02, 40.65, -73.9, 40.8}, 0)
	for x := x0; x <= x1; x++ {
		for y := y0; y <= y1; y++ {
			urls = append(urls, fmt.Sprintf("%s/tiles/nyc3/14/%d/%d.mvt", hs.URL, x, y))
		}
	}
	return svc, urls
}

// BenchmarkTileColdZ14 requests z14 tiles of New York that are not cached,
// one client after another request: each is drawn from its block (read
// once, on the first round). Reports the median time of a cold tile.
func BenchmarkTileColdZ14(b *testing.B) {
	svc, urls := tileBenchServer(b)
	client := &http.Client{}
	var took []time.Duration
	i := 0
	for b.Loop() {
		svc.Cache().InvalidateAll()
		start := time.Now()
		if err := drain(client.Get(urls[i%len(urls)])); err != nil {
			b.Fatal(err)
		}
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
	getLoad(b, urls, 2*runtime.GOMAXPROCS(0), func(int) { svc.Cache().InvalidateAll() })
}

// BenchmarkTileWarmLoadZ14 is the same load generator over the same tiles
// once they are cached.
func BenchmarkTileWarmLoadZ14(b *testing.B) {
	_, urls := tileBenchServer(b)
	for _, u := range urls {
		if err := drain(http.Get(u)); err != nil {
			b.Fatal(err)
		}
	}
	getLoad(b, urls, 2*runtime.GOMAXPROCS(0), nil)
}
