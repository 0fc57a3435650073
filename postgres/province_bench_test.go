package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/gridmap/gridmap/tiles"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/planar"
)

// BenchmarkProvince measures a generated province at each number of
// districts GRIDMAP_BENCH_DISTRICTS lists (comma-separated; default 1 and
// 40): the districts are written to a GeoJSON file and imported from it
// into a database of their own, and then the lookup index is built and
// lookups, tiles, a move_edge and a street's coverage are timed on it. The
// figures are metrics of one run each (-benchtime 1x); make bench prints
// the larger province against one district, and the README has the figures
// at 400 districts (about a million micro-grids).
func BenchmarkProvince(b *testing.B) {
	list := os.Getenv("GRIDMAP_BENCH_DISTRICTS")
	if list == "" {
		list = "1,40"
	}
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > demo.MaxDistricts {
			b.Fatalf("GRIDMAP_BENCH_DISTRICTS=%q: give numbers of districts from 1 to %d, comma-separated", list, demo.MaxDistricts)
		}
		b.Run(fmt.Sprintf("districts=%d", n), func(b *testing.B) {
			var p provinceFigures
			for b.Loop() {
				p = measureProvince(b, n)
			}
			b.ReportMetric(float64(p.microgrids), "microgrids")
			b.ReportMetric(float64(p.features), "grids")
			if p.imported > 0 { // not when the province was already there
				b.ReportMetric(p.generate.Seconds(), "generate_s")
				b.ReportMetric(float64(p.fileBytes)/(1<<20), "file_MB")
				b.ReportMetric(p.imported.Seconds(), "import_s")
			}
			b.ReportMetric(p.indexBuild.Seconds(), "index_s")
			b.ReportMetric(float64(p.indexHeap)/(1<<20), "index_heap_MB")
			b.ReportMetric(float64(p.indexHuge)/(1<<20), "index_huge_pages_MB")
			b.ReportMetric(float64(p.indexPeak)/(1<<20), "index_peak_rss_MB")
			b.ReportMetric(float64(p.rssBefore)/(1<<20), "rss_before_index_MB")
			b.ReportMetric(p.lookup, "lookup_us")
			b.ReportMetric(p.lookupInSpaceOrder, "lookup_space_order_us")
			b.ReportMetric(p.z14Median, "z14_cold_ms")
			b.ReportMetric(p.z14P95, "z14_cold_p95_ms")
			b.ReportMetric(float64(p.z8Largest)/1024, "z8_max_KB")
			b.ReportMetric(p.z8Slowest, "z8_slowest_ms")
			b.ReportMetric(p.moveEdge, "move_edge_ms")
			b.ReportMetric(p.coverage, "coverage_street_ms")
			b.ReportMetric(p.reload.Seconds(), "reload_s")
			b.ReportMetric(float64(p.reloadPeak)/(1<<20), "reload_peak_rss_MB")
		})
	}
}

type provinceFigures struct {
	features, microgrids int
	fileBytes            int64
	generate, imported   time.Duration
	indexBuild           time.Duration
	indexHeap, indexPeak uint64  // bytes: the index's live heap; the process's peak resident set while building it
	indexHuge            int64   // bytes of the index's lookup memory in huge pages
	rssBefore            uint64  // bytes: the process's resident set before
	lookup               float64 // us a lookup, co-owners within 10 m
	lookupInSpaceOrder   float64 // the same points in space order, as a large batch is answered
	z14Median, z14P95    float64 // ms a cold z14 tile
	z8Largest            int     // bytes gzip, the largest z8 tile
	z8Slowest            float64 // ms, the slowest cold z8 tile
	moveEdge             float64 // ms, median of validated and committed move_edges
	coverage             float64 // ms, median of a street's coverage
	// The layer's index rebuilt after its edits (the move_edges), as a
	// server does on their change notice, and the process's peak resident
	// set from before it, with the index it replaces still held.
	reload     time.Duration
	reloadPeak uint64
}

// measureProvince generates a province of n districts, imports it into a
// database of its own and measures it (see BenchmarkProvince). With
// GRIDMAP_BENCH_PROVINCE_DB (a connection string) it uses that database
// instead, and one already holding the province is measured as it is,
// without generating and importing it again (the import is then not
// measured): a province of 400 districts takes most of an hour to make.
// Such a database holds one province, so give one number of districts
// with it; GRIDMAP_BENCH_PROVINCE_FILE likewise names one province's file.
func measureProvince(b testing.TB, n int) provinceFigures {
	ctx := context.Background()
	var p provinceFigures
	var db *postgres.DB
	if url := os.Getenv("GRIDMAP_BENCH_PROVINCE_DB"); url != "" {
		var err error
		// The import logs how long each of its steps took.
		if db, err = postgres.Open(ctx, url, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
	} else {
		db = pgtest.NewDB(b)
	}
	layer := demo.Layers(n)[0]
	var sample []orb.MultiPolygon
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE level = 'microgrid') FROM grids WHERE layer_id = $1`,
		layer.ID).Scan(&p.features, &p.microgrids); err != nil {
		b.Fatal(err)
	}
	switch want := n * 2500; {
	case p.microgrids == want:
		sample = sampleMicrogrids(b, db, layer.ID)
		b.Logf("%d districts: %d grids (%d micro-grids) already in the database", n, p.features, p.microgrids)
	case p.microgrids > 0:
		b.Fatalf("the database holds %d micro-grids in layer %s, not the %d of %d districts", p.microgrids, layer.ID, want, n)
	default:
		p.features, p.microgrids = 0, 0
		sample = importProvince(b, db, n, &p)
	}

	// The index's live heap: what stays reachable once it is built; and
	// the process's peak while building it, from a resident set that holds
	// only what is live (the generator's garbage returned to the system).
	debug.FreeOSMemory()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p.rssBefore = procStatus("VmRSS:")
	resetPeakRSS()
	loc := postgres.NewLocator(db)
	start := time.Now()
	if err := loc.Load(ctx); err != nil {
		b.Fatal(err)
	}
	p.indexBuild = time.Since(start)
	p.indexPeak = procStatus("VmHWM:")
	runtime.GC()
	runtime.ReadMemStats(&after)
	if after.HeapAlloc > before.HeapAlloc {
		p.indexHeap = after.HeapAlloc - before.HeapAlloc
	}
	for _, st := range loc.IndexStats() {
		p.indexHuge += st.HugePageBytes
	}
	b.Logf("index built in %s: %.0f MB of heap (%.0f MB of it in huge pages), peak resident set %.0f MB (%.0f MB before)", p.indexBuild.Round(time.Millisecond),
		float64(p.indexHeap)/(1<<20), float64(p.indexHuge)/(1<<20), float64(p.indexPeak)/(1<<20), float64(p.rssBefore)/(1<<20))

	p.lookup, p.lookupInSpaceOrder = provinceLookups(b, loc, layer.ID, sample)
	p.z14Median, p.z14P95 = provinceZ14(b, db, layer.ID, sample)
	p.z8Largest, p.z8Slowest = provinceZ8(b, db, layer.ID)
	p.moveEdge = provinceMoveEdge(b, db, layer.ID)
	p.coverage = provinceCoverage(b, db, layer.ID)
	debug.FreeOSMemory()
	resetPeakRSS()
	start = time.Now()
	if err := loc.Reload(ctx, layer.ID, 0); err != nil {
		b.Fatal(err)
	}
	p.reload, p.reloadPeak = time.Since(start), procStatus("VmHWM:")
	b.Logf("index rebuilt after the edits in %s, peak resident set %.0f MB", p.reload.Round(time.Millisecond), float64(p.reloadPeak)/(1<<20))
	runtime.KeepAlive(loc)
	return p
}

// importProvince writes a province of n districts to a GeoJSON file and
// imports it from there into db, timing both; it returns a sample of its
// micro-grids (see writeProvince).
func importProvince(b testing.TB, db *postgres.DB, n int, p *provinceFigures) []orb.MultiPolygon {
	ctx := context.Background()
	path := os.Getenv("GRIDMAP_BENCH_PROVINCE_FILE")
	if path == "" {
		path = filepath.Join(b.TempDir(), "province.geojsonl")
	}
	if _, err := os.Stat(path); err == nil {
		// Written by an earlier run: counted, not generated again.
		p.features, p.microgrids, p.fileBytes = countProvince(b, path)
		if p.microgrids != n*2500 {
			b.Fatalf("%s holds %d micro-grids, not the %d of %d districts", path, p.microgrids, n*2500, n)
		}
		b.Logf("%d districts: %d grids (%d micro-grids) read from %s", n, p.features, p.microgrids, path)
	} else {
		writeProvince(b, path, n, p)
		b.Logf("%d districts: %d grids (%d micro-grids) generated in %s, %.0f MB of GeoJSON",
			n, p.features, p.microgrids, p.generate.Round(time.Millisecond), float64(p.fileBytes)/(1<<20))
	}
	layer := demo.Layers(n)[0]
	if _, err := postgres.NewLayerStore(db).PutLayer(ctx, layer); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	res, err := postgres.NewGridStore(db).Import(ctx, layer.ID, geo.NewFeatureReader(bufio.NewReaderSize(f, 1<<20), geo.DefaultFieldMap),
		gridmap.ImportOptions{Author: "province benchmark", Reason: "a generated province"})
	p.imported = time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if res.Created != p.features || len(res.Rejected) > 0 {
		b.Fatalf("import of %d districts: %d of %d grids created, rejected %v", n, res.Created, p.features, res.Rejected[:min(3, len(res.Rejected))])
	}
	b.Logf("imported in %s", p.imported.Round(time.Millisecond))
	return sampleMicrogrids(b, db, layer.ID)
}

// countProvince counts the grids and micro-grids of a province file
// writeProvince wrote (GRIDMAP_BENCH_PROVINCE_FILE).
func countProvince(b testing.TB, path string) (features, microgrids int, size int64) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		features++
		if bytes.Contains(sc.Bytes(), []byte(`"level":"microgrid"`)) {
			microgrids++
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	return features, microgrids, st.Size()
}

// sampleMicrogrids reads 1,000 micro-grids of layer, the same each time.
func sampleMicrogrids(b testing.TB, db *postgres.DB, layer string) []orb.MultiPolygon {
	rows, err := db.Pool.Query(context.Background(), `SELECT ST_AsBinary(geom) FROM grids
		WHERE layer_id = $1 AND level = 'microgrid' ORDER BY md5(code) LIMIT 1000`, layer)
	if err != nil {
		b.Fatal(err)
	}
	var out []orb.MultiPolygon
	var raw []byte
	if _, err := pgx.ForEachRow(rows, []any{&raw}, func() error {
		g, err := wkb.Unmarshal(raw)
		if err != nil {
			return err
		}
		mp, err := geo.Polygonal(g)
		out = append(out, mp)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return out
}

// writeProvince writes the comprehensive layer of a province of n
// districts to path, one GeoJSON feature a line as gridmap exports them.
func writeProvince(b testing.TB, path string, n int, p *provinceFigures) {
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	w := bufio.NewWriterSize(out, 1<<20)
	start := time.Now()
	err = demo.GenerateProvince(context.Background(), demo.DefaultSeed, n, runtime.GOMAXPROCS(0), func(_ int, d *demo.District) error {
		for _, f := range d.Grids[demo.LayerID] {
			gf := geojson.NewFeature(f.Geometry)
			gf.Properties = geojson.Properties{"code": f.Code, "name": f.Name, "level": f.Level}
			if f.Parent != "" {
				gf.Properties["parent"] = f.Parent
			}
			if len(f.People) > 0 {
				gf.Properties["people"] = f.People
			}
			for k, v := range f.Attributes {
				gf.Properties[k] = v
			}
			line, err := json.Marshal(gf)
			if err != nil {
				return err
			}
			w.Write(line)
			w.WriteByte('\n')
			p.features++
			if f.Level == "microgrid" {
				p.microgrids++
			}
		}
		return nil
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		b.Fatal(err)
	}
	p.generate = time.Since(start)
	st, err := out.Stat()
	if err != nil {
		b.Fatal(err)
	}
	p.fileBytes = st.Size()
}

// provinceLookups answers 100,000 points inside the sampled micro-grids
// with co-owners within 10 m, on one goroutine, in 5 rounds, and returns
// the median round's microseconds a lookup (a round the shared machine
// was busy elsewhere does not count): in the points' random order, and in
// space order, as POST /v1/lookup answers a large batch. Every point must
// find a chain down to a micro-grid.
func provinceLookups(b testing.TB, loc *postgres.Locator, layer string, sample []orb.MultiPolygon) (random, inSpaceOrder float64) {
	rnd := rand.New(rand.NewPCG(7, 18))
	pts := make([]orb.Point, 100_000)
	for i := range pts {
		pts[i] = pointInside(sample[i%len(sample)], rnd)
	}
	ctx := context.Background()
	var ans gridmap.LookupAnswer
	median := func(pts []orb.Point) float64 {
		var rounds []float64
		for range 5 {
			start := time.Now()
			for _, p := range pts {
				if err := loc.Lookup(ctx, gridmap.LookupQuery{Lon: p[0], Lat: p[1], Layer: layer, AccuracyM: 10}, &ans); err != nil {
					b.Fatal(err)
				}
				if len(ans.Layers) != 1 || len(ans.Layers[0].Chain) != 5 {
					b.Fatalf("lookup of %v inside a micro-grid: %+v", p, ans.Layers)
				}
			}
			rounds = append(rounds, float64(time.Since(start).Nanoseconds())/1e3/float64(len(pts)))
		}
		slices.Sort(rounds)
		return rounds[len(rounds)/2]
	}
	_, sorted := geo.SpaceOrder(pts)
	return median(pts), median(sorted)
}

// pointInside returns a random point inside mp.
func pointInside(mp orb.MultiPolygon, rnd *rand.Rand) orb.Point {
	bb := mp.Bound()
	for {
		p := orb.Point{bb.Min[0] + rnd.Float64()*(bb.Max[0]-bb.Min[0]), bb.Min[1] + rnd.Float64()*(bb.Max[1]-bb.Min[1])}
		if planar.MultiPolygonContains(mp, p) {
			return p
		}
	}
}

// provinceZ14 renders the z14 tiles of 100 sampled micro-grids cold (from
// PostGIS, no cache) and returns the median and 95th percentile in ms.
func provinceZ14(b testing.TB, db *postgres.DB, layer string, sample []orb.MultiPolygon) (median, p95 float64) {
	ts := postgres.NewTileStore(db)
	ctx := context.Background()
	seen := map[tiles.Tile]bool{}
	var took []float64
	for _, mp := range sample {
		c := mp.Bound().Center()
		x, y, _, _ := tiles.Covering(14, [4]float64{c[0], c[1], c[0], c[1]}, 0)
		tl := tiles.Tile{Z: 14, X: x, Y: y}
		if seen[tl] {
			continue
		}
		seen[tl] = true
		start := time.Now()
		out, err := ts.RenderTile(ctx, gridmap.TileQuery{Tileset: layer, Z: 14, X: x, Y: y})
		if err != nil {
			b.Fatal(err)
		}
		took = append(took, float64(time.Since(start).Microseconds())/1e3)
		if len(out.MVT) == 0 {
			b.Fatalf("z14 tile %s over a micro-grid is empty", tl)
		}
		if len(took) == 100 {
			break
		}
	}
	slices.Sort(took)
	return took[len(took)/2], took[len(took)*95/100]
}

// provinceZ8 renders every z8 tile of the province cold and returns the
// largest gzip-compressed as served and the slowest in ms.
func provinceZ8(b testing.TB, db *postgres.DB, layer string) (largest int, slowest float64) {
	ctx := context.Background()
	var bbox [4]float64
	if err := db.Pool.QueryRow(ctx, `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
		FROM (SELECT ST_Extent(geom)::geometry e FROM grids WHERE layer_id = $1) x`, layer).Scan(&bbox[0], &bbox[1], &bbox[2], &bbox[3]); err != nil {
		b.Fatal(err)
	}
	ts := postgres.NewTileStore(db)
	x0, y0, x1, y1 := tiles.Covering(8, bbox, 0)
	for x := x0; x <= x1; x++ {
		for y := y0; y <= y1; y++ {
			start := time.Now()
			out, err := ts.RenderTile(ctx, gridmap.TileQuery{Tileset: layer, Z: 8, X: x, Y: y})
			if err != nil {
				b.Fatal(err)
			}
			slowest = max(slowest, float64(time.Since(start).Microseconds())/1e3)
			largest = max(largest, gzipSize(b, out.MVT))
		}
	}
	return largest, slowest
}

// provinceMoveEdge moves the edge between the two micro-grids of the first
// district that share the longest border, 10 times there and back, each
// fully validated and committed, and returns the median in ms.
func provinceMoveEdge(b testing.TB, db *postgres.DB, layer string) float64 {
	ctx := context.Background()
	grids := postgres.NewGridStore(db)
	// The pair sharing the longest border, or the next when an earlier run
	// on the same database left that one's grown shape invalid. A border
	// left in several pieces by earlier runs is grown at its first piece.
	var a, nb string
	var g geojson.Geometry
	for skip := 0; ; skip++ {
		var grown string
		if err := db.Pool.QueryRow(ctx, `
			WITH pair AS (
				SELECT x.code AS a, y.code AS b, x.geom AS ag, y.geom AS bg FROM grids x JOIN grids y
				  ON y.layer_id = x.layer_id AND y.parent_code = x.parent_code AND x.code < y.code AND x.geom && y.geom
				WHERE x.layer_id = $1 AND x.level = 'microgrid' AND x.code LIKE $2 AND ST_Intersects(x.geom, y.geom)
				ORDER BY ST_Length(ST_Intersection(ST_Boundary(x.geom), ST_Boundary(y.geom))) DESC, x.code OFFSET $3 LIMIT 1)
			SELECT a, b, ST_AsGeoJSON(ST_Multi(ST_Union(ag, ST_Intersection(bg,
				ST_Buffer(ST_LineInterpolatePoint(ST_GeometryN(ST_LineMerge(ST_Intersection(ST_Boundary(ag), ST_Boundary(bg))), 1), 0.5), 0.0003)))))
			FROM pair`, layer, demo.CountyCode+"%", skip).Scan(&a, &nb, &grown); err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal([]byte(grown), &g); err != nil {
			b.Fatal(err)
		}
		res, err := grids.ApplyChangeset(ctx, layer, &gridmap.Changeset{DryRun: true, Operations: []gridmap.Operation{
			{Op: gridmap.OpMoveEdge, Code: a, Geometry: &g},
		}})
		if err == nil && len(res.Problems) == 0 {
			break
		}
		if skip == 9 {
			b.Fatalf("move_edge between %s and %s: %v %+v %+v", a, nb, err, res, problemsOf(err))
		}
	}
	orig, err := grids.Grid(ctx, layer, a)
	if err != nil {
		b.Fatal(err)
	}
	shapes := []*geojson.Geometry{&g, geojson.NewGeometry(orig.Geometry)}
	var took []float64
	for i := range 10 {
		start := time.Now()
		res, err := grids.ApplyChangeset(ctx, layer, &gridmap.Changeset{Operations: []gridmap.Operation{
			{Op: gridmap.OpMoveEdge, Code: a, Geometry: shapes[i%2]},
		}})
		if err != nil || !res.Applied {
			b.Fatalf("move_edge between %s and %s: %v %+v %+v", a, nb, err, res, problemsOf(err))
		}
		took = append(took, float64(time.Since(start).Microseconds())/1e3)
	}
	slices.Sort(took)
	return took[len(took)/2]
}

// provinceCoverage checks the coverage of the first district's first
// street's communities 5 times and returns the median in ms.
func provinceCoverage(b testing.TB, db *postgres.DB, layer string) float64 {
	ctx := context.Background()
	var street string
	if err := db.Pool.QueryRow(ctx, `SELECT code FROM grids WHERE layer_id = $1 AND level = 'street' ORDER BY code LIMIT 1`, layer).Scan(&street); err != nil {
		b.Fatal(err)
	}
	grids := postgres.NewGridStore(db)
	var took []float64
	for range 5 {
		start := time.Now()
		if _, err := grids.CoverageOf(ctx, layer, street); err != nil {
			b.Fatal(err)
		}
		took = append(took, float64(time.Since(start).Microseconds())/1e3)
	}
	slices.Sort(took)
	return took[len(took)/2]
}

// resetPeakRSS starts the process's peak resident set (VmHWM) over from
// what it holds now. Linux only, as is procStatus.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// procStatus reads one of the process's sizes in /proc/self/status
// ("VmRSS:", "VmHWM:") in bytes; 0 where there is none.
func procStatus(field string) uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if kb, ok := strings.CutPrefix(line, field); ok {
			v, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 10, 64)
			return v << 10
		}
	}
	return 0
}

// problemsOf lists the problems a refused changeset names.
func problemsOf(err error) []gridmap.Problem {
	var e *gridmap.Error
	if errors.As(err, &e) {
		return e.Details
	}
	return nil
}
