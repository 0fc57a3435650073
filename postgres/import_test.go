package postgres_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/gridmap/gridmap/tiles"
	"github.com/paulmach/orb"
)

// box returns a GeoJSON square polygon with its lower-left corner at x, y.
func box(x, y, size float64) string {
	return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`,
		x, y, x+size, y, x+size, y+size, x, y+size, x, y)
}

func feature(code, level, parent, geometry string) string {
	return namedFeature(code, "grid "+code, level, parent, geometry)
}

func namedFeature(code, name, level, parent, geometry string) string {
	p := "null"
	if parent != "" {
		p = `"` + parent + `"`
	}
	return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":%q,"level":%q,"parent":%s,"owner":"test"},"geometry":%s}`,
		code, name, level, p, geometry)
}

func collection(features ...string) string {
	return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",\n") + `]}`
}

const bowtie = `{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}`

type stores struct {
	layers *postgres.LayerStore
	grids  *postgres.GridStore
}

// newLayer makes a fresh layer with levels district > street > grid in the
// package's shared database.
func newLayer(t *testing.T, id string) stores {
	t.Helper()
	db := pgtest.Shared(t)
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	if _, err := s.layers.PutLayer(context.Background(), &gridmap.Layer{ID: id, Levels: []string{"district", "street", "grid"}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func importString(s stores, layer, input string, opts gridmap.ImportOptions) (*gridmap.ImportResult, error) {
	return s.grids.Import(context.Background(), layer, geo.NewFeatureReader(strings.NewReader(input), geo.DefaultFieldMap), opts)
}

func counts(t *testing.T, s stores, layer string) map[string]int {
	t.Helper()
	l, err := s.layers.Layer(context.Background(), layer)
	if err != nil {
		t.Fatal(err)
	}
	return l.Counts
}

func TestImportBadFeatures(t *testing.T) {
	s := newLayer(t, "bad-features")
	input := collection(
		feature("D", "district", "", box(0, 0, 4)),
		feature("S1", "street", "D", box(0, 0, 2)),
		feature("S2", "street", "D", bowtie),          // index 2: self-intersecting
		feature("S3", "street", "NOPE", box(2, 2, 2)), // index 3: unknown parent
		feature("G1", "grid", "S1", box(0, 0, 1)),
	)

	t.Run("all or nothing: every bad feature is reported and nothing is written", func(t *testing.T) {
		_, err := importString(s, "bad-features", input, gridmap.ImportOptions{})
		var ge *gridmap.Error
		if !asGridmapError(err, &ge) || ge.Code != gridmap.EUNPROCESSABLE {
			t.Fatalf("got %v, want an EUNPROCESSABLE error", err)
		}
		if len(ge.Details) != 2 {
			t.Fatalf("got %d problems, want 2: %+v", len(ge.Details), ge.Details)
		}
		want := []struct {
			index int
			code  string
			kind  string
		}{{2, "S2", gridmap.ProblemInvalidGeometry}, {3, "S3", gridmap.ProblemUnknownParent}}
		for i, w := range want {
			p := ge.Details[i]
			if p.Index == nil || *p.Index != w.index || p.Codes[0] != w.code || p.Kind != w.kind || p.Message == "" {
				t.Errorf("problem %d = %+v, want index %d code %s kind %s", i, p, w.index, w.code, w.kind)
			}
		}
		if !strings.Contains(ge.Details[0].Message, "Self-intersection") || ge.Details[0].Where == nil {
			t.Errorf("self-intersection should be named with its location: %+v", ge.Details[0])
		}
		for lv, n := range counts(t, s, "bad-features") {
			if n != 0 {
				t.Errorf("%d grids at level %s were written by a rejected import", n, lv)
			}
		}
	})

	t.Run("skip-invalid imports the rest", func(t *testing.T) {
		res, err := importString(s, "bad-features", input, gridmap.ImportOptions{SkipInvalid: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Read != 5 || res.Created != 3 || len(res.Rejected) != 2 {
			t.Errorf("result %+v, want 5 read, 3 created, 2 rejected", res)
		}
		c := counts(t, s, "bad-features")
		if c["district"] != 1 || c["street"] != 1 || c["grid"] != 1 {
			t.Errorf("counts %v", c)
		}
	})
}

func TestImportRejectionRules(t *testing.T) {
	s := newLayer(t, "rules")
	ctx := context.Background()
	if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: "rules", Levels: []string{"district", "street", "grid"}, CodePattern: `[A-Z]\d*`}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		input  string
		kind   string
		index  int
		extras int // further rejections that follow from the first
	}{
		{"code off the layer's pattern", collection(feature("d1", "district", "", box(0, 0, 1))), gridmap.ProblemBadCode, 0, 0},
		{"duplicate code in one input", collection(feature("D", "district", "", box(0, 0, 1)), feature("D", "district", "", box(2, 0, 1))), gridmap.ProblemDuplicateCode, 1, 0},
		{"level unknown to the layer", collection(feature("D", "county", "", box(0, 0, 1))), gridmap.ProblemUnknownLevel, 0, 0},
		{"parent not coarser", collection(feature("D", "district", "", box(0, 0, 1)), feature("S", "street", "D", box(0, 0, 1)), feature("T", "street", "S", box(0, 0, 1))), gridmap.ProblemUnknownParent, 2, 0},
		{"line instead of polygon", collection(`{"type":"Feature","properties":{"code":"D","level":"district"},"geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]}}`), gridmap.ProblemInvalidGeometry, 0, 0},
		{"children of a rejected parent go too", collection(feature("D", "district", "", bowtie), feature("S", "street", "D", box(0, 0, 1))), gridmap.ProblemInvalidGeometry, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := importString(s, "rules", tc.input, gridmap.ImportOptions{})
			var ge *gridmap.Error
			if !asGridmapError(err, &ge) || ge.Code != gridmap.EUNPROCESSABLE {
				t.Fatalf("got %v, want EUNPROCESSABLE", err)
			}
			if len(ge.Details) != 1+tc.extras {
				t.Fatalf("problems %+v", ge.Details)
			}
			if p := ge.Details[0]; p.Kind != tc.kind || *p.Index != tc.index {
				t.Errorf("problem %+v, want %s at index %d", p, tc.kind, tc.index)
			}
		})
	}
}

func TestImportMakeValid(t *testing.T) {
	s := newLayer(t, "repair")
	res, err := importString(s, "repair", collection(feature("D", "district", "", bowtie)), gridmap.ImportOptions{MakeValid: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 1 || len(res.Repaired) != 1 || res.Repaired[0].Codes[0] != "D" {
		t.Fatalf("result %+v", res)
	}
	var valid bool
	if err := pgtest.Shared(t).Pool.QueryRow(context.Background(),
		`SELECT ST_IsValid(geom) FROM grids WHERE layer_id = 'repair' AND code = 'D'`).Scan(&valid); err != nil || !valid {
		t.Fatalf("stored repaired geometry valid=%v err=%v", valid, err)
	}
}

func TestImportVersions(t *testing.T) {
	s := newLayer(t, "versions")
	ctx := context.Background()
	first := collection(feature("D", "district", "", box(0, 0, 4)), feature("S", "street", "D", box(0, 0, 4)))
	res, err := importString(s, "versions", first, gridmap.ImportOptions{Author: "tester", Reason: "first load"})
	if err != nil {
		t.Fatal(err)
	}
	v1 := res.DataVersion

	t.Run("the same input again changes nothing", func(t *testing.T) {
		res, err := importString(s, "versions", first, gridmap.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Unchanged != 2 || res.Created != 0 || res.Replaced != 0 || res.DataVersion != v1 {
			t.Errorf("result %+v, want 2 unchanged at data version %d", res, v1)
		}
	})

	t.Run("a changed grid gets a new version and the old one is closed", func(t *testing.T) {
		second := collection(feature("S", "street", "D", box(0, 0, 3)))
		res, err := importString(s, "versions", second, gridmap.ImportOptions{Reason: "shrink"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Replaced != 1 || res.DataVersion != v1+1 {
			t.Errorf("result %+v", res)
		}
		g, err := s.grids.Grid(ctx, "versions", "S")
		if err != nil {
			t.Fatal(err)
		}
		if g.Version != 2 || g.Reason != "shrink" || g.ValidTo != nil {
			t.Errorf("current version %+v", g)
		}
		var closed int
		if err := pgtest.Shared(t).Pool.QueryRow(ctx, `SELECT count(*) FROM grid_versions
			WHERE layer_id = 'versions' AND code = 'S' AND version = 1 AND valid_to IS NOT NULL`).Scan(&closed); err != nil || closed != 1 {
			t.Errorf("version 1 closed: %d, %v", closed, err)
		}
	})
}

func TestGridReadsAndPaging(t *testing.T) {
	s := newLayer(t, "paging")
	ctx := context.Background()
	fs := []string{feature("D", "district", "", box(0, 0, 10))}
	for i := range 10 {
		fs = append(fs, feature(fmt.Sprintf("S%d", i), "street", "D", box(float64(i), 0, 1)))
	}
	for i := range 25 {
		parent := fmt.Sprintf("S%d", i%10)
		fs = append(fs, feature(fmt.Sprintf("G%02d", i), "grid", parent, box(float64(i%10)+0.3*float64(i/10), 0, 0.3)))
	}
	if _, err := importString(s, "paging", collection(fs...), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("pages visit every grid once in code order", func(t *testing.T) {
		seen, cursor, pages := []string{}, "", 0
		for {
			grids, next, err := s.grids.FindGrids(ctx, gridmap.GridFilter{Layer: "paging", Level: "grid", Limit: 10, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range grids {
				seen = append(seen, g.Code)
			}
			pages++
			if next == "" {
				break
			}
			cursor = next
		}
		if len(seen) != 25 || pages != 3 || seen[0] != "G00" || seen[24] != "G24" {
			t.Errorf("saw %d grids in %d pages: %v", len(seen), pages, seen)
		}
	})
	t.Run("filters", func(t *testing.T) {
		cases := []struct {
			name string
			f    gridmap.GridFilter
			want int
		}{
			{"by parent", gridmap.GridFilter{Parent: "S3"}, 3},
			{"by bbox", gridmap.GridFilter{Level: "street", BBox: &orb.Bound{Min: orb.Point{2.2, 0.2}, Max: orb.Point{4.5, 0.5}}}, 3},
			{"by level", gridmap.GridFilter{Level: "district"}, 1},
		}
		for _, c := range cases {
			c.f.Layer, c.f.Limit = "paging", 100
			grids, _, err := s.grids.FindGrids(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(grids) != c.want {
				t.Errorf("%s: %d grids, want %d", c.name, len(grids), c.want)
			}
		}
	})
	t.Run("unknown layer and grid are not found", func(t *testing.T) {
		if _, _, err := s.grids.FindGrids(ctx, gridmap.GridFilter{Layer: "nope", Limit: 1}); gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
			t.Errorf("unknown layer: %v", err)
		}
		if _, err := s.grids.Grid(ctx, "paging", "nope"); gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
			t.Errorf("unknown grid: %v", err)
		}
	})
	t.Run("people", func(t *testing.T) {
		people := []gridmap.Person{{Role: gridmap.RoleGridLeader, Name: "王伟", Phone: "13900000001"}, {Role: gridmap.RoleGridWorker, Name: "李娜"}}
		if err := s.grids.SetPeople(ctx, "paging", "G01", people); err != nil {
			t.Fatal(err)
		}
		g, err := s.grids.Grid(ctx, "paging", "G01")
		if err != nil {
			t.Fatal(err)
		}
		if len(g.People) != 2 || g.People[0].Name != "王伟" || g.People[1].Role != gridmap.RoleGridWorker {
			t.Errorf("people %+v", g.People)
		}
		if err := s.grids.SetPeople(ctx, "paging", "G01", []gridmap.Person{{Role: "grid_leader"}}); gridmap.ErrorCode(err) != gridmap.EINVALID {
			t.Errorf("person without a name: %v", err)
		}
	})
	t.Run("a level with grids cannot be dropped", func(t *testing.T) {
		_, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: "paging", Levels: []string{"district", "street"}})
		if gridmap.ErrorCode(err) != gridmap.ECONFLICT {
			t.Errorf("dropping level grid: %v", err)
		}
		if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: "paging", Levels: []string{"district", "street", "grid", "microgrid"}}); err != nil {
			t.Errorf("adding a level: %v", err)
		}
	})
}

// TestImportNYC loads the real three-level New York hierarchy the way the
// README tells people to and reads it back.
func TestImportNYC(t *testing.T) {
	nycDir := pgtest.NYCDir(t)
	db := pgtest.Shared(t)
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	ctx := context.Background()
	if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: "nyc", Levels: []string{"borough", "nta", "tract"}}); err != nil {
		t.Fatal(err)
	}
	loads := []struct {
		file  string
		field geo.FieldMap
		want  int
	}{
		{"L1_boroughs.geojson", geo.FieldMap{Code: "borocode", Name: "boroname", DefaultLevel: "borough"}, 5},
		{"L2_nta2010.geojson", geo.FieldMap{Code: "ntacode", Name: "ntaname", Parent: "borocode", DefaultLevel: "nta"}, 195},
		{"L3_tracts2010.geojson", geo.FieldMap{Code: "boroct2010", Name: "ctlabel", Parent: "ntacode", DefaultLevel: "tract"}, 2165},
	}
	for _, l := range loads {
		f, err := os.Open(nycDir + "/" + l.file)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.grids.Import(ctx, "nyc", geo.NewFeatureReader(f, l.field), gridmap.ImportOptions{MakeValid: true})
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", l.file, err)
		}
		if res.Created != l.want || len(res.Rejected) != 0 {
			t.Errorf("%s: created %d, rejected %d, want %d created", l.file, res.Created, len(res.Rejected), l.want)
		}
	}
	c := counts(t, s, "nyc")
	if c["borough"] != 5 || c["nta"] != 195 || c["tract"] != 2165 {
		t.Errorf("counts %v", c)
	}

	t.Run("a tract reads back with the same geometry and its parent", func(t *testing.T) {
		f, err := os.Open(nycDir + "/L3_tracts2010.geojson")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fr := geo.NewFeatureReader(f, loads[2].field)
		checked := 0
		for i := 0; i < 2165; i++ {
			want, err := fr.Next()
			if err != nil {
				t.Fatal(err)
			}
			if i%97 != 0 { // a spread of tracts across the boroughs
				continue
			}
			got, err := s.grids.Grid(ctx, "nyc", want.Code)
			if err != nil {
				t.Fatal(err)
			}
			if got.Parent != want.Parent || got.Level != "tract" || got.Name != want.Name {
				t.Errorf("tract %s: parent %q level %q name %q, want parent %q", want.Code, got.Parent, got.Level, got.Name, want.Parent)
			}
			wantMP, _ := geo.Polygonal(want.Geometry)
			if d := maxCoordDiff(wantMP, got.Geometry); d > 1e-9 {
				t.Errorf("tract %s geometry differs by %g degrees", want.Code, d)
			}
			checked++
		}
		if checked < 20 {
			t.Fatalf("checked only %d tracts", checked)
		}
	})

	t.Run("every parent exists one level up", func(t *testing.T) {
		var orphans int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM grids c LEFT JOIN grids p
			ON p.layer_id = c.layer_id AND p.code = c.parent_code
			WHERE c.layer_id = 'nyc' AND c.parent_code IS NOT NULL AND p.code IS NULL`).Scan(&orphans); err != nil {
			t.Fatal(err)
		}
		if orphans != 0 {
			t.Errorf("%d grids with a missing parent", orphans)
		}
	})
}

// maxCoordDiff is the largest coordinate difference between two geometries
// of the same shape, or +Inf when their shapes differ.
func maxCoordDiff(a, b orb.MultiPolygon) float64 {
	if len(a) != len(b) {
		return 1e300
	}
	d := 0.0
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return 1e300
		}
		for j := range a[i] {
			if len(a[i][j]) != len(b[i][j]) {
				return 1e300
			}
			for k := range a[i][j] {
				d = max(d, abs(a[i][j][k][0]-b[i][j][k][0]), abs(a[i][j][k][1]-b[i][j][k][1]))
			}
		}
	}
	return d
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func asGridmapError(err error, target **gridmap.Error) bool { return errors.As(err, target) }

// TestImportStreamsLargeInput imports a 60 MB FeatureCollection produced on
// the fly and checks the heap never holds more than a fraction of it.
func TestImportStreamsLargeInput(t *testing.T) {
	const features, vertices = 5000, 500
	db := pgtest.Shared(t)
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	pr, pw := io.Pipe()
	var written atomic.Int64
	go func() {
		w := bufio.NewWriterSize(countWriter{pw, &written}, 1<<16)
		fmt.Fprint(w, `{"type":"FeatureCollection","features":[`)
		for i := range features {
			if i > 0 {
				w.WriteString(",\n")
			}
			cx, cy := float64(i%100)*0.01, float64(i/100)*0.01
			fmt.Fprintf(w, `{"type":"Feature","properties":{"code":"F%05d","level":"cell"},"geometry":{"type":"Polygon","coordinates":[[`, i)
			for k := 0; k <= vertices; k++ {
				a := 2 * math.Pi * float64(k%vertices) / vertices
				if k > 0 {
					w.WriteString(",")
				}
				fmt.Fprintf(w, "[%.9f,%.9f]", cx+0.004*math.Cos(a), cy+0.004*math.Sin(a))
			}
			w.WriteString("]]}}")
		}
		w.WriteString("]}")
		w.Flush()
		pw.Close()
	}()

	// Collect eagerly, so that what the heap holds is measured rather than
	// how far the collector lags behind on a busy machine.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > peak.Load() {
					peak.Store(m.HeapAlloc)
				}
			}
		}
	}()
	res, err := s.grids.Import(context.Background(), "big", geo.NewFeatureReader(pr, geo.DefaultFieldMap),
		gridmap.ImportOptions{Levels: []string{"cell"}})
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != features {
		t.Fatalf("created %d of %d", res.Created, features)
	}
	grew := int64(peak.Load()) - int64(base.HeapAlloc)
	if size := written.Load(); grew > size/3 {
		t.Errorf("heap grew by %d MB while importing %d MB: the input is being held in memory", grew>>20, size>>20)
	} else {
		t.Logf("imported %d MB with the heap growing by at most %d MB", size>>20, grew>>20)
	}
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// TestImportStopsCleanlyMidCopy ends an import while a batch is being
// copied: the input fails (bad JSON after the first batch) or the import
// is cancelled, each held until the COPY under way has begun. The import
// answers why it stopped, writes nothing, gives its connection back, and
// the layer imports in full afterwards.
func TestImportStopsCleanlyMidCopy(t *testing.T) {
	layer := fmt.Sprintf("midcopy%d", time.Now().UnixNano()) // a layer of its own on every run
	newLayer(t, layer)
	// A pool of its own, so that the connections it holds are the imports'.
	db := pgtest.SharedWith(t, postgres.Options{MaxConns: 2})
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	var features []string
	for i := range 700 {
		features = append(features, feature(fmt.Sprintf("G%04d", i), "district", "", box(float64(i%50)*0.001, float64(i/50)*0.001, 0.001)))
	}
	whole := collection(features...)
	staging := make(chan struct{}, 1)
	var holding atomic.Bool // the COPY is held back: an import must not answer meanwhile
	defer postgres.SetBeforeStaging(func() {
		holding.Store(true)
		defer holding.Store(false)
		select {
		case staging <- struct{}{}: // the test waits for this before it stops the import
		default:
		}
		time.Sleep(50 * time.Millisecond) // and the import stops while this COPY has yet to run
	})()
	idle := db.Pool.Stat().AcquiredConns()

	src := &stopAfter{src: geo.NewFeatureReader(strings.NewReader(whole), geo.DefaultFieldMap), after: postgres.ImportBatch + 1, staging: staging,
		err: gridmap.Errorf(gridmap.EINVALID, "input cut short")}
	_, err := s.grids.Import(context.Background(), layer, src, gridmap.ImportOptions{})
	if gridmap.ErrorCode(err) != gridmap.EINVALID || !strings.Contains(err.Error(), "input cut short") {
		t.Errorf("an input failing mid-copy: %v, want its own error", err)
	}
	if holding.Load() {
		t.Errorf("an input failing mid-copy: the import answered before its COPY ended")
	}
	ctx, cancel := context.WithCancel(context.Background())
	src = &stopAfter{src: geo.NewFeatureReader(strings.NewReader(whole), geo.DefaultFieldMap), after: postgres.ImportBatch + 1, staging: staging, cancel: cancel}
	if _, err = s.grids.Import(ctx, layer, src, gridmap.ImportOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("an import cancelled mid-copy: %v, want context.Canceled", err)
	}
	if holding.Load() {
		t.Errorf("an import cancelled mid-copy answered before its COPY ended")
	}
	// A connection a cancel closed is destroyed in the background: given
	// back means gone within a while, not at once.
	held := db.Pool.Stat().AcquiredConns()
	for wait := 0; held != idle && wait < 100; wait++ {
		time.Sleep(20 * time.Millisecond)
		held = db.Pool.Stat().AcquiredConns()
	}
	if held != idle {
		t.Errorf("%d connections held after the imports stopped, %d before", held, idle)
	}
	if c := counts(t, s, layer); c["district"] != 0 {
		t.Fatalf("stopped imports wrote %v", c)
	}
	res, err := importString(s, layer, whole, gridmap.ImportOptions{})
	if err != nil || res.Created != 700 {
		t.Fatalf("the import after them: %+v, %v", res, err)
	}
}

// stopAfter passes on the features of src until after of them have been
// read (just past the first batch) and a batch's COPY has begun; then it
// fails with err, or cancels the import and goes on.
type stopAfter struct {
	src     gridmap.FeatureSource
	after   int
	staging chan struct{}
	err     error
	cancel  func()
	read    int
}

func (s *stopAfter) Next() (*gridmap.Feature, error) {
	if s.read++; s.read == s.after {
		select {
		case <-s.staging:
		case <-time.After(10 * time.Second):
			return nil, errors.New("no COPY began before the input was to stop")
		}
		if s.cancel == nil {
			return nil, s.err
		}
		s.cancel()
	}
	return s.src.Next()
}

// TestImportFindsOverlapsOfAFewSquareMetres overlaps two streets by a
// strip of 1.5 times the tolerance (refused) and of half of it (accepted),
// at the equator, where a square degree holds the most square metres, and
// at 60 degrees north.
func TestImportFindsOverlapsOfAFewSquareMetres(t *testing.T) {
	rect := func(x0, y0, x1, y1 float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%.12f,%.12f],[%.12f,%.12f],[%.12f,%.12f],[%.12f,%.12f],[%.12f,%.12f]]]}`,
			x0, y0, x1, y0, x1, y1, x0, y1, x0, y0)
	}
	for _, lat := range []float64{0, 60} {
		for _, overlap := range []float64{1.5 * gridmap.ToleranceAreaM2, 0.5 * gridmap.ToleranceAreaM2} {
			layer := fmt.Sprintf("strip%d_%g", int(lat), overlap*10)
			s := newLayer(t, layer)
			const h, w = 0.0001, 0.0004 // degrees: about 11 m by 44 m at the equator
			kx, ky := geo.MetresPerDegree(lat + h/2)
			d := overlap / (kx * ky * h) // the strip's width in degrees
			in := collection(
				feature("D", "district", "", rect(0, lat, 2*w, lat+h)),
				feature("S1", "street", "D", rect(0, lat, w+d, lat+h)),
				feature("S2", "street", "D", rect(w, lat, 2*w, lat+h)),
			)
			_, err := importString(s, layer, in, gridmap.ImportOptions{})
			if overlap < gridmap.ToleranceAreaM2 {
				if err != nil {
					t.Errorf("latitude %g: an overlap of %g m2 refused: %v", lat, overlap, err)
				}
				continue
			}
			var ge *gridmap.Error
			if !asGridmapError(err, &ge) || len(ge.Details) != 1 || ge.Details[0].Kind != gridmap.ProblemOverlapsSibling {
				t.Fatalf("latitude %g: an overlap of %g m2: got %v, want the overlap refused", lat, overlap, err)
			}
			if a := *ge.Details[0].AreaM2; math.Abs(a-overlap) > 0.01*overlap {
				t.Errorf("latitude %g: overlap measured as %g m2, want %g", lat, a, overlap)
			}
		}
	}
}

func TestImportRefusesOverlapsAndSpill(t *testing.T) {
	s := newLayer(t, "tiling")
	in := collection(
		feature("D", "district", "", box(0, 0, 0.01)),
		feature("S1", "street", "D", box(0, 0, 0.006)),
		feature("S2", "street", "D", box(0.005, 0, 0.005)),     // overlaps S1
		feature("S3", "street", "D", box(0.009, 0.009, 0.005)), // reaches outside D
	)
	for _, skip := range []bool{false, true} {
		_, err := importString(s, "tiling", in, gridmap.ImportOptions{SkipInvalid: skip})
		var ge *gridmap.Error
		if !asGridmapError(err, &ge) || ge.Code != gridmap.EUNPROCESSABLE {
			t.Fatalf("skip=%v: got %v, want EUNPROCESSABLE", skip, err)
		}
		kinds := map[string][]string{}
		for _, p := range ge.Details {
			kinds[p.Kind] = p.Codes
			if p.AreaM2 == nil || *p.AreaM2 <= 0 || p.Where == nil || p.Index == nil {
				t.Errorf("problem without area, location or index: %+v", p)
			}
		}
		if fmt.Sprint(kinds[gridmap.ProblemOverlapsSibling]) != "[S1 S2]" || fmt.Sprint(kinds[gridmap.ProblemOutsideParent]) != "[S3 D]" {
			t.Errorf("skip=%v: problems %v", skip, kinds)
		}
		if c := counts(t, s, "tiling"); c["street"]+c["district"] != 0 {
			t.Errorf("skip=%v: an import refused for overlaps wrote %v", skip, c)
		}
	}
}

// TestZoomsChangedDropShapes draws a layer's streets from zoom 12 instead
// of their default: their shapes in the bands below go, those from 12 on
// stay, and the district's stay as they were.
func TestZoomsChangedDropShapes(t *testing.T) {
	layer := fmt.Sprintf("zooms%d", time.Now().UnixNano())
	s := newLayer(t, layer)
	in := collection(
		feature("D", "district", "", box(0, 0, 0.02)),
		feature("S1", "street", "D", box(0, 0, 0.01)),
		feature("S2", "street", "D", box(0.01, 0, 0.01)),
	)
	if _, err := importString(s, layer, in, gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	shapes := func() (below, from int, district string) {
		t.Helper()
		if err := pgtest.Shared(t).Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE band < $2 AND code LIKE 'S%'),
			count(*) FILTER (WHERE band >= $2 AND code LIKE 'S%'), coalesce(string_agg(band::text, ',' ORDER BY band) FILTER (WHERE code = 'D'), '')
			FROM grid_shapes WHERE layer_id = $1`, layer, tiles.BandFor(12)).Scan(&below, &from, &district); err != nil {
			t.Fatal(err)
		}
		return below, from, district
	}
	below, from, district := shapes()
	if below == 0 || from == 0 || district == "" {
		t.Fatalf("before: %d street shapes in bands below zoom 12, %d from it; the district's in bands %q", below, from, district)
	}
	l, err := s.layers.Layer(context.Background(), layer)
	if err != nil {
		t.Fatal(err)
	}
	l.Zooms["street"] = gridmap.ZoomRange{12, l.Zooms["street"][1]}
	if _, err := s.layers.PutLayer(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if below, from, d := shapes(); below != 0 || from == 0 || d != district {
		t.Fatalf("after: %d street shapes in bands below zoom 12, %d from it; the district's in bands %q, before %q", below, from, d, district)
	}
}
