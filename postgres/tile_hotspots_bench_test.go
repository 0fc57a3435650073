package postgres_test

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/gridmap/gridmap/tiles"
)

// hotBenchReports is how many reports the hotspot benchmarks file, and
// hotBenchBox where: a city-sized box of about 50 x 55 km, 45 tiles of
// zoom 12, where no test puts anything.
const hotBenchReports, hotBenchBatch = 1_000_000, 100_000

var hotBenchBox = [4]float64{102.5, 24.8, 103.0, 25.3}

// hotBenchData files hotBenchReports reports in the package's database,
// once for every benchmark of the run, straight with SQL: spread evenly
// over hotBenchBox, reported over the last year, in every status, a
// seventh of them urgent. Returns the z12 tiles wholly inside the box.
func hotBenchData(b *testing.B) (*postgres.DB, []tiles.Tile) {
	b.Helper()
	db := pgtest.Shared(b)
	ctx := context.Background()
	var filed bool
	if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM reports WHERE external_id = 'hotbench-' || $1::int)`, hotBenchReports).Scan(&filed); err != nil {
		b.Fatal(err)
	}
	if !filed {
		start := time.Now()
		if _, err := db.Pool.Exec(ctx, `
			INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('hotbench', 'hotbench', 3, 'calendar_days') ON CONFLICT DO NOTHING`); err != nil {
			b.Fatal(err)
		}
		// In batches: one statement of a million rows outlasts the
		// statement timeout.
		for from := 1; from <= hotBenchReports; from += hotBenchBatch {
			if _, err := db.Pool.Exec(ctx, `
			INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment, urgent)
			SELECT 'hotbench-' || i, '\x00', 'hotbench',
			       ST_SetSRID(ST_MakePoint($1::float8 + random() * ($3::float8 - $1), $2::float8 + random() * ($4::float8 - $2)), 4326), 'wgs84',
			       now() - interval '365 days' * random(),
			       (ARRAY['reported','registered','dispatched','in_progress','resolved','verified','closed','closed','rejected'])[1 + i % 9],
			       'grid', now() + interval '20 days' * (random() - 0.5), '{}', i % 7 = 0
			FROM generate_series($5::int, $6::int) i`, hotBenchBox[0], hotBenchBox[1], hotBenchBox[2], hotBenchBox[3],
				from, min(from+hotBenchBatch-1, hotBenchReports)); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE reports`); err != nil {
			b.Fatal(err)
		}
		b.Logf("filed %d reports in %s", hotBenchReports, time.Since(start).Round(time.Second))
	}
	x0, y0, x1, y1 := tiles.Covering(12, hotBenchBox, 0)
	var list []tiles.Tile
	for x := x0 + 1; x < x1; x++ {
		for y := y0 + 1; y < y1; y++ {
			list = append(list, tiles.Tile{Z: 12, X: x, Y: y})
		}
	}
	return db, list
}

// benchTiles runs one op per tile of list, cycling, and reports the
// median time of a tile and the reports a tile holds on average.
func benchTiles(b *testing.B, list []tiles.Tile, tile func(tiles.Tile) int64) {
	b.ReportAllocs()
	var took []time.Duration
	var reports int64
	i := 0
	for b.Loop() {
		start := time.Now()
		reports += tile(list[i%len(list)])
		took = append(took, time.Since(start))
		i++
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median_ms")
	b.ReportMetric(float64(reports)/float64(i), "reports/tile")
}

// BenchmarkHotspotTileZ12 renders hotspot tiles at zoom 12 over a million
// reports, straight from PostGIS (no cache): one op is one tile with its
// MVT and version.
func BenchmarkHotspotTileZ12(b *testing.B) {
	db, list := hotBenchData(b)
	ts := postgres.NewTileStore(db)
	ctx := context.Background()
	benchTiles(b, list, func(tl tiles.Tile) int64 {
		out, err := ts.RenderTile(ctx, gridmap.TileQuery{Tileset: gridmap.HotspotsTileset, Z: tl.Z, X: tl.X, Y: tl.Y})
		if err != nil {
			b.Fatal(err)
		}
		// The version starts "h.<count>.".
		n, err := strconv.ParseInt(strings.Split(out.Version, ".")[1], 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		return n
	})
}

// plainHotspotSQL is the baseline: the same bins ($4 bins across a tile
// $1/$2/$3) counted by a plain GROUP BY over the reports table, as one would
// write it first (project each report with ST_Transform, floor the
// coordinates), with the tile's box on the location index so that it reads
// the same reports; no MVT, no version, no filters.
const plainHotspotSQL = `
SELECT bx, by, count(*) FROM (
	SELECT floor((ST_X(p) - ST_XMin(e)) / (ST_XMax(e) - ST_XMin(e)) * $4) AS bx,
	       floor((ST_YMax(e) - ST_Y(p)) / (ST_YMax(e) - ST_YMin(e)) * $4) AS by
	FROM (SELECT ST_Transform(location, 3857) AS p, ST_TileEnvelope($1, $2, $3) AS e
	      FROM reports WHERE location && ST_Transform(ST_TileEnvelope($1, $2, $3), 4326)) r
) b WHERE bx >= 0 AND bx < $4 AND by >= 0 AND by < $4
GROUP BY bx, by`

// BenchmarkHotspotTileZ12GroupBy counts the same bins of the same tiles
// with plainHotspotSQL.
func BenchmarkHotspotTileZ12GroupBy(b *testing.B) {
	db, list := hotBenchData(b)
	ctx := context.Background()
	benchTiles(b, list, func(tl tiles.Tile) int64 {
		rows, err := db.Pool.Query(ctx, plainHotspotSQL, tl.Z, tl.X, tl.Y, postgres.HotspotBins)
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for rows.Next() {
			var bx, by float64
			var c int64
			if err := rows.Scan(&bx, &by, &c); err != nil {
				b.Fatal(err)
			}
			n += c
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		return n
	})
}
