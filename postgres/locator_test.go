package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/paulmach/orb/geojson"
)

// TestLocatorMatchesPostGIS looks up 100,000 random points over New York
// in the borough > tract layer and checks every answer against PostGIS on
// the same polygons: the finest grid against ST_Covers (points within 1e-7
// degrees of a boundary excepted), co-owners against geodesic ST_DWithin
// at 30 m (allowing 1% on distance).
func TestLocatorMatchesPostGIS(t *testing.T) {
	tractLayer(t)
	db := pgtest.Shared(t)
	ctx := context.Background()
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var minX, minY, maxX, maxY float64
	if err := db.Pool.QueryRow(ctx, `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
		FROM (SELECT ST_Extent(geom)::geometry e FROM grids WHERE layer_id = 'tracts') x`).Scan(&minX, &minY, &maxX, &maxY); err != nil {
		t.Fatal(err)
	}
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	rnd := rand.New(rand.NewPCG(11, 12))
	pts := make([][2]float64, n)
	for i := range pts {
		pts[i] = [2]float64{minX + rnd.Float64()*(maxX-minX), minY + rnd.Float64()*(maxY-minY)}
	}

	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE pts (id int PRIMARY KEY, x float8, y float8)`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, `DROP TABLE pts`)
	if _, err := conn.Conn().CopyFrom(ctx, pgx.Identifier{"pts"}, []string{"id", "x", "y"},
		pgx.CopyFromSlice(n, func(i int) ([]any, error) { return []any{i, pts[i][0], pts[i][1]}, nil })); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ALTER TABLE pts ADD COLUMN g geometry(Point, 4326);
		UPDATE pts SET g = ST_SetSRID(ST_MakePoint(x, y), 4326); CREATE INDEX ON pts USING gist (g); ANALYZE pts`); err != nil {
		t.Fatal(err)
	}

	started := time.Now()
	// The finest covering grid (tracts before boroughs, then the lower code,
	// the index's boundary rule) and whether the point is near a boundary.
	// Grids drive the joins so PostGIS reuses each prepared polygon across
	// the points it covers.
	owner := make([]string, n)
	ownerLevel := make([]string, n)
	near := make([]bool, n)
	rows, err := conn.Query(ctx, `SELECT p.id, g.code, g.level FROM grids g JOIN pts p ON g.geom && p.g AND ST_Covers(g.geom, p.g)
		WHERE g.layer_id = 'tracts'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int
		var code, level string
		if err := rows.Scan(&id, &code, &level); err != nil {
			t.Fatal(err)
		}
		finer := level == "tract" && ownerLevel[id] != "tract"
		same := level == ownerLevel[id] && code < owner[id]
		if owner[id] == "" || finer || same {
			owner[id], ownerLevel[id] = code, level
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows, err = conn.Query(ctx, `WITH b AS (SELECT ST_Boundary(geom) AS bg FROM grids WHERE layer_id = 'tracts')
		SELECT DISTINCT p.id FROM b JOIN pts p ON ST_DWithin(b.bg, p.g, 1e-7)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		near[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostGIS owners: %v", time.Since(started))
	started = time.Now()
	within := make([]map[string]float64, n)
	for id, byCode := range distances(t, conn, `
		WITH t AS (SELECT code, geom, geom::geography AS geog FROM grids WHERE layer_id = 'tracts' AND level = 'tract')
		SELECT p.id, t.code, ST_Distance(t.geog, p.g::geography)
		FROM t JOIN pts p ON p.g && ST_Expand(t.geom, 0.0006)
		WHERE ST_DWithin(t.geog, p.g::geography, 30.3)`) {
		within[id] = byCode
	}

	t.Logf("PostGIS co-owners: %v", time.Since(started))
	var ans gridmap.LookupAnswer
	compared, inside, withCoOwners := 0, 0, 0
	// Every fortieth point outside every tract has its nearest tract checked
	// against PostGIS below.
	type nearest struct {
		id   int
		code string
		d    float64
	}
	var outside []nearest
	for i, p := range pts {
		if near[i] {
			continue
		}
		if err := loc.Lookup(ctx, gridmap.LookupQuery{Lon: p[0], Lat: p[1], Layer: "tracts"}, &ans); err != nil {
			t.Fatal(err)
		}
		la := ans.Layers[0]
		got := ""
		if f := la.Finest(); f != nil {
			got = f.Code
			inside++
		}
		if got != owner[i] {
			t.Fatalf("point %d (%.7f %.7f): finest grid %q, PostGIS ST_Covers says %q", i, p[0], p[1], got, owner[i])
		}
		want := map[string]float64{}
		for code, d := range within[i] {
			want[code] = d
		}
		delete(want, got)
		if la.Nearest != nil {
			delete(want, la.Nearest.Code)
		}
		for _, c := range la.CoOwners {
			d, ok := want[c.Code]
			if !ok {
				t.Fatalf("point %d (%.7f %.7f): co-owner %s at %.2f m is not within 30.3 m by PostGIS", i, p[0], p[1], c.Code, c.DistanceM)
			}
			if math.Abs(c.DistanceM-d) > math.Max(0.01*d, 0.02) {
				t.Fatalf("point %d: co-owner %s at %.3f m, PostGIS %.3f m", i, c.Code, c.DistanceM, d)
			}
			delete(want, c.Code)
		}
		for code, d := range want {
			if d < 29.7 {
				t.Fatalf("point %d (%.7f %.7f): PostGIS puts %s at %.2f m, missing from co-owners %+v", i, p[0], p[1], code, d, la.CoOwners)
			}
		}
		if len(la.CoOwners) > 0 {
			withCoOwners++
		}
		if got == "" && la.Nearest != nil && i%40 == 0 {
			outside = append(outside, nearest{i, la.Nearest.Code, la.Nearest.DistanceM})
		}
		compared++
	}
	checkNearest := func(outside []nearest) {
		if _, err := conn.Exec(ctx, `CREATE TEMP TABLE outs (id int PRIMARY KEY, code text, d float8)`); err != nil {
			t.Fatal(err)
		}
		defer conn.Exec(ctx, `DROP TABLE outs`)
		if _, err := conn.Conn().CopyFrom(ctx, pgx.Identifier{"outs"}, []string{"id", "code", "d"},
			pgx.CopyFromSlice(len(outside), func(i int) ([]any, error) {
				return []any{outside[i].id, outside[i].code, outside[i].d}, nil
			})); err != nil {
			t.Fatal(err)
		}
		// Every tract within a little more than the distance the index
		// gives (a degree of longitude here is over 80 km).
		found := distances(t, conn, `SELECT o.id, g.code, ST_Distance(g.geom::geography, p.g::geography)
			FROM outs o JOIN pts p USING (id)
			JOIN grids g ON g.layer_id = 'tracts' AND g.level = 'tract' AND g.geom && ST_Expand(p.g, o.d / 80000 + 1e-5)
			WHERE ST_DWithin(g.geom::geography, p.g::geography, o.d * 1.01 + 0.5)`)
		for _, o := range outside {
			d, ok := found[o.id][o.code]
			if !ok || math.Abs(d-o.d) > math.Max(0.01*d, 0.5) {
				t.Fatalf("point %d (%.7f %.7f): nearest tract %s at %.2f m; PostGIS puts it at %.2f m (found %t)",
					o.id, pts[o.id][0], pts[o.id][1], o.code, o.d, d, ok)
			}
			for code, dd := range found[o.id] {
				if dd < 0.99*d-0.5 {
					t.Fatalf("point %d (%.7f %.7f): nearest tract %s at %.2f m by PostGIS, but %s is at %.2f m",
						o.id, pts[o.id][0], pts[o.id][1], o.code, d, code, dd)
				}
			}
		}
	}
	started = time.Now()
	checkNearest(outside)
	t.Logf("%d points outside every tract had their nearest tract checked against PostGIS: %v", len(outside), time.Since(started))
	if len(outside) < n/200 {
		t.Errorf("only %d points outside every tract were checked", len(outside))
	}
	t.Logf("%d points compared (%d skipped within 1e-7 degrees of a boundary): %d inside a grid, %d with co-owners",
		compared, n-compared, inside, withCoOwners)
	if inside < n/5 || withCoOwners < n/50 {
		t.Errorf("too few points inside (%d) or with co-owners (%d) for the comparison to mean much", inside, withCoOwners)
	}
}

// distances runs a query of (point id, grid code, distance) rows and
// returns the distances by point and code.
func distances(t *testing.T, conn *pgxpool.Conn, query string) map[int]map[string]float64 {
	t.Helper()
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int]map[string]float64{}
	for rows.Next() {
		var id int
		var code string
		var d float64
		if err := rows.Scan(&id, &code, &d); err != nil {
			t.Fatal(err)
		}
		if out[id] == nil {
			out[id] = map[string]float64{}
		}
		out[id][code] = d
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLocatorFollowsEdits moves the edge between two tracts while lookups
// run on two locators (two gridmap instances on one database): both answer
// the new owner for a point in the moved area shortly after the commit,
// and no lookup fails meanwhile.
func TestLocatorFollowsEdits(t *testing.T) {
	s := tractLayer(t)
	db := pgtest.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b, _ := neighbours(t, "1", 4)
	var grown []byte
	var px, py float64
	if err := db.Pool.QueryRow(ctx, `WITH x AS (SELECT a.geom AS ag, ST_Intersection(b.geom,
			ST_Buffer(ST_LineInterpolatePoint(ST_LineMerge(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))), 0.5), 0.0003)) AS bite
			FROM grids a, grids b WHERE a.layer_id = 'tracts' AND b.layer_id = 'tracts' AND a.code = $1 AND b.code = $2),
		p AS (SELECT ST_PointOnSurface(ST_Buffer(bite, -0.00003)) AS pt, ST_Union(ag, bite) AS g FROM x)
		SELECT ST_AsGeoJSON(g), ST_X(pt), ST_Y(pt) FROM p`, a, b).Scan(&grown, &px, &py); err != nil {
		t.Fatal(err)
	}
	geom, err := geojson.UnmarshalGeometry(grown)
	if err != nil {
		t.Fatal(err)
	}

	locs := []*postgres.Locator{postgres.NewLocator(db), postgres.NewLocator(db)}
	for _, l := range locs {
		go l.Follow(ctx)
		<-l.Listening()
	}
	owner := func(l *postgres.Locator) string {
		var ans gridmap.LookupAnswer
		if err := l.Lookup(ctx, gridmap.LookupQuery{Lon: px, Lat: py, Layer: "tracts"}, &ans); err != nil {
			t.Error(err)
			return ""
		}
		if f := ans.Layers[0].Finest(); f != nil {
			return f.Code
		}
		return ""
	}
	for _, l := range locs {
		if got := owner(l); got != b {
			t.Fatalf("before the edit the point is in %q, want %s", got, b)
		}
	}

	// A steady load of lookups on both instances through the edit.
	var lookups, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range locs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ans gridmap.LookupAnswer
			rnd := rand.New(rand.NewPCG(1, 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				q := gridmap.LookupQuery{Lon: px + (rnd.Float64()-0.5)*0.01, Lat: py + (rnd.Float64()-0.5)*0.01}
				if err := l.Lookup(ctx, q, &ans); err != nil || len(ans.Layers) == 0 {
					failures.Add(1)
				}
				lookups.Add(1)
			}
		}()
	}
	before := time.Now()
	res, err := s.grids.ApplyChangeset(ctx, "tracts", &gridmap.Changeset{Operations: []gridmap.Operation{
		{Op: gridmap.OpMoveEdge, Code: a, Geometry: geojson.NewGeometry(geom.Geometry())}}})
	if err != nil || !res.Applied {
		var ge *gridmap.Error
		if errors.As(err, &ge) {
			t.Fatalf("move_edge: %v %+v", err, ge.Details)
		}
		t.Fatalf("move_edge: %v %+v", err, res)
	}
	committed := time.Now()
	for i, l := range locs {
		for owner(l) != a {
			if time.Since(committed) > 10*time.Second {
				t.Fatalf("instance %d still answers the old owner 10 s after the edit", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Logf("instance %d answers the new owner %v after the commit", i, time.Since(committed).Round(time.Millisecond))
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || lookups.Load() == 0 {
		t.Errorf("%d of %d lookups failed during the edit", failures.Load(), lookups.Load())
	}
	// Put the edge back for the other tests.
	orig, err := s.grids.GridAt(ctx, "tracts", a, before)
	if err == nil {
		_, err = s.grids.ApplyChangeset(ctx, "tracts", &gridmap.Changeset{Operations: []gridmap.Operation{
			{Op: gridmap.OpMoveEdge, Code: a, Geometry: geojson.NewGeometry(orig.Geometry)}}})
	}
	if err != nil {
		t.Fatalf("restoring the edge: %v", err)
	}
}

// TestLocatorPeopleByLayer: two layers with grids of the same codes over
// the same place, each with its own people: a lookup over every layer
// answers each layer with its own grid's people, and a grid without
// people with none, though the other layer's grid of its code has some.
func TestLocatorPeopleByLayer(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDB(t)
	layers, grids := postgres.NewLayerStore(db), postgres.NewGridStore(db)
	for _, id := range []string{"pa", "pb"} {
		if _, err := layers.PutLayer(ctx, &gridmap.Layer{ID: id, Kind: gridmap.KindDepartmental, Levels: []string{"beat"}}); err != nil {
			t.Fatal(err)
		}
		r := geo.NewFeatureReader(strings.NewReader(collection(
			feature("G", "beat", "", rect(121, 31, 121.02, 31.02)),
			feature("H", "beat", "", rect(121.02, 31, 121.04, 31.02)))), geo.DefaultFieldMap)
		if _, err := grids.Import(ctx, id, r, gridmap.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	people := map[[2]string][]gridmap.Person{
		{"pa", "G"}: {{Role: gridmap.RolePolice, Name: "Zhang"}, {Role: gridmap.RolePolice, Name: "Wang"}},
		{"pb", "G"}: {{Role: gridmap.RolePolice, Name: "Li"}},
		{"pb", "H"}: {{Role: gridmap.RolePolice, Name: "Zhao"}},
	}
	for k, p := range people {
		if err := grids.SetPeople(ctx, k[0], k[1], p); err != nil {
			t.Fatal(err)
		}
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for _, pt := range []struct {
			lon  float64
			code string
		}{{121.01, "G"}, {121.03, "H"}} {
			var ans gridmap.LookupAnswer
			if err := loc.Lookup(ctx, gridmap.LookupQuery{Lon: pt.lon, Lat: 31.01}, &ans); err != nil {
				t.Fatal(err)
			}
			if len(ans.Layers) != 2 || ans.Layers[0].Layer == ans.Layers[1].Layer {
				t.Fatalf("%s: (%v, 31.01): layers %+v answered, want pa and pb", when, pt.lon, ans.Layers)
			}
			for _, la := range ans.Layers {
				if len(la.Chain) != 1 || la.Chain[0].Code != pt.code {
					t.Fatalf("(%v, 31.01) in layer %s: chain %+v, want grid %s", pt.lon, la.Layer, la.Chain, pt.code)
				}
				want := people[[2]string{la.Layer, pt.code}]
				if len(la.People) != len(want) {
					t.Fatalf("%s: (%v, 31.01) in layer %s: people %+v, want %+v", when, pt.lon, la.Layer, la.People, want)
				}
				for i := range want {
					if la.People[i].Name != want[i].Name || la.People[i].Role != want[i].Role {
						t.Fatalf("%s: (%v, 31.01) in layer %s: people %+v, want %+v", when, pt.lon, la.Layer, la.People, want)
					}
				}
			}
		}
	}
	check("loaded")
	// One layer reloaded after its people changed: the other keeps its own.
	people[[2]string{"pb", "G"}] = []gridmap.Person{{Role: gridmap.RolePolice, Name: "Sun"}}
	if err := grids.SetPeople(ctx, "pb", "G", people[[2]string{"pb", "G"}]); err != nil {
		t.Fatal(err)
	}
	if err := loc.Reload(ctx, "pb", 0); err != nil {
		t.Fatal(err)
	}
	check("pb reloaded")
}

// TestLocatorReloadsChangedGridsOnly changes a layer under a loaded index
// in every way a reload must see: a grid's new version, a grid gone, a new
// grid that a grid already indexed names as its parent (which named no
// grid before), and new people for a grid whose boundary stays. The
// reload (over a store extending the index's: a few grids of many
// changed) answers every point of the area exactly as an index loaded
// afresh, and so does a load of every layer beside it with a new one. A
// version is never changed in place (the database refuses it), so the
// index does not read one it holds again. Grids only added, however many,
// leave the store extended.
func TestLocatorReloadsChangedGridsOnly(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDB(t)
	layers, grids := postgres.NewLayerStore(db), postgres.NewGridStore(db)
	if _, err := layers.PutLayer(ctx, &gridmap.Layer{ID: "rr", Kind: gridmap.KindComprehensive, Levels: []string{"street", "grid"}}); err != nil {
		t.Fatal(err)
	}
	r := geo.NewFeatureReader(strings.NewReader(collection(
		feature("S", "street", "", rect(121, 31, 121.03, 31.01)),
		feature("G1", "grid", "S", rect(121, 31, 121.01, 31.01)),
		feature("G2", "grid", "S", rect(121.01, 31, 121.02, 31.01)),
		feature("G3", "grid", "S", rect(121.02, 31, 121.03, 31.01)))), geo.DefaultFieldMap)
	if _, err := grids.Import(ctx, "rr", r, gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	// Grids the edits leave alone, enough of them that the reload extends
	// the index's store rather than starting one: a street of 24 north of
	// the first.
	var north []string
	north = append(north, feature("N", "street", "", rect(121, 31.01, 121.03, 31.02)))
	for i := range 24 {
		x, y := 121+float64(i%6)*0.005, 31.01+float64(i/6)*0.0025
		north = append(north, feature(fmt.Sprintf("N%02d", i), "grid", "N", rect(x, y, x+0.005, y+0.0025)))
	}
	if _, err := grids.Import(ctx, "rr", geo.NewFeatureReader(strings.NewReader(collection(north...)), geo.DefaultFieldMap), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	// A grid naming a parent the layer does not hold (as data written
	// beside gridmap may).
	if _, err := db.Pool.Exec(ctx, `INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom)
		VALUES ('rr', 'O', 1, 'orphan', 'grid', 'Q', ST_GeomFromText('MULTIPOLYGON(((121.05 31,121.06 31,121.06 31.01,121.05 31.01,121.05 31)))', 4326))`); err != nil {
		t.Fatal(err)
	}
	if err := grids.SetPeople(ctx, "rr", "G2", []gridmap.Person{{Role: gridmap.RoleGridWorker, Name: "Zhang"}}); err != nil {
		t.Fatal(err)
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if chain := loc.ChainOf("rr", "O"); len(chain) != 1 {
		t.Fatalf("O's chain %+v before its parent exists, want O alone", chain)
	}
	for _, stmt := range []string{
		// G1 shrinks to its west half, a new version.
		`WITH old AS (UPDATE grid_versions SET valid_to = now() WHERE layer_id = 'rr' AND code = 'G1' AND valid_to IS NULL RETURNING *)
		INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom)
		SELECT layer_id, code, version + 1, name, level, parent_code,
			ST_GeomFromText('MULTIPOLYGON(((121 31,121.005 31,121.005 31.01,121 31.01,121 31)))', 4326) FROM old`,
		`UPDATE grid_versions SET valid_to = now() WHERE layer_id = 'rr' AND code = 'G3' AND valid_to IS NULL`,
		`INSERT INTO grid_versions (layer_id, code, version, name, level, geom)
		VALUES ('rr', 'Q', 1, 'found', 'street', ST_GeomFromText('MULTIPOLYGON(((121.05 31,121.06 31,121.06 31.01,121.05 31.01,121.05 31)))', 4326))`,
	} {
		if _, err := db.Pool.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := grids.SetPeople(ctx, "rr", "G2", []gridmap.Person{{Role: gridmap.RoleGridWorker, Name: "Li"}}); err != nil {
		t.Fatal(err)
	}
	if err := loc.Reload(ctx, "rr", 0); err != nil {
		t.Fatal(err)
	}
	fresh := postgres.NewLocator(db)
	if err := fresh.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if chain := loc.ChainOf("rr", "O"); len(chain) != 2 || chain[0].Code != "Q" || chain[1].Code != "O" {
		t.Fatalf("O's chain %+v after Q was added, want Q > O", chain)
	}
	if chain := loc.ChainOf("rr", "G3"); chain != nil {
		t.Fatalf("G3 was closed and is still indexed: %+v", chain)
	}
	compared := 0
	same := func(when string, layer string, loc, fresh *postgres.Locator) {
		t.Helper()
		tolerance := 20.0
		for x := 120.995; x < 121.065; x += 0.0013 {
			for y := 30.995; y < 31.025; y += 0.0011 {
				var got, want gridmap.LookupAnswer
				q := gridmap.LookupQuery{Layer: layer, Lon: x, Lat: y, ToleranceM: &tolerance}
				if err := loc.Lookup(ctx, q, &got); err != nil {
					t.Fatal(err)
				}
				if err := fresh.Lookup(ctx, q, &want); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: (%.4f, %.4f) in layer %q: %+v, loaded afresh %+v", when, x, y, layer, got, want)
				}
				compared++
			}
		}
	}
	same("reloaded", "rr", loc, fresh)
	var ans gridmap.LookupAnswer
	if err := loc.Lookup(ctx, gridmap.LookupQuery{Layer: "rr", Lon: 121.015, Lat: 31.005}, &ans); err != nil {
		t.Fatal(err)
	}
	if p := ans.Layers[0].People; len(p) != 1 || p[0].Name != "Li" {
		t.Fatalf("G2's people after the reload: %+v, want Li", p)
	}
	if ans := ans.Layers[0].Chain; len(ans) != 2 || ans[1].Code != "G2" {
		t.Fatalf("(121.015, 31.005): chain %+v, want S > G2", ans)
	}

	// Every layer loaded again over the index, with a new layer beside.
	if _, err := layers.PutLayer(ctx, &gridmap.Layer{ID: "rr2", Kind: gridmap.KindDepartmental, Levels: []string{"beat"}}); err != nil {
		t.Fatal(err)
	}
	r = geo.NewFeatureReader(strings.NewReader(collection(feature("B1", "beat", "", rect(121, 31, 121.02, 31.02)))), geo.DefaultFieldMap)
	if _, err := grids.Import(ctx, "rr2", r, gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `WITH old AS (UPDATE grid_versions SET valid_to = now() WHERE layer_id = 'rr' AND code = 'N07' AND valid_to IS NULL RETURNING *)
		INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom)
		SELECT layer_id, code, version + 1, 'renamed', level, parent_code, geom FROM old`); err != nil {
		t.Fatal(err)
	}
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	fresh = postgres.NewLocator(db)
	if err := fresh.Load(ctx); err != nil {
		t.Fatal(err)
	}
	same("loaded over the index", "rr", loc, fresh)
	same("loaded over the index", "rr2", loc, fresh)
	if chain := loc.ChainOf("rr", "N07"); len(chain) != 2 || chain[1].Name != "renamed" {
		t.Fatalf("N07's new version: %+v", chain)
	}

	// A version is read once, which holds because none is changed in
	// place: the database refuses it, and the reload reads versions it
	// does not hold only.
	_, err := db.Pool.Exec(ctx, `UPDATE grid_versions SET name = 'changed in place' WHERE layer_id = 'rr' AND code = 'N03' AND valid_to IS NULL`)
	if err == nil || !strings.Contains(err.Error(), "never changed in place") {
		t.Fatalf("a version changed in place: %v, want it refused", err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE grid_versions SET valid_to = now() WHERE layer_id = 'rr' AND code = 'N03' AND valid_to IS NULL`); err != nil {
		t.Fatalf("closing a version: %v", err)
	}
	// The trigger that refuses it names every column but valid_to.
	var missed, extra []string
	if err := db.Pool.QueryRow(ctx, `WITH watched AS (
			SELECT a.attname::text AS name FROM pg_trigger t JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr)
			WHERE t.tgname = 'grid_versions_unchanged' AND t.tgrelid = 'grid_versions'::regclass),
		columns AS (SELECT attname::text AS name FROM pg_attribute
			WHERE attrelid = 'grid_versions'::regclass AND attnum > 0 AND NOT attisdropped AND attname <> 'valid_to')
		SELECT coalesce((SELECT array_agg(name ORDER BY name) FROM columns WHERE name NOT IN (SELECT name FROM watched)), '{}'),
		       coalesce((SELECT array_agg(name ORDER BY name) FROM watched WHERE name NOT IN (SELECT name FROM columns)), '{}')`).Scan(&missed, &extra); err != nil {
		t.Fatal(err)
	}
	if len(missed) > 0 || len(extra) > 0 {
		t.Errorf("the trigger grid_versions_unchanged leaves out columns %v of grid_versions and watches %v besides", missed, extra)
	}
	if err := loc.Reload(ctx, "rr", 0); err != nil {
		t.Fatal(err)
	}
	if chain := loc.ChainOf("rr", "N03"); chain != nil {
		t.Fatalf("N03 after its version was closed: %+v, want none", chain)
	}

	// Grids only added, more than a quarter of the layer's: the reload
	// still extends the index's store, as adding leaves nothing behind in
	// it (the versions replaced above stay, until a copy afresh).
	south := []string{feature("M", "street", "", rect(121, 30.99, 121.03, 31))}
	for i := range 16 {
		x, y := 121+float64(i%8)*0.00375, 30.99+float64(i/8)*0.005
		south = append(south, feature(fmt.Sprintf("M%02d", i), "grid", "M", rect(x, y, x+0.00375, y+0.005)))
	}
	if _, err := grids.Import(ctx, "rr", geo.NewFeatureReader(strings.NewReader(collection(south...)), geo.DefaultFieldMap), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := loc.Reload(ctx, "rr", 0); err != nil {
		t.Fatal(err)
	}
	fresh = postgres.NewLocator(db)
	if err := fresh.Load(ctx); err != nil {
		t.Fatal(err)
	}
	vertices := func(l *postgres.Locator) (grids, vertices int) {
		for _, st := range l.IndexStats() {
			if st.Layer == "rr" {
				return st.Grids, st.Vertices
			}
		}
		return 0, 0
	}
	g, stored := vertices(loc)
	if _, live := vertices(fresh); g != 46 || stored <= live {
		t.Errorf("after 17 grids were added: %d grids, %d vertices in the store against %d in use, want 46 and more", g, stored, live)
	}
	same("reloaded after grids were added", "rr", loc, fresh)
	t.Logf("%d points compared", compared)
}
