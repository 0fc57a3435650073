package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/gridmap/gridmap/tiles"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/maptile"
)

// hotReport is a report the hotspot tests file, as they know it.
type hotReport struct {
	lon, lat   float64
	category   string
	status     string
	scope      string // the one grid of layer hotscope it belongs to
	reportedAt time.Time
	urgent     bool
}

// hotBase is the reported_at of the newest hotspot test report; each next
// one was reported an hour before.
var hotBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fileHotReports files n reports with SQL over a box near 96.3 E 33.3 N (96.30-96.40 E, 33.29-33.35 N),
// where no other test puts anything (it spans two z12 tiles east-west):
// categories hot, its child hot.sub and hotother; statuses in turn; a
// third in grid HA of layer hotscope and the rest in HB.
func fileHotReports(t *testing.T, n int) []hotReport {
	t.Helper()
	db := pgtest.Shared(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO layers (id, name, kind, levels) VALUES ('hotscope', 'hotscope', 'comprehensive', '{district}') ON CONFLICT DO NOTHING;
		INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('hot', 'hot', 1, 'calendar_days'), ('hotother', 'hotother', 1, 'calendar_days') ON CONFLICT DO NOTHING;
		INSERT INTO categories (code, name, parent_code, limit_value, limit_clock) VALUES ('hot.sub', 'hot.sub', 'hot', 1, 'calendar_days') ON CONFLICT DO NOTHING`); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(16, 16))
	statuses := []string{gridmap.StatusReported, gridmap.StatusDispatched, gridmap.StatusClosed, gridmap.StatusRejected, gridmap.StatusInProgress}
	out := make([]hotReport, n)
	var lons, lats []float64
	var cats, sts, scopes []string
	var ats []time.Time
	var urgent []bool
	for i := range out {
		r := hotReport{lon: 96.30 + rng.Float64()*0.1, lat: 33.29 + rng.Float64()*0.06,
			category: []string{"hot", "hot.sub", "hotother"}[i%3], status: statuses[i%len(statuses)], scope: "HB",
			reportedAt: hotBase.Add(-time.Duration(i) * time.Hour), urgent: i%4 == 0}
		if i%3 == 0 {
			r.scope = "HA"
		}
		out[i] = r
		lons, lats, cats, sts, scopes = append(lons, r.lon), append(lats, r.lat), append(cats, r.category), append(sts, r.status), append(scopes, r.scope)
		ats, urgent = append(ats, r.reportedAt), append(urgent, r.urgent)
	}
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment, urgent, layer_id, scope_codes)
		SELECT 'hotspot-' || i, '\x00', cat, ST_SetSRID(ST_MakePoint(lon, lat), 4326), 'wgs84', at, st, 'grid', at + interval '1 day', '{}', urgent,
		       'hotscope', ARRAY[scope]
		FROM unnest($1::float8[], $2::float8[], $3::text[], $4::text[], $5::timestamptz[], $6::bool[], $7::text[])
		     WITH ORDINALITY AS x(lon, lat, cat, st, at, urgent, scope, i)`, lons, lats, cats, sts, ats, urgent, scopes); err != nil {
		t.Fatal(err)
	}
	return out
}

// binOf is the bin of a point at zoom z, worked out apart from the SQL:
// the tile at zoom z+5 holding its Web Mercator position.
func binOf(z int, lon, lat float64) (bx, by int) {
	p := geo.ToWebMercator(orb.Point{lon, lat})
	n := float64(int(1) << (z + postgres.HotspotBinShift))
	return int(math.Floor((p[0] + geo.MercatorHalfWorld) / (2 * geo.MercatorHalfWorld) * n)),
		int(math.Floor((geo.MercatorHalfWorld - p[1]) / (2 * geo.MercatorHalfWorld) * n))
}

// expectedBins counts the reports that pass keep by bin of tile tl,
// keyed by the bin's column and row inside the tile.
func expectedBins(tl tiles.Tile, reports []hotReport, keep func(hotReport) bool) map[[2]int]int {
	out := map[[2]int]int{}
	for _, r := range reports {
		bx, by := binOf(tl.Z, r.lon, r.lat)
		if bx>>postgres.HotspotBinShift != tl.X || by>>postgres.HotspotBinShift != tl.Y || !keep(r) {
			continue
		}
		out[[2]int{bx - tl.X*postgres.HotspotBins, by - tl.Y*postgres.HotspotBins}]++
	}
	return out
}

// hotBins renders a hotspot tile and reads its bins: counts by the bin's
// column and row, checking that every bin is a square of the bin's size
// at its place in the tile's grid.
func hotBins(t *testing.T, ts *postgres.TileStore, q gridmap.TileQuery) (map[[2]int]int, *gridmap.RenderedTile) {
	t.Helper()
	out, err := ts.RenderTile(context.Background(), q)
	if err != nil {
		t.Fatalf("hotspot tile %d/%d/%d: %v", q.Z, q.X, q.Y, err)
	}
	ls, err := mvt.Unmarshal(out.MVT)
	if err != nil {
		t.Fatalf("hotspot tile does not decode: %v", err)
	}
	bins := map[[2]int]int{}
	const side = tiles.Extent / postgres.HotspotBins
	for _, l := range ls {
		if l.Name != gridmap.TileLayerHotspots {
			t.Errorf("layer %q in a hotspot tile", l.Name)
			continue
		}
		for _, f := range l.Features {
			poly, ok := f.Geometry.(orb.Polygon)
			b := f.Geometry.Bound()
			if !ok || len(poly) != 1 || len(poly[0]) != 5 || b.Max[0]-b.Min[0] != side || b.Max[1]-b.Min[1] != side ||
				math.Mod(b.Min[0], side) != 0 || math.Mod(b.Min[1], side) != 0 {
				t.Errorf("a bin that is not a %d-unit square of the tile's grid: %v", side, f.Geometry)
				continue
			}
			key := [2]int{int(b.Min[0]) / side, int(b.Min[1]) / side}
			count, _ := f.Properties["count"].(float64)
			if count < 1 || bins[key] != 0 {
				t.Errorf("bin %v: count %v (twice: %v)", key, f.Properties["count"], bins[key] != 0)
			}
			bins[key] = int(count)
		}
	}
	return bins, out
}

func sumBins(bins map[[2]int]int) int {
	n := 0
	for _, c := range bins {
		n += c
	}
	return n
}

func TestHotspotTileCountsEveryReportInItsBin(t *testing.T) {
	reports := fileHotReports(t, 600)
	db := pgtest.Shared(t)
	ts := postgres.NewTileStore(db)
	ctx := context.Background()
	x, y, x1, _ := tiles.Covering(12, [4]float64{96.30, 33.29, 96.40, 33.35}, 0)
	if x1 == x {
		t.Fatal("the reports lie in one z12 tile; the test wants them across two")
	}
	for _, tl := range []tiles.Tile{{Z: 12, X: x, Y: y}, {Z: 12, X: x1, Y: y}} {
		t.Run(fmt.Sprintf("bins add up to the reports in tile %s", tl), func(t *testing.T) {
			bins, _ := hotBins(t, ts, gridmap.TileQuery{Tileset: gridmap.HotspotsTileset, Z: tl.Z, X: tl.X, Y: tl.Y})
			var inTile int
			if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM reports WHERE ST_Intersects(ST_Transform(location, 3857), ST_TileEnvelope($1, $2, $3))`,
				tl.Z, tl.X, tl.Y).Scan(&inTile); err != nil {
				t.Fatal(err)
			}
			if sumBins(bins) != inTile || inTile == 0 {
				t.Errorf("bins count %d reports; the tile holds %d", sumBins(bins), inTile)
			}
			if want := expectedBins(tl, reports, func(hotReport) bool { return true }); fmt.Sprint(bins) != fmt.Sprint(want) {
				t.Errorf("bins %v, want %v", bins, want)
			}
		})
	}

	t.Run("bins are 1/32 of a tile at zooms 12, 14 and 16", func(t *testing.T) {
		for _, z := range []int{12, 14, postgres.HotspotMaxZoom} {
			// A point in the middle of the box; at the last zoom, a report's.
			lon, lat := 96.35, 33.33
			if z == postgres.HotspotMaxZoom {
				lon, lat = reports[0].lon, reports[0].lat
			}
			cx, cy, _, _ := tiles.Covering(z, [4]float64{lon, lat, lon, lat}, 0)
			tl := tiles.Tile{Z: z, X: cx, Y: cy}
			out, err := ts.RenderTile(ctx, gridmap.TileQuery{Tileset: gridmap.HotspotsTileset, Z: z, X: cx, Y: cy})
			if err != nil {
				t.Fatal(err)
			}
			ls, err := mvt.Unmarshal(out.MVT)
			if err != nil || len(ls) != 1 || len(ls[0].Features) == 0 {
				t.Fatalf("z%d: %v, %d layers", z, err, len(ls))
			}
			ls.ProjectToWGS84(maptile.New(uint32(tl.X), uint32(tl.Y), maptile.Zoom(tl.Z)))
			want := 2 * geo.MercatorHalfWorld / float64(int(1)<<z) / postgres.HotspotBins
			for _, f := range ls[0].Features {
				b := f.Geometry.Bound()
				lo, hi := geo.ToWebMercator(b.Min), geo.ToWebMercator(b.Max)
				if math.Abs(hi[0]-lo[0]-want) > want/1000 || math.Abs(hi[1]-lo[1]-want) > want/1000 {
					t.Fatalf("z%d: a bin of %.1f x %.1f m, want %.1f m square", z, hi[0]-lo[0], hi[1]-lo[1], want)
				}
			}
			bins, _ := hotBins(t, ts, gridmap.TileQuery{Tileset: gridmap.HotspotsTileset, Z: z, X: cx, Y: cy})
			if want := expectedBins(tl, reports, func(hotReport) bool { return true }); fmt.Sprint(bins) != fmt.Sprint(want) {
				t.Errorf("z%d bins %v, want %v", z, bins, want)
			}
		}
	})

	tl := tiles.Tile{Z: 12, X: x, Y: y}
	since, until := hotBase.Add(-200*time.Hour), hotBase.Add(-100*time.Hour)
	for _, tc := range []struct {
		name string
		q    gridmap.TileQuery
		keep func(hotReport) bool
	}{
		{"a category counts its subcategories", gridmap.TileQuery{Category: "hot"}, func(r hotReport) bool { return r.category != "hotother" }},
		{"a subcategory counts itself only", gridmap.TileQuery{Category: "hot.sub"}, func(r hotReport) bool { return r.category == "hot.sub" }},
		{"since counts reports from then on", gridmap.TileQuery{Since: since}, func(r hotReport) bool { return !r.reportedAt.Before(since) }},
		{"until counts reports before then", gridmap.TileQuery{Until: until}, func(r hotReport) bool { return r.reportedAt.Before(until) }},
		{"since and until make a window", gridmap.TileQuery{Since: since, Until: until, Category: "hot"},
			func(r hotReport) bool {
				return !r.reportedAt.Before(since) && r.reportedAt.Before(until) && r.category != "hotother"
			}},
		{"open leaves out closed and rejected", gridmap.TileQuery{Status: "open"},
			func(r hotReport) bool { return r.status != gridmap.StatusClosed && r.status != gridmap.StatusRejected }},
		{"a status counts that status", gridmap.TileQuery{Status: gridmap.StatusDispatched}, func(r hotReport) bool { return r.status == gridmap.StatusDispatched }},
		{"a scoped caller counts its subtree's reports only", gridmap.TileQuery{Scope: &gridmap.Scope{Layer: "hotscope", Code: "HA"}},
			func(r hotReport) bool { return r.scope == "HA" }},
		{"a scope of another layer counts nothing", gridmap.TileQuery{Scope: &gridmap.Scope{Layer: "nyc", Code: "HA"}}, func(hotReport) bool { return false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Tileset, q.Z, q.X, q.Y = gridmap.HotspotsTileset, tl.Z, tl.X, tl.Y
			bins, _ := hotBins(t, ts, q)
			want := expectedBins(tl, reports, tc.keep)
			if fmt.Sprint(bins) != fmt.Sprint(want) {
				t.Errorf("bins %v, want %v", bins, want)
			}
			all := sumBins(expectedBins(tl, reports, func(hotReport) bool { return true }))
			if n := sumBins(want); tc.name != "a scope of another layer counts nothing" && (n == 0 || n == all) {
				t.Errorf("the case selects %d of %d reports: it tests nothing", n, all)
			}
		})
	}

	t.Run("urgent and overdue are counted per bin", func(t *testing.T) {
		out, err := ts.RenderTile(ctx, gridmap.TileQuery{Tileset: gridmap.HotspotsTileset, Z: tl.Z, X: tl.X, Y: tl.Y})
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := mvt.Unmarshal(out.MVT)
		var urgent, overdue float64
		for _, f := range ls[0].Features {
			urgent += f.Properties["urgent"].(float64)
			overdue += f.Properties["overdue"].(float64)
		}
		var wantUrgent, wantOverdue float64
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE urgent), count(*) FILTER (WHERE status NOT IN ('closed', 'rejected', 'suspended') AND due_at < now())
			FROM reports WHERE ST_Intersects(ST_Transform(location, 3857), ST_TileEnvelope($1, $2, $3))`, tl.Z, tl.X, tl.Y).Scan(&wantUrgent, &wantOverdue); err != nil {
			t.Fatal(err)
		}
		if urgent != wantUrgent || overdue != wantOverdue || urgent == 0 || overdue == 0 {
			t.Errorf("urgent %g, overdue %g; want %g, %g", urgent, overdue, wantUrgent, wantOverdue)
		}
	})

	t.Run("a changed report changes the version of its tile only", func(t *testing.T) {
		q := gridmap.TileQuery{Tileset: gridmap.HotspotsTileset, Z: tl.Z, X: tl.X, Y: tl.Y}
		other := q
		other.X = x1
		_, before := hotBins(t, ts, q)
		_, otherBefore := hotBins(t, ts, other)
		var id int64
		// Urgent or not changes a count; a change of updated_at alone
		// would leave the tile as it was.
		if err := db.Pool.QueryRow(ctx, `UPDATE reports SET urgent = NOT urgent, updated_at = now()
			WHERE id = (SELECT min(id) FROM reports WHERE external_id LIKE 'hotspot-%' AND ST_Intersects(ST_Transform(location, 3857), ST_TileEnvelope($1, $2, $3)))
			RETURNING id`, tl.Z, tl.X, tl.Y).Scan(&id); err != nil {
			t.Fatal(err)
		}
		_, after := hotBins(t, ts, q)
		_, otherAfter := hotBins(t, ts, other)
		if after.Version == before.Version || otherAfter.Version != otherBefore.Version {
			t.Errorf("versions: tile of report %d %s -> %s, the other tile %s -> %s", id, before.Version, after.Version, otherBefore.Version, otherAfter.Version)
		}
	})

	t.Run("zooms past the last have no tiles", func(t *testing.T) {
		for _, z := range []int{postgres.HotspotMaxZoom + 1, 20, gridmap.MaxZoom} {
			cx, cy, _, _ := tiles.Covering(z, [4]float64{96.35, 33.33, 96.35, 33.33}, 0)
			var e *gridmap.Error
			if _, err := ts.RenderTile(ctx, gridmap.TileQuery{Tileset: gridmap.HotspotsTileset, Z: z, X: cx, Y: cy}); !errors.As(err, &e) || e.Code != gridmap.ENOTFOUND {
				t.Errorf("z%d: %v, want ENOTFOUND", z, err)
			}
		}
	})

	t.Run("bad filters are refused", func(t *testing.T) {
		for _, q := range []gridmap.TileQuery{
			{Category: "no-such-category"}, {Category: "hot%"}, {Status: "lost"}, {Since: until, Until: since}, {Since: since, Until: since},
		} {
			q.Tileset, q.Z, q.X, q.Y = gridmap.HotspotsTileset, tl.Z, tl.X, tl.Y
			var e *gridmap.Error
			if _, err := ts.RenderTile(ctx, q); !errors.As(err, &e) || e.Code != gridmap.EINVALID {
				t.Errorf("%+v: %v, want EINVALID", q, err)
			}
		}
	})
}

func TestHotspotTileQueryUsesTheCellIndex(t *testing.T) {
	db := pgtest.Shared(t)
	ctx := context.Background()
	// Enough reports elsewhere that the planner has a choice to get wrong.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('hotplan', 'hotplan', 1, 'calendar_days') ON CONFLICT DO NOTHING;
		INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment)
		SELECT 'hotplan-' || i, '\x00', 'hotplan', ST_SetSRID(ST_MakePoint(96.5 + random() * 0.5, 33.5 + random() * 0.4), 4326), 'wgs84',
		       now(), 'reported', 'grid', now(), '{}' FROM generate_series(1, 20000) i ON CONFLICT DO NOTHING`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE reports`); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	x, y, _, _ := tiles.Covering(12, [4]float64{96.7, 33.7, 96.7, 33.7}, 0)
	lo, hi := postgres.HotspotCellRange(12, x, y)
	tile := fmt.Sprintf("12, %d, %d, ", x, y)
	cells := fmt.Sprintf(", %d, %d, %d", lo, hi, 2*(24-12-postgres.HotspotBinShift))
	const rest = ", '{closed,rejected}', 5, NULL, NULL, '{closed,rejected,suspended}', "
	unscoped := tile + "NULL, false, NULL, NULL::timestamptz" + rest + "NULL" + cells
	checkPlans(t, conn, postgres.TileSQL, []planCase{
		{"hotspots", "hotspots", unscoped, []string{"reports_cell"}, []string{"reports"}},
		{"filtered hotspots", "hotspots", tile + "'{closed,rejected}', true, '{hotplan}', now() - interval '1 day'" + rest + "now()" + cells,
			[]string{"reports_cell"}, []string{"reports"}},
		{"scoped hotspots", "hotspots", tile + "NULL, false, NULL, NULL::timestamptz, '{closed,rejected}', 5, 'hotscope', 'HA', '{closed,rejected,suspended}', NULL" + cells,
			[]string{"reports_(cell|scope|primary)"}, []string{"reports"}},
	})
}
