package postgres_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/gridmap/gridmap/tiles"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/geojson"
	"github.com/twpayne/go-geos"
)

// Tiles over New York: lower Manhattan (Wall Street) at 14, and tiles
// covering the city at lower zooms.
var lowerManhattan = tiles.Tile{Z: 14, X: 4823, Y: 6160}

func render(t testing.TB, ts *postgres.TileStore, layer string, tile tiles.Tile) (mvt.Layers, *gridmap.RenderedTile) {
	t.Helper()
	out, err := ts.RenderTile(context.Background(), gridmap.TileQuery{Tileset: layer, Z: tile.Z, X: tile.X, Y: tile.Y})
	if err != nil {
		t.Fatalf("tile %s: %v", tile, err)
	}
	layers, err := mvt.Unmarshal(out.MVT)
	if err != nil {
		t.Fatalf("tile %s does not decode: %v", tile, err)
	}
	return layers, out
}

func layerNamed(ls mvt.Layers, name string) *mvt.Layer {
	for _, l := range ls {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// codesIn returns the codes of the features of an MVT layer at a level.
func codesIn(l *mvt.Layer, level string) []string {
	var out []string
	if l == nil {
		return nil
	}
	for _, f := range l.Features {
		if level == "" || f.Properties["level"] == level {
			out = append(out, fmt.Sprint(f.Properties["code"]))
		}
	}
	sort.Strings(out)
	return out
}

func TestTileLowerManhattanHasExactlyTheTractsThere(t *testing.T) {
	tractLayer(t)
	db := pgtest.Shared(t)
	ts := postgres.NewTileStore(db)
	ls, _ := render(t, ts, "tracts", lowerManhattan)
	got := codesIn(layerNamed(ls, "grids"), "tract")
	var want []string
	rows, err := db.Pool.Query(context.Background(), `SELECT code FROM grids WHERE layer_id = 'tracts' AND level = 'tract'
		AND ST_Intersects(geom, ST_Transform(ST_TileEnvelope($1, $2, $3), 4326)) ORDER BY code`, lowerManhattan.Z, lowerManhattan.X, lowerManhattan.Y)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		rows.Scan(&c)
		want = append(want, c)
	}
	if len(want) < 5 {
		t.Fatalf("only %d tracts meet the tile by PostGIS; the tile is not over lower Manhattan", len(want))
	}
	if !slices.Equal(got, want) {
		t.Errorf("tile has tracts %v\nPostGIS says %v", got, want)
	}
	if labels := layerNamed(ls, "labels"); labels == nil || len(labels.Features) == 0 {
		t.Error("no labels layer in the tile")
	}
	for _, f := range layerNamed(ls, "grids").Features {
		if f.Properties["name"] == nil || f.Properties["level"] == nil || f.Properties["depth"] == nil {
			t.Fatalf("feature without name, level or depth: %v", f.Properties)
		}
	}
	t.Logf("z14 tile over lower Manhattan: %d tracts, as PostGIS", len(got))

	// GDAL's MVT driver reads the same tile.
	if _, err := exec.LookPath("ogrinfo"); err != nil {
		t.Logf("ogrinfo not installed (make test installs gdal-bin): skipping the GDAL read")
		return
	}
	_, out := render(t, ts, "tracts", lowerManhattan)
	dir := filepath.Join(t.TempDir(), "14", "4823")
	os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, "6160.pbf")
	if err := os.WriteFile(file, out.MVT, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command("ogrinfo", "-ro", "-q", file, "grids").CombinedOutput()
	if err != nil {
		t.Fatalf("ogrinfo: %v\n%s", err, res)
	}
	var fromGDAL []string
	for _, m := range regexp.MustCompile(`(?m)^\s*code \(String\) = (\S+)`).FindAllStringSubmatch(string(res), -1) {
		fromGDAL = append(fromGDAL, m[1])
	}
	sort.Strings(fromGDAL)
	if all := codesIn(layerNamed(ls, "grids"), ""); !slices.Equal(fromGDAL, all) {
		t.Errorf("ogrinfo reads codes %v, orb %v", fromGDAL, all)
	}
}

type tileGrid struct {
	code string
	geom orb.MultiPolygon
}

// polygons returns the grids of an MVT layer by level, in tile units.
func polygons(l *mvt.Layer) map[string][]tileGrid {
	out := map[string][]tileGrid{}
	if l == nil {
		return out
	}
	for _, f := range l.Features {
		lv, code := fmt.Sprint(f.Properties["level"]), fmt.Sprint(f.Properties["code"])
		switch g := f.Geometry.(type) {
		case orb.Polygon:
			out[lv] = append(out[lv], tileGrid{code, orb.MultiPolygon{g}})
		case orb.MultiPolygon:
			out[lv] = append(out[lv], tileGrid{code, g})
		}
	}
	return out
}

// union returns the union of the grids' polygons in GEOS.
func union(t testing.TB, gctx *geos.Context, grids []tileGrid) *geos.Geom {
	t.Helper()
	parts := make([]*geos.Geom, 0, len(grids))
	for _, g := range grids {
		b, _ := wkb.Marshal(g.geom)
		gm, err := gctx.NewGeomFromWKB(b)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, gm)
	}
	return gctx.NewCollection(geos.TypeIDGeometryCollection, parts).UnaryUnion()
}

// pixel is one pixel of a 256-pixel tile, in tile units.
const pixel = tiles.Extent / 256

func TestTilesAreValidAndNeighboursShareEdges(t *testing.T) {
	tractLayer(t)
	db := pgtest.Shared(t)
	ts := postgres.NewTileStore(db)
	// From tiles.RawZoom on, tiles are drawn from blocks too.
	blocks := postgres.NewTileStore(db)
	blocks.KeepTileBlocks(64 << 20)
	ctx := context.Background()
	gctx := geos.NewContext()
	tileSquare := gctx.NewGeomFromBounds(0, 0, tiles.Extent, tiles.Extent)
	city := [4]float64{-74.05, 40.55, -73.75, 40.9}
	checked := 0
	var gapTotal float64
	for _, zs := range []struct {
		z  int
		ts *postgres.TileStore
	}{{8, ts}, {9, ts}, {10, ts}, {11, ts}, {12, ts}, {13, ts}, {14, ts}, {15, ts}, {14, blocks}, {15, blocks}, {16, blocks}} {
		z, ts := zs.z, zs.ts
		x0, y0, x1, y1 := tiles.Covering(z, city, 0)
		// Past zoom 11, a band across the middle of the city is enough.
		if n := x1 - x0 + 1; n > 4 {
			mid := (x0 + x1) / 2
			x0, x1 = mid-1, mid+1
			midY := (y0 + y1) / 2
			y0, y1 = midY-1, midY+1
		}
		for x := x0; x <= x1; x++ {
			for y := y0; y <= y1; y++ {
				tile := tiles.Tile{Z: z, X: x, Y: y}
				ls, _ := render(t, ts, "tracts", tile)
				byLevel := polygons(layerNamed(ls, "grids"))
				raw, err := ts.RenderUngeneralised(ctx, "tracts", z, x, y, false)
				if err != nil {
					t.Fatal(err)
				}
				rawLayers, _ := mvt.Unmarshal(raw)
				rawByLevel := polygons(layerNamed(rawLayers, "grids"))
				for level, polys := range byLevel {
					for i, g := range polys {
						b, _ := wkb.Marshal(g.geom)
						g, err := gctx.NewGeomFromWKB(b)
						if err != nil {
							t.Fatalf("tile %s %s %d: %v", tile, level, i, err)
						}
						if !g.IsValid() {
							t.Errorf("tile %s: %s polygon %d is invalid: %s", tile, level, i, g.IsValidReason())
						}
						checked++
					}
					// No gap between neighbours wider than a pixel: whatever
					// the grids' own geometry covers, a pixel in from its
					// outline, the generalised grids cover too, but for slivers
					// that vanish when shrunk by half a pixel. No overlaps.
					covered := union(t, gctx, polys)
					// (within the tile: the buffer around it is drawn by the
					// neighbouring tiles)
					inner := union(t, gctx, rawByLevel[level]).Buffer(-pixel, 4).Intersection(tileSquare)
					gaps := inner.Difference(covered).Buffer(-pixel/2, 4)
					gap := gaps.Area()
					if gap > 1 {
						c := gaps.Centroid()
						t.Errorf("tile %s: %s grids leave gaps wider than a pixel (%.0f square units after shrinking them by half a pixel, around %.0f,%.0f)", tile, level, gap, c.X(), c.Y())
					}
					var sum float64
					for _, g := range polys {
						b, _ := wkb.Marshal(g.geom)
						gm, _ := gctx.NewGeomFromWKB(b)
						sum += gm.Area()
					}
					if overlap := sum - covered.Area(); overlap > pixel*pixel {
						t.Errorf("tile %s: %s grids overlap by %.0f square units", tile, level, overlap)
					}
					gapTotal += gap
				}
			}
		}
	}
	t.Logf("%d polygons checked, all valid; gaps wider than a pixel: %.0f square units in all", checked, gapTotal)
	if checked < 1000 {
		t.Errorf("only %d polygons checked", checked)
	}
}

// TestTileQueriesUseTheSpatialIndexes checks that every tile statement
// finds its grids, shapes, labels and reports through their spatial
// indexes (GiST; SP-GiST for the label points), in both plan modes.
func TestTileQueriesUseTheSpatialIndexes(t *testing.T) {
	tractLayer(t)
	db := pgtest.Shared(t)
	ctx := context.Background()
	// Enough reports that the planner has a choice to get wrong.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('plan', 'plan', 1, 'calendar_days') ON CONFLICT DO NOTHING;
		INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment)
		SELECT 'plan-' || i, '\x00', 'plan', ST_SetSRID(ST_MakePoint(-74.2 + random() * 0.5, 40.5 + random() * 0.4), 4326), 'wgs84',
		       now(), 'reported', 'grid', now(), '{}' FROM generate_series(1, 20000) i ON CONFLICT DO NOTHING;
		ANALYZE reports; ANALYZE grid_versions; ANALYZE grid_shapes; ANALYZE grid_labels; ANALYZE layer_changes`); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	z, x, y := lowerManhattan.Z, lowerManhattan.X, lowerManhattan.Y
	// Report tiles take: statuses, negate, categories, since, done
	// statuses, cells, the scope's layer and code, stopped statuses, until.
	const noFilter, filtered, scoped = "NULL, false, NULL, NULL::timestamptz, '{closed,rejected}', 16, NULL, NULL, '{closed,rejected,suspended}', NULL",
		"'{closed,rejected}', true, '{plan,plan.1}', now() - interval '1 day', '{closed,rejected}', 16, NULL, NULL, '{closed,rejected,suspended}', now()",
		"NULL, false, NULL, NULL::timestamptz, '{closed,rejected}', 16, 'tracts', '1', '{closed,rejected,suspended}', NULL"
	tests := []planCase{
		{"raw grids", "raw grids", fmt.Sprintf("'tracts', %d, %d, %d, '{borough,tract}', '{borough,tract}', 0.015625", z, x, y),
			[]string{"grid_versions(_current)?_geom", "grid_labels_point"}, []string{"grid_versions", "grid_labels"}},
		{"band grids", "band grids", "'tracts', 10, 301, 385, '{borough,tract}', '{borough,tract}', 3",
			[]string{"grid_shapes_geom", "grid_labels_point"}, []string{"grid_shapes", "grid_labels"}},
		{"report clusters", "report clusters", "10, 301, 385, " + noFilter, []string{"reports_location"}, []string{"reports"}},
		{"single reports", "single reports", fmt.Sprintf("%d, %d, %d, ", z, x, y) + noFilter, []string{"reports_location"}, []string{"reports"}},
		{"filtered report clusters", "report clusters", "10, 301, 385, " + filtered, []string{"reports_location"}, []string{"reports"}},
		{"filtered single reports", "single reports", fmt.Sprintf("%d, %d, %d, ", z, x, y) + filtered, []string{"reports_location"}, []string{"reports"}},
		// A scope may be answered by place, by jurisdiction or by layer,
		// whichever is the narrowest on the data; never by reading them all.
		{"scoped report clusters", "report clusters", "10, 301, 385, " + scoped, []string{"reports_(location|scope|primary)"}, []string{"reports"}},
		{"scoped single reports", "single reports", fmt.Sprintf("%d, %d, %d, ", z, x, y) + scoped, []string{"reports_(location|scope|primary)"}, []string{"reports"}},
	}
	checkPlans(t, conn, postgres.TileSQL, tests)
}

func TestMoveEdgeChangesOnlyTheTilesItTouches(t *testing.T) {
	s := tractLayer(t)
	db := pgtest.Shared(t)
	ts := postgres.NewTileStore(db)
	ctx := context.Background()
	a, nb, _ := neighbours(t, "1", 5)
	var lon, lat float64
	if err := db.Pool.QueryRow(ctx, `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(ST_LineMerge(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))), 0.5) p
		FROM grids a, grids b WHERE a.layer_id = 'tracts' AND b.layer_id = 'tracts' AND a.code = $1 AND b.code = $2) x`, a, nb).Scan(&lon, &lat); err != nil {
		t.Fatal(err)
	}
	var covering []tiles.Tile
	for _, z := range []int{10, 12, 14, 16} {
		x, y, _, _ := tiles.Covering(z, [4]float64{lon, lat, lon, lat}, 0)
		covering = append(covering, tiles.Tile{Z: z, X: x, Y: y})
	}
	// Far away in Staten Island, at the same zooms.
	var far []tiles.Tile
	for _, z := range []int{10, 12, 14, 16} {
		x, y, _, _ := tiles.Covering(z, [4]float64{-74.2, 40.55, -74.2, 40.55}, 0)
		far = append(far, tiles.Tile{Z: z, X: x, Y: y})
	}
	before := map[tiles.Tile]string{}
	shape := map[tiles.Tile]string{}
	for _, tile := range append(slices.Clone(covering), far...) {
		ls, out := render(t, ts, "tracts", tile)
		before[tile] = out.Version
		shape[tile] = featureGeometry(layerNamed(ls, "grids"), a)
	}

	grown := geometryOf(t, `ST_Union(a.geom, ST_Intersection(b.geom,
		ST_Buffer(ST_LineInterpolatePoint(ST_LineMerge(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))), 0.5), 0.0004)))`, a, nb)
	orig, err := s.grids.Grid(ctx, "tracts", a)
	if err != nil {
		t.Fatal(err)
	}
	move := func(g *geojson.Geometry) {
		res, err := s.grids.ApplyChangeset(ctx, "tracts", &gridmap.Changeset{Reason: "tiles", Operations: []gridmap.Operation{{Op: gridmap.OpMoveEdge, Code: a, Geometry: g}}})
		if err != nil || !res.Applied {
			t.Fatalf("move_edge: %v %+v", err, res)
		}
	}
	move(grown)
	defer move(geojson.NewGeometry(orig.Geometry))

	for _, tile := range covering {
		ls, out := render(t, ts, "tracts", tile)
		if out.Version == before[tile] {
			t.Errorf("tile %s over the edit kept its version %s", tile, out.Version)
		}
		if tile.Z >= 12 && featureGeometry(layerNamed(ls, "grids"), a) == shape[tile] {
			t.Errorf("tile %s still draws tract %s as before the edit", tile, a)
		}
	}
	for _, tile := range far {
		if _, out := render(t, ts, "tracts", tile); out.Version != before[tile] {
			t.Errorf("tile %s far from the edit changed version %s -> %s", tile, before[tile], out.Version)
		}
	}
}

func featureGeometry(l *mvt.Layer, code string) string {
	if l == nil {
		return ""
	}
	for _, f := range l.Features {
		if f.Properties["code"] == code {
			b, _ := wkb.Marshal(f.Geometry)
			return string(b)
		}
	}
	return ""
}

type invalidations struct {
	ch chan string
}

func (i *invalidations) Invalidate(tileset string, boxes [][4]float64) int {
	i.ch <- fmt.Sprintf("%s %v", tileset, boxes)
	return 0
}
func (i *invalidations) InvalidateAll() { i.ch <- "all" }

func TestTileCacheFollowsChanges(t *testing.T) {
	s := tractLayer(t)
	db := pgtest.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Two instances, each with its own store, cache and LISTEN.
	cache, other := tiles.NewCache(1<<24), tiles.NewCache(1<<24)
	for _, c := range []*tiles.Cache{cache, other} {
		ready := make(chan struct{})
		go postgres.NewTileStore(db).FollowTileChanges(ctx, c, func() { close(ready) })
		<-ready
	}
	a, nb, _ := neighbours(t, "3", 2)
	var lon, lat float64
	if err := db.Pool.QueryRow(ctx, `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids WHERE layer_id = 'tracts' AND code = $1) x`, a).Scan(&lon, &lat); err != nil {
		t.Fatal(err)
	}
	x, y, _, _ := tiles.Covering(14, [4]float64{lon, lat, lon, lat}, 0)
	near := tiles.Key{Tileset: "tracts", Tile: tiles.Tile{Z: 14, X: x, Y: y}}
	farX, farY, _, _ := tiles.Covering(14, [4]float64{-74.2, 40.55, -74.2, 40.55}, 0)
	far := tiles.Key{Tileset: "tracts", Tile: tiles.Tile{Z: 14, X: farX, Y: farY}}
	for _, k := range []tiles.Key{near, far} {
		for _, c := range []*tiles.Cache{cache, other} {
			c.Put(k, &tiles.Entry{Gzip: []byte{1}, ETag: `"t"`}, c.Mark())
		}
	}
	grown := geometryOf(t, `ST_Union(a.geom, ST_Intersection(b.geom,
		ST_Buffer(ST_LineInterpolatePoint(ST_LineMerge(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))), 0.5), 0.0003)))`, a, nb)
	orig, _ := s.grids.Grid(ctx, "tracts", a)
	res, err := s.grids.ApplyChangeset(ctx, "tracts", &gridmap.Changeset{Operations: []gridmap.Operation{{Op: gridmap.OpMoveEdge, Code: a, Geometry: grown}}})
	if err != nil || !res.Applied {
		t.Fatalf("move_edge: %v %+v", err, res)
	}
	defer s.grids.ApplyChangeset(context.Background(), "tracts", &gridmap.Changeset{Operations: []gridmap.Operation{{Op: gridmap.OpMoveEdge, Code: a, Geometry: geojson.NewGeometry(orig.Geometry)}}})
	for i, c := range []*tiles.Cache{cache, other} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, ok := c.Get(near); !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %d: the tile over the edit is still cached 10 s after the commit", i+1)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, ok := c.Get(far); !ok {
			t.Errorf("instance %d: a tile far from the edit was dropped", i+1)
		}
	}
}

// TestWholeLayerShapesAreThoseOfEdits checks the two ways the grids to
// generalise with are found: a whole layer's tile shapes (the neighbours
// of each chunk found among the boxes listed with the layer) are those
// edits make (the neighbours asked of the database). NYC's boroughs and
// tracts, two levels and many chunks, are imported, and their shapes then
// refreshed as an edit of every grid over the whole city: nothing changes.
func TestWholeLayerShapesAreThoseOfEdits(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Shared(t)
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	for _, load := range []struct {
		file   string
		fields geo.FieldMap
		levels []string
	}{
		{"L1_boroughs.geojson", geo.FieldMap{Code: "borocode", Name: "boroname", DefaultLevel: "borough"}, []string{"borough", "tract"}},
		{"L3_tracts2010.geojson", geo.FieldMap{Code: "boroct2010", Name: "ctlabel", Parent: "borocode", DefaultLevel: "tract"}, nil},
	} {
		f, err := os.Open(filepath.Join(pgtest.NYCDir(t), load.file))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.grids.Import(ctx, "whole_tracts", geo.NewFeatureReader(f, load.fields), gridmap.ImportOptions{MakeValid: true, Levels: load.levels})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	var codes []string
	var shapes, levels, vertices int
	var area []float64
	if err := db.Pool.QueryRow(ctx, `SELECT array_agg(code), count(DISTINCT level), sum(ST_NPoints(geom)),
		(SELECT count(*) FROM grid_shapes WHERE layer_id = 'whole_tracts'),
		ARRAY[ST_XMin(ST_Extent(geom)), ST_YMin(ST_Extent(geom)), ST_XMax(ST_Extent(geom)), ST_YMax(ST_Extent(geom))]
		FROM grids WHERE layer_id = 'whole_tracts'`).Scan(&codes, &levels, &vertices, &shapes, &area); err != nil {
		t.Fatal(err)
	}
	if len(codes) < 2000 || shapes < len(codes) || levels != 2 || vertices < 5*postgres.ShapeChunkPoints {
		t.Fatalf("%d grids of %d levels, %d vertices, imported with %d shapes", len(codes), levels, vertices, shapes)
	}
	changed, err := postgres.RefreshShapes(ctx, db, "whole_tracts", codes, area)
	if err != nil {
		t.Fatal(err)
	}
	if changed != nil {
		t.Errorf("the shapes an edit makes differ from the whole layer's within %v", changed)
	}
}

func TestFillTileShapesRestoresMissingShapes(t *testing.T) {
	s := tractLayer(t)
	db := pgtest.Shared(t)
	ctx := context.Background()
	count := func() (shapes, labels int) {
		db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM grid_shapes WHERE layer_id = 'tracts'), (SELECT count(*) FROM grid_labels WHERE layer_id = 'tracts')`).Scan(&shapes, &labels)
		return
	}
	shapes, labels := count()
	var grids int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM grids WHERE layer_id = 'tracts'`).Scan(&grids)
	if labels != grids || shapes < grids {
		t.Fatalf("after import: %d shapes, %d labels for %d grids", shapes, labels, grids)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM grid_shapes WHERE layer_id = 'tracts' AND code LIKE '3%'; DELETE FROM grid_labels WHERE layer_id = 'tracts' AND code LIKE '3%'`); err != nil {
		t.Fatal(err)
	}
	filled, err := s.grids.FillTileShapes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(filled, "tracts") {
		t.Errorf("filled %v", filled)
	}
	if s2, l2 := count(); s2 != shapes || l2 != labels {
		t.Errorf("after filling: %d shapes, %d labels; before %d, %d", s2, l2, shapes, labels)
	}
	if filled, _ := s.grids.FillTileShapes(ctx); slices.Contains(filled, "tracts") {
		t.Error("filled again with nothing missing")
	}
}
