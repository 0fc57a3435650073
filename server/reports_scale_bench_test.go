package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/gridmap/gridmap/tiles"
	"github.com/paulmach/orb"
)

// scaleReports is how many reports the scale benchmarks file: a year of a
// busy district's.
const scaleReports = 100_000

// scaleServer is a server over a database of its own holding the demo
// district and a year of scaleReports demo reports (demo.LoadHistory, as
// `gridmap demo --reports 100000` files them).
type scaleServer struct {
	url     string
	tiles   *tiles.Service
	county  orb.Bound   // the district
	streets []orb.Bound // its streets (街道): a dispatcher's view of one
}

var (
	scaleOnce  sync.Once
	scaleSetup *scaleServer
)

// newScaleServer builds the scale server once per test binary (filing the
// reports takes minutes): both benchmarks, and every b.N round, share it.
// It lives until the binary exits; pgtest drops its database then.
func newScaleServer(b *testing.B) *scaleServer {
	b.Helper()
	if testing.Short() {
		b.Skip("files 100,000 reports: minutes of setup")
	}
	scaleOnce.Do(func() { scaleSetup = buildScaleServer(b) })
	if scaleSetup == nil {
		b.Fatal("the scale server failed to start in an earlier benchmark")
	}
	return scaleSetup
}

func buildScaleServer(b *testing.B) *scaleServer {
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.ConnString(b), nil)
	if err != nil {
		b.Fatalf("opening the scale database: %v", err)
	}
	if err := db.Migrate(ctx); err != nil {
		b.Fatalf("migrating the scale database: %v", err)
	}
	d := loadDemoDistrict(b, db)
	locator := postgres.NewLocator(db)
	go locator.Follow(ctx)
	<-locator.Listening()

	start := time.Now()
	res, err := demo.LoadHistory(ctx, postgres.NewReportStore(db, locator, shanghai), d,
		demo.History{Seed: demo.DefaultSeed, N: scaleReports, Workers: int(db.Pool.Config().MaxConns)})
	if err != nil {
		b.Fatalf("filing the demo's year of reports: %v", err)
	}
	b.Logf("%d reports filed in %s, %d moved on by %d workflow events", res.Filed, time.Since(start).Round(time.Second), res.Moved, res.Moves)
	// The state autovacuum leaves the tables in a while after a bulk load
	// (statistics, visibility map), without waiting for it to come by.
	for _, table := range []string{"reports", "report_events"} {
		if _, err := db.Pool.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			b.Fatal(err)
		}
	}

	s := &scaleServer{}
	for _, f := range d.Grids[demo.LayerID] {
		switch f.Level {
		case "district":
			s.county = f.Geometry.Bound()
		case "street":
			s.streets = append(s.streets, f.Geometry.Bound())
		}
	}
	tileStore := postgres.NewTileStore(db)
	s.tiles = tiles.NewService(tileStore, 64<<20)
	following := make(chan struct{})
	go tileStore.FollowTileChanges(ctx, s.tiles.Cache(), func() { close(following) })
	<-following
	feed := postgres.NewFeed(db)
	go feed.Run(ctx)
	access := postgres.NewAccessStore(db)
	go access.Follow(ctx)
	<-access.Listening()
	srv := New(Config{}, Deps{Layers: postgres.NewLayerStore(db), Grids: postgres.NewGridStore(db), Locator: locator,
		Reports: postgres.NewReportStore(db, locator, shanghai), Categories: postgres.NewCategoryStore(db), Feed: feed,
		Tiles: s.tiles, Ready: func(context.Context) error { return nil }, Access: access}, slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(srv.Handler())
	s.url = hs.URL
	secret, err := access.CreateToken(ctx, &gridmap.Token{Name: "scale-admin", Role: gridmap.RoleAdmin})
	if err != nil {
		b.Fatal(err)
	}
	adminTokens.Store(hs.Listener.Addr().String(), secret)
	return s
}

// timeGets requests each url in turn, one client as a browser tab's one
// connection would, and returns each request's time.
func timeGets(b *testing.B, urls []string) []time.Duration {
	b.Helper()
	took := make([]time.Duration, 0, len(urls))
	for _, u := range urls {
		start := time.Now()
		if err := drain(http.Get(u)); err != nil {
			b.Fatalf("GET %s: %v", u, err)
		}
		took = append(took, time.Since(start))
	}
	return took
}

// quantileMS is the q-quantile of took (sorted in place), in milliseconds.
func quantileMS(took []time.Duration, q float64) float64 {
	slices.Sort(took)
	return float64(took[min(len(took)-1, int(q*float64(len(took))))].Microseconds()) / 1000
}

// BenchmarkReportTiles100k requests every open-reports tile of the district
// at z12 to z15 (the console's default filter; below z15 they are
// clusters), as a dispatcher panning across it would: first cold (rendered
// in PostGIS), then the same tiles again (warm: from the tile cache).
func BenchmarkReportTiles100k(b *testing.B) {
	s := newScaleServer(b)
	var urls []string
	var zooms []int // of each url
	for z := 12; z <= 15; z++ {
		x0, y0, x1, y1 := tiles.Covering(z, [4]float64{s.county.Min[0], s.county.Min[1], s.county.Max[0], s.county.Max[1]}, 0)
		for x := x0; x <= x1; x++ {
			for y := y0; y <= y1; y++ {
				urls = append(urls, fmt.Sprintf("%s/tiles/%s/%d/%d/%d.mvt?status=open", s.url, gridmap.ReportsTileset, z, x, y))
				zooms = append(zooms, z)
			}
		}
	}
	var cold, warm []time.Duration
	coldAt := map[int][]time.Duration{}
	for b.Loop() {
		s.tiles.Cache().InvalidateAll()
		took := timeGets(b, urls)
		for k, d := range took {
			coldAt[zooms[k]] = append(coldAt[zooms[k]], d)
		}
		cold = append(cold, took...)
		warm = append(warm, timeGets(b, urls)...)
	}
	for z := 12; z <= 15; z++ {
		b.Logf("cold z%d: %d tiles, p50 %.1f ms, max %.1f ms", z, len(coldAt[z])/b.N, quantileMS(coldAt[z], 0.5), quantileMS(coldAt[z], 1))
	}
	b.ReportMetric(quantileMS(cold, 0.5), "cold_p50_ms")
	b.ReportMetric(quantileMS(cold, 1), "cold_max_ms")
	b.ReportMetric(quantileMS(warm, 0.5), "warm_p50_ms")
	b.ReportMetric(quantileMS(warm, 0.99), "warm_p99_ms")
	b.ReportMetric(quantileMS(warm, 1), "warm_max_ms")
	b.ReportMetric(float64(len(urls)), "tiles")
}

// BenchmarkReportList100k asks what the console asks for the list beside
// the map (GET /v1/reports?bbox=&status=open&sort=deadline&limit=100, and
// the counts of the view), several times each, at two sizes of view: a
// whole street (街道, a few kilometres: thousands of reports, the list is
// the 100 due first) and a block at its middle (about 500 m, a z16 map:
// tens of reports, all listed).
func BenchmarkReportList100k(b *testing.B) {
	s := newScaleServer(b)
	var views []orb.Bound
	for _, v := range s.streets {
		c := v.Center()
		views = append(views, v, orb.Bound{Min: orb.Point{c[0] - 0.0025, c[1] - 0.002}, Max: orb.Point{c[0] + 0.0025, c[1] + 0.002}})
	}
	var urls []string
	for range 10 {
		for _, v := range views {
			urls = append(urls, fmt.Sprintf("%s/v1/reports?bbox=%f,%f,%f,%f&status=open&sort=deadline&limit=100", s.url, v.Min[0], v.Min[1], v.Max[0], v.Max[1]),
				fmt.Sprintf("%s/v1/reports/counts?bbox=%f,%f,%f,%f", s.url, v.Min[0], v.Min[1], v.Max[0], v.Max[1]))
		}
	}
	var took []time.Duration
	kind := map[int][]time.Duration{} // 0 street, 1 block
	for b.Loop() {
		t := timeGets(b, urls)
		for k, d := range t {
			kind[k%2] = append(kind[k%2], d)
		}
		took = append(took, t...)
	}
	for k, name := range []string{"street", "block"} {
		b.Logf("%s views: p50 %.1f ms, p99 %.1f ms", name, quantileMS(kind[k], 0.5), quantileMS(kind[k], 0.99))
	}
	b.ReportMetric(quantileMS(took, 0.5), "p50_ms")
	b.ReportMetric(quantileMS(took, 0.99), "p99_ms")
	b.ReportMetric(quantileMS(took, 1), "max_ms")
	b.ReportMetric(float64(len(views)), "views")
}
