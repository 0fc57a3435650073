package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/jackc/pgx/v5/pgxpool"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

var (
	tractsOnce  sync.Once
	tractsErr   error
	tractsStore stores
)

// tractLayer loads NYC boroughs and, directly under them, the 2,165 tracts
// into layer "tracts" (once per package), for the editing checks.
func tractLayer(t testing.TB) stores {
	t.Helper()
	nyc := pgtest.NYCDir(t)
	db := pgtest.Shared(t)
	tractsOnce.Do(func() {
		s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
		ctx := context.Background()
		loads := []struct {
			file   string
			fields geo.FieldMap
			levels []string
		}{
			{"L1_boroughs.geojson", geo.FieldMap{Code: "borocode", Name: "boroname", DefaultLevel: "borough"}, []string{"borough", "tract"}},
			{"L3_tracts2010.geojson", geo.FieldMap{Code: "boroct2010", Name: "ctlabel", Parent: "borocode", DefaultLevel: "tract"}, nil},
		}
		for _, l := range loads {
			f, err := os.Open(filepath.Join(nyc, l.file))
			if err != nil {
				tractsErr = err
				return
			}
			_, err = s.grids.Import(ctx, "tracts", geo.NewFeatureReader(f, l.fields), gridmap.ImportOptions{MakeValid: true, Levels: l.levels})
			f.Close()
			if err != nil {
				tractsErr = err
				return
			}
		}
		tractsStore = s
	})
	if tractsErr != nil {
		t.Fatalf("loading NYC tracts: %v", tractsErr)
	}
	return tractsStore
}

// neighbours returns two tracts of one borough sharing their longest edge
// among the tracts of the given borough prefix, and their parent.
func neighbours(t testing.TB, prefix string, skip int) (a, b, parent string) {
	t.Helper()
	err := pgtest.Shared(t).Pool.QueryRow(context.Background(), `
		SELECT x.code, y.code, x.parent_code FROM grids x JOIN grids y
		  ON y.layer_id = x.layer_id AND y.parent_code = x.parent_code AND x.code < y.code AND x.geom && y.geom
		WHERE x.layer_id = 'tracts' AND x.level = 'tract' AND x.code LIKE $1 || '%' AND y.code LIKE $1 || '%'
		  AND ST_Intersects(x.geom, y.geom)
		ORDER BY ST_Length(ST_Intersection(ST_Boundary(x.geom), ST_Boundary(y.geom))) DESC, x.code
		OFFSET $2 LIMIT 1`, prefix, skip).Scan(&a, &b, &parent)
	if err != nil {
		t.Fatal(err)
	}
	return a, b, parent
}

// geometryOf evaluates a PostGIS expression over grids of the tract layer
// ($1, $2 are codes) to a GeoJSON geometry.
func geometryOf(t testing.TB, expr, a, b string) *geojson.Geometry {
	t.Helper()
	var js string
	err := pgtest.Shared(t).Pool.QueryRow(context.Background(), `
		SELECT ST_AsGeoJSON(`+expr+`, 15) FROM grids a, grids b
		WHERE a.layer_id = 'tracts' AND b.layer_id = 'tracts' AND a.code = $1 AND b.code = $2`, a, b).Scan(&js)
	if err != nil {
		t.Fatal(err)
	}
	g, err := geojson.UnmarshalGeometry([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func putOp(code string, g *geojson.Geometry, ifMatch *int) gridmap.Operation {
	f := geojson.NewFeature(g.Geometry())
	f.Properties["code"] = code
	return gridmap.Operation{Op: gridmap.OpPut, Code: code, Feature: f, IfMatch: ifMatch}
}

func apply(s stores, ops ...gridmap.Operation) (*gridmap.ChangesetResult, error) {
	return s.grids.ApplyChangeset(context.Background(), "tracts", &gridmap.Changeset{Reason: "test", Author: "tester", Operations: ops})
}

func version(t testing.TB, s stores, code string) int {
	t.Helper()
	g, err := s.grids.Grid(context.Background(), "tracts", code)
	if err != nil {
		t.Fatal(err)
	}
	return g.Version
}

func wantProblem(t *testing.T, err error, kind string, codes ...string) gridmap.Problem {
	t.Helper()
	var ge *gridmap.Error
	if !asGridmapError(err, &ge) || ge.Code != gridmap.EUNPROCESSABLE {
		t.Fatalf("got %v, want an unprocessable changeset", err)
	}
	for _, p := range ge.Details {
		if p.Kind != kind {
			continue
		}
		found := 0
		for _, c := range codes {
			for _, pc := range p.Codes {
				if pc == c {
					found++
				}
			}
		}
		if found == len(codes) {
			return p
		}
	}
	b, _ := json.Marshal(ge.Details)
	t.Fatalf("no %s problem naming %v in %s", kind, codes, b)
	return gridmap.Problem{}
}

func emptyCoverage(t *testing.T, s stores, parent string) {
	t.Helper()
	cov, err := s.grids.CoverageOf(context.Background(), "tracts", parent)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cov.Gaps) + len(cov.Overlaps) + len(cov.Outside); n != 0 {
		b, _ := json.Marshal(map[string]any{"gaps": len(cov.Gaps), "overlaps": len(cov.Overlaps), "outside": len(cov.Outside)})
		first := cov.Gaps
		if len(first) == 0 {
			first = append(cov.Overlaps, cov.Outside...)
		}
		t.Fatalf("coverage of %s not empty: %s, first %v m2 %v", parent, b, first[0].AreaM2, first[0].Codes)
	}
}

func TestWritesAreValidated(t *testing.T) {
	s := tractLayer(t)
	a, b, _ := neighbours(t, "1", 0)
	before := version(t, s, a)

	t.Run("a tract overlapping its neighbour is refused naming both, with the overlap's area", func(t *testing.T) {
		_, err := apply(s, putOp(a, geometryOf(t, "ST_Union(a.geom, b.geom)", a, b), nil))
		p := wantProblem(t, err, gridmap.ProblemOverlapsSibling, a, b)
		areaB := areaOf(t, b)
		if p.AreaM2 == nil || math.Abs(*p.AreaM2-areaB)/areaB > 0.01 || p.Where == nil {
			t.Errorf("overlap area %v, want about %.0f m2 with its geometry", p.AreaM2, areaB)
		}
	})
	t.Run("a tract reaching outside its borough is refused", func(t *testing.T) {
		_, err := apply(s, putOp(a, geometryOf(t, "ST_Translate(a.geom, 0, 1)", a, b), nil))
		wantProblem(t, err, gridmap.ProblemOutsideParent, a)
	})
	t.Run("a bow-tie is refused", func(t *testing.T) {
		bowtie := geojson.NewGeometry(mustGeometry(t, `{"type":"Polygon","coordinates":[[[-73.99,40.75],[-73.98,40.76],[-73.98,40.75],[-73.99,40.76],[-73.99,40.75]]]}`))
		_, err := apply(s, putOp(a, bowtie, nil))
		wantProblem(t, err, gridmap.ProblemInvalidGeometry, a)
	})
	t.Run("a stale If-Match is a precondition failure", func(t *testing.T) {
		stale := before + 7
		_, err := apply(s, putOp(a, geometryOf(t, "a.geom", a, b), &stale))
		if gridmap.ErrorCode(err) != gridmap.EPRECONDITION {
			t.Fatalf("got %v, want EPRECONDITION", err)
		}
	})
	if v := version(t, s, a); v != before {
		t.Errorf("refused writes changed %s: version %d -> %d", a, before, v)
	}
}

func TestMoveEdge(t *testing.T) {
	s := tractLayer(t)
	ctx := context.Background()
	a, b, parent := neighbours(t, "3", 0)
	va, vb := version(t, s, a), version(t, s, b)
	oldA, err := s.grids.Grid(ctx, "tracts", a)
	if err != nil {
		t.Fatal(err)
	}
	beforeChange := time.Now()
	time.Sleep(10 * time.Millisecond)
	// A takes a bite of B around the middle of their shared edge.
	grown := geometryOf(t, `ST_Union(a.geom, ST_Intersection(b.geom,
		ST_Buffer(ST_LineInterpolatePoint(ST_LineMerge(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))), 0.5), 0.0004)))`, a, b)
	res, err := s.grids.ApplyChangeset(ctx, "tracts", &gridmap.Changeset{Reason: "move edge", Operations: []gridmap.Operation{
		{Op: gridmap.OpMoveEdge, Code: a, Geometry: grown, IfMatch: &va},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Applied || res.Versions[a] != va+1 || res.Versions[b] != vb+1 || res.Impact.AreaMovedM2 <= 0 {
		t.Fatalf("result %+v", res)
	}
	emptyCoverage(t, s, parent)

	hist, err := s.grids.History(ctx, "tracts", a)
	if err != nil || len(hist) != va+1 || hist[len(hist)-1].ValidTo != nil || hist[len(hist)-2].ValidTo == nil {
		t.Fatalf("history of %s: %d versions, %v", a, len(hist), err)
	}
	past, err := s.grids.GridAt(ctx, "tracts", a, beforeChange)
	if err != nil {
		t.Fatal(err)
	}
	if past.Version != va || maxCoordDiff(past.Geometry, oldA.Geometry) != 0 {
		t.Errorf("as of before the change: version %d, want %d with the old geometry", past.Version, va)
	}

	t.Run("giving the bite back goes to the neighbour", func(t *testing.T) {
		v := version(t, s, a)
		res, err := s.grids.ApplyChangeset(ctx, "tracts", &gridmap.Changeset{Operations: []gridmap.Operation{
			{Op: gridmap.OpMoveEdge, Code: a, Geometry: geojson.NewGeometry(oldA.Geometry), IfMatch: &v},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := res.Versions[b]; !ok {
			t.Errorf("%s did not take the area back: %+v", b, res)
		}
		emptyCoverage(t, s, parent)
	})
}

func TestDeleteShowsGap(t *testing.T) {
	s := tractLayer(t)
	ctx := context.Background()
	a, _, parent := neighbours(t, "2", 0)
	area := areaOf(t, a)
	emptyCoverage(t, s, parent)
	if _, err := apply(s, gridmap.Operation{Op: gridmap.OpDelete, Code: a}); err != nil {
		t.Fatal(err)
	}
	cov, err := s.grids.CoverageOf(ctx, "tracts", parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(cov.Gaps) != 1 || math.Abs(cov.Gaps[0].AreaM2-area)/area > 0.01 || len(cov.Overlaps)+len(cov.Outside) != 0 {
		t.Fatalf("after deleting %s (%.0f m2): %d gaps %v", a, area, len(cov.Gaps), cov.Gaps)
	}
	if _, err := s.grids.Grid(ctx, "tracts", a); gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
		t.Errorf("deleted grid still current: %v", err)
	}
	if hist, err := s.grids.History(ctx, "tracts", a); err != nil || hist[len(hist)-1].ValidTo == nil {
		t.Errorf("deleted grid's history: %v", err)
	}
}

func TestSplitAndMerge(t *testing.T) {
	s := tractLayer(t)
	ctx := context.Background()
	db := pgtest.Shared(t)
	var a, parent, line string
	var area float64
	// A west-east line through a tract's interior point, beyond its edges,
	// on the first Queens tract it cuts in two.
	if err := db.Pool.QueryRow(ctx, `SELECT code, parent_code, ST_Area(geom::geography), ST_AsGeoJSON(l, 15)
		FROM grids, LATERAL (SELECT ST_MakeLine(ST_Translate(ST_PointOnSurface(geom), -0.05, -0.0001),
		                                        ST_Translate(ST_PointOnSurface(geom), 0.05, 0.0001)) AS l) x
		WHERE layer_id = 'tracts' AND level = 'tract' AND code LIKE '4%' AND ST_NumGeometries(ST_Split(geom, l)) = 2
		ORDER BY code LIMIT 1`).Scan(&a, &parent, &area, &line); err != nil {
		t.Fatal(err)
	}
	left, right := a+"-N", a+"-S"
	res, err := apply(s, gridmap.Operation{Op: gridmap.OpSplit, Code: a, Line: geojson.NewGeometry(mustGeometry(t, line)), NewCodes: []string{left, right}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Versions[left] != 1 || res.Versions[right] != 1 {
		t.Fatalf("split result %+v", res)
	}
	var union, northY, southY float64
	if err := db.Pool.QueryRow(ctx, `SELECT ST_Area(ST_Union(geom)::geography),
			max(ST_Y(ST_Centroid(geom))) FILTER (WHERE code = $1), max(ST_Y(ST_Centroid(geom))) FILTER (WHERE code = $2)
		FROM grids WHERE layer_id = 'tracts' AND code IN ($1, $2)`, left, right).Scan(&union, &northY, &southY); err != nil {
		t.Fatal(err)
	}
	if math.Abs(union-area)/area > 1e-4 {
		t.Errorf("parts cover %.1f m2, the tract was %.1f m2", union, area)
	}
	if northY <= southY {
		t.Errorf("the part left of an eastward line should come first (north): %s at %f, %s at %f", left, northY, right, southY)
	}
	emptyCoverage(t, s, parent)

	res, err = apply(s, gridmap.Operation{Op: gridmap.OpMerge, Codes: []string{left, right}, Into: a})
	if err != nil {
		t.Fatal(err)
	}
	merged := areaOf(t, a)
	if math.Abs(merged-area)/area > 1e-4 {
		t.Errorf("merged area %.1f m2, original %.1f m2", merged, area)
	}
	emptyCoverage(t, s, parent)
}

func TestTransferAndDryRun(t *testing.T) {
	s := tractLayer(t)
	ctx := context.Background()
	a, b, parent := neighbours(t, "5", 0)
	va, vb := version(t, s, a), version(t, s, b)
	bite := geometryOf(t, `ST_Buffer(ST_LineInterpolatePoint(ST_LineMerge(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))), 0.5), 0.0003)`, a, b)
	op := gridmap.Operation{Op: gridmap.OpTransfer, From: a, To: b, Area: bite}

	res, err := s.grids.ApplyChangeset(ctx, "tracts", &gridmap.Changeset{DryRun: true, Operations: []gridmap.Operation{op}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied || len(res.Problems) != 0 || res.Impact.AreaMovedM2 <= 0 || len(res.Impact.Grids) != 2 {
		t.Fatalf("dry run %+v", res)
	}
	if version(t, s, a) != va || version(t, s, b) != vb {
		t.Fatal("a dry run wrote")
	}
	if _, err := apply(s, op); err != nil {
		t.Fatal(err)
	}
	if version(t, s, a) != va+1 || version(t, s, b) != vb+1 {
		t.Error("transfer did not version both grids")
	}
	emptyCoverage(t, s, parent)
}

func TestRacingEditorsOneWins(t *testing.T) {
	s := tractLayer(t)
	a, b, _ := neighbours(t, "1", 3)
	v := version(t, s, a)
	g := geometryOf(t, "a.geom", a, b)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := geojson.NewFeature(g.Geometry())
			f.Properties["code"] = a
			f.Properties["editor"] = float64(i)
			_, errs[i] = apply(s, gridmap.Operation{Op: gridmap.OpPut, Code: a, Feature: f, IfMatch: &v})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch gridmap.ErrorCode(err) {
		case "":
			won++
		case gridmap.EPRECONDITION:
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	if won != 1 || version(t, s, a) != v+1 {
		t.Errorf("%d editors won; version %d", won, version(t, s, a))
	}
}

func mustGeometry(t testing.TB, js string) orb.Geometry {
	t.Helper()
	g, err := geojson.UnmarshalGeometry([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return g.Geometry()
}

func TestSnapping(t *testing.T) {
	s := newLayer(t, "snap")
	ctx := context.Background()
	// Two streets side by side in a district; the second is drawn by hand
	// with its shared edge 0.2 m (about 1.8e-6 degrees) off the first's.
	in := collection(
		feature("D", "district", "", box(120, 30, 0.02)),
		feature("S1", "street", "D", box(120, 30, 0.01)),
	)
	if _, err := importString(s, "snap", in, gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	off := 0.01 + 1.8e-6
	drawn := mustGeometry(t, fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%v,30],[120.02,30],[120.02,30.01],[%v,30.01],[%v,30]]]}`, 120+off, 120+off, 120+off))
	f := geojson.NewFeature(drawn)
	f.Properties["code"], f.Properties["level"], f.Properties["parent"] = "S2", "street", "D"
	if _, err := s.grids.ApplyChangeset(ctx, "snap", &gridmap.Changeset{Operations: []gridmap.Operation{{Op: gridmap.OpPut, Feature: f}}}); err != nil {
		t.Fatal(err)
	}
	var gap float64
	if err := pgtest.Shared(t).Pool.QueryRow(ctx, `SELECT ST_Area(ST_Difference(ST_MakeEnvelope(120, 30, 120.02, 30.01, 4326),
			ST_Union(geom))::geography) FROM grids WHERE layer_id = 'snap' AND code IN ('S1', 'S2')`).Scan(&gap); err != nil {
		t.Fatal(err)
	}
	if gap > 0.01 {
		t.Errorf("a %.2f m2 sliver is left between the streets: the drawn edge did not snap", gap)
	}
}

func TestChangeNotification(t *testing.T) {
	s := tractLayer(t)
	ctx := context.Background()
	conn, err := pgtest.Shared(t).Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+postgres.ChangeChannel); err != nil {
		t.Fatal(err)
	}
	a, b, _ := neighbours(t, "1", 5)
	if _, err := apply(s, putOp(a, geometryOf(t, "a.geom", a, b), nil)); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		n, err := conn.Conn().WaitForNotification(wait)
		if err != nil {
			t.Fatalf("no change announced: %v", err)
		}
		var ch gridmap.Change
		if err := json.Unmarshal([]byte(n.Payload), &ch); err != nil {
			t.Fatal(err)
		}
		if ch.Layer != "tracts" || len(ch.Codes) != 1 || ch.Codes[0] != a {
			continue // another test's change
		}
		if ch.DataVersion == 0 || len(ch.BBox) != 4 || ch.BBox[0] > -73 || ch.BBox[0] < -75 {
			t.Errorf("change %+v", ch)
		}
		return
	}
}

// areaOf is the geodesic area of a current tract in square metres.
func areaOf(t testing.TB, code string) float64 {
	t.Helper()
	var a float64
	if err := pgtest.Shared(t).Pool.QueryRow(context.Background(),
		`SELECT ST_Area(geom::geography) FROM grids WHERE layer_id = 'tracts' AND code = $1`, code).Scan(&a); err != nil {
		t.Fatalf("area of %s: %v", code, err)
	}
	return a
}

// TestCoveragePlanReadsChildrenByParent checks that the coverage of every
// borough, over the layer's 2,165 tracts, reads each parent's children
// through the parent index, LATERAL to it: folded into joins of the
// layer's children, the pairs of siblings were matched before their parent
// was ruled out. Nested loops are priced out, so that only subqueries kept
// whole (OFFSET 0) still plan as them; both plan modes, as the statement is
// prepared. (The union of each parent's children is read inside
// grid_children_cover, out of the plan's sight.)
func TestCoveragePlanReadsChildrenByParent(t *testing.T) {
	tractLayer(t)
	ctx := context.Background()
	conn := withoutNestedLoops(t)
	var parents string
	if err := conn.QueryRow(ctx, `SELECT array_agg(DISTINCT parent_code)::text FROM grids WHERE layer_id = 'tracts' AND parent_code IS NOT NULL`).Scan(&parents); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		plan := planOf(t, conn, "coverage "+mode, postgres.CoverageSQL["grid_versions"], "'tracts', '"+parents+"', 5, true", mode)
		// The children paired and the children outside.
		if n := len(regexp.MustCompile(`(Index Scan using|Bitmap Index Scan on) grid_versions_(current_)?parent\b`).FindAllString(plan, -1)); n < 2 {
			t.Errorf("%s: %d reads of children by parent, want 2:\n%s", mode, n, plan)
		}
		if regexp.MustCompile(`(Hash|Merge)( \w+)? Join`).MatchString(plan) {
			t.Errorf("%s: the coverage joins children whole:\n%s", mode, plan)
		}
	}
}

// TestStoredShapesPlanProbesByCode checks that reading a chunk's stored
// shapes and labels probes each code through the primary key, however
// PostgreSQL prices joins: a whole layer's refresh grows those tables
// unanalysed within its transaction, and a join by estimate read all the
// layer's rows each chunk.
func TestStoredShapesPlanProbesByCode(t *testing.T) {
	tractLayer(t)
	conn := withoutNestedLoops(t)
	for name, probe := range map[string]struct{ index, args, cond string }{
		"shapes": {"grid_shapes_pkey", `'tracts', '{1000100,1000201,3000100}'`, `\(code = c\.code\)`},
		"labels": {"grid_labels_pkey", `'tracts', '{1000100,1000201,3000100}'`, `\(code = c\.code\)`},
		"drop":   {"grid_shapes_pkey", `'tracts', '{1000100,1000201}', '{0,3}'`, `\(code = d\.code\) AND \(band = d\.band\)`},
	} {
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			plan := planOf(t, conn, "stored "+name+" "+mode, postgres.StoredShapesSQL[name], probe.args, mode)
			if !regexp.MustCompile(`(Index (Only )?Scan using|Bitmap Index Scan on) ` + probe.index + `[^\n]*\n[^\n]*Index Cond: \(\(layer_id = [^)]*\) AND ` + probe.cond + `\)`).MatchString(plan) {
				t.Errorf("%s, %s: no probe of %s by code:\n%s", name, mode, probe.index, plan)
			}
			if regexp.MustCompile(`(Hash|Merge)( \w+)? Join|Seq Scan on grid_`).MatchString(plan) {
				t.Errorf("%s, %s: the stored rows are joined or scanned whole:\n%s", name, mode, plan)
			}
		}
	}
}

// TestDropClosedShapesPlanProbesByCode checks that an edit's delete of its
// grids' shapes and labels of closed versions reads them by code, whichever
// plan PostgreSQL keeps for the prepared statement.
func TestDropClosedShapesPlanProbesByCode(t *testing.T) {
	tractLayer(t)
	conn, err := pgtest.Shared(t).Pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	checkPlans(t, conn, postgres.DropClosedSQL, []planCase{
		{name: "shapes", sql: "shapes", args: `'tracts', '{1000100,1000201}'`, index: []string{"grid_shapes_pkey"}, table: []string{"grid_shapes", "grid_versions"}},
		{name: "labels", sql: "labels", args: `'tracts', '{1000100,1000201}'`, index: []string{"grid_labels_pkey"}, table: []string{"grid_labels", "grid_versions"}},
	})
}

// withoutNestedLoops returns a connection of the shared database on which
// nested loops are priced out for the rest of the test: a statement still
// planned as one cannot be planned otherwise (a LATERAL subquery kept
// whole), whatever the statistics say.
func withoutNestedLoops(t *testing.T) *pgxpool.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgtest.Shared(t).Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SET enable_nestloop = off`); err != nil {
		conn.Release()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), `RESET enable_nestloop`)
		conn.Release()
	})
	return conn
}
