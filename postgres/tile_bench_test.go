package postgres_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/gridmap/gridmap/tiles"
)

// nycBounds is the box of the New York data.
var nycBounds = [4]float64{-74.2556, 40.4961, -73.7000, 40.9155}

// gzipSize is the size of b compressed as the tile cache stores tiles.
func gzipSize(t testing.TB, b []byte) int { return gzipLevel(b, tiles.GzipLevel) }

type tileSizes struct {
	maxGzip     map[int]int // per zoom, the largest tile
	maxTile     map[int]tiles.Tile
	z10, z10Raw int // all z10 tiles of the city, gzip: as served; ungeneralised with every level
	z10RawSame  int // ungeneralised with the levels drawn at 10
}

// measureTileSizes renders every tile of the city at z8-z11 from the NYC
// borough > NTA > tract layer, and the z10 tiles ungeneralised as well.
func measureTileSizes(t testing.TB) tileSizes {
	db := pgtest.Shared(t)
	pgtest.LoadNYCHierarchy(t, db, "nyc3")
	ts := postgres.NewTileStore(db)
	ctx := context.Background()
	s := tileSizes{maxGzip: map[int]int{}, maxTile: map[int]tiles.Tile{}}
	for z := 8; z <= 11; z++ {
		x0, y0, x1, y1 := tiles.Covering(z, nycBounds, 0)
		for x := x0; x <= x1; x++ {
			for y := y0; y <= y1; y++ {
				out, err := ts.RenderTile(ctx, gridmap.TileQuery{Tileset: "nyc3", Z: z, X: x, Y: y})
				if err != nil {
					t.Fatal(err)
				}
				n := gzipSize(t, out.MVT)
				if n > s.maxGzip[z] {
					s.maxGzip[z], s.maxTile[z] = n, tiles.Tile{Z: z, X: x, Y: y}
				}
				if z != 10 {
					continue
				}
				s.z10 += n
				raw, err := ts.RenderUngeneralised(ctx, "nyc3", z, x, y, true)
				if err != nil {
					t.Fatal(err)
				}
				s.z10Raw += gzipSize(t, raw)
				same, err := ts.RenderUngeneralised(ctx, "nyc3", z, x, y, false)
				if err != nil {
					t.Fatal(err)
				}
				s.z10RawSame += gzipSize(t, same)
			}
		}
	}
	return s
}

// TestNYCTileSizes holds the tile sizes to the product's promise: every
// tile of the city at z8-z11 under 200 KB gzip-compressed, and the city at
// z10 at least 5x smaller than the same layer sent ungeneralised (every
// grid, full detail, as tile servers over PostGIS send it).
func TestNYCTileSizes(t *testing.T) {
	s := measureTileSizes(t)
	for z := 8; z <= 11; z++ {
		t.Logf("z%d: largest tile %s %.1f KB gzip", z, s.maxTile[z], float64(s.maxGzip[z])/1024)
		if s.maxGzip[z] >= 200*1024 {
			t.Errorf("z%d: tile %s is %d bytes gzip-compressed; the limit is 200 KB", z, s.maxTile[z], s.maxGzip[z])
		}
	}
	ratio := float64(s.z10Raw) / float64(s.z10)
	t.Logf("z10, the whole city: %.1f KB as served, %.1f KB ungeneralised with every level (%.1fx), %.1f KB ungeneralised with the levels drawn at z10 (%.1fx)",
		float64(s.z10)/1024, float64(s.z10Raw)/1024, ratio, float64(s.z10RawSame)/1024, float64(s.z10RawSame)/float64(s.z10))
	if ratio < 5 {
		t.Errorf("z10 city tiles are only %.1fx smaller than ungeneralised", ratio)
	}
}

// BenchmarkTileSizesNYC reports the sizes of TestNYCTileSizes for make bench.
func BenchmarkTileSizesNYC(b *testing.B) {
	var s tileSizes
	for b.Loop() {
		s = measureTileSizes(b)
	}
	largest := 0
	for _, n := range s.maxGzip {
		largest = max(largest, n)
	}
	b.ReportMetric(float64(largest)/1024, "max_KB_z8-11")
	b.ReportMetric(float64(s.z10)/1024, "z10_KB")
	b.ReportMetric(float64(s.z10Raw)/1024, "z10_raw_KB")
	b.ReportMetric(float64(s.z10RawSame)/1024, "z10_raw_same_levels_KB")
}

// BenchmarkTileRenderZ14 renders z14 tiles across New York straight from
// PostGIS (no cache): one op is one tile.
func BenchmarkTileRenderZ14(b *testing.B) {
	benchTileRender(b, 0, nil)
}

// BenchmarkTileRenderZ14Blocks draws the same tiles from blocks already in
// memory (see postgres.BlockZoom): a cold tile once the map has been over
// its area.
func BenchmarkTileRenderZ14Blocks(b *testing.B) {
	benchTileRender(b, 256<<20, nil)
}

// BenchmarkTileRenderZ14BlocksFirst draws them from blocks read for each
// tile: a tile of an area no one has looked at since the server started.
func BenchmarkTileRenderZ14BlocksFirst(b *testing.B) {
	benchTileRender(b, 256<<20, func(ts *postgres.TileStore) { ts.DropTileBlocks() })
}

func benchTileRender(b *testing.B, blockBytes int64, before func(*postgres.TileStore)) {
	db := pgtest.Shared(b)
	pgtest.LoadNYCHierarchy(b, db, "nyc3")
	ts := postgres.NewTileStore(db)
	ts.KeepTileBlocks(blockBytes)
	ctx := context.Background()
	list := z14BenchTiles()
	var size, gz int
	for _, tl := range list {
		out, err := ts.RenderTile(ctx, gridmap.TileQuery{Tileset: "nyc3", Z: tl.Z, X: tl.X, Y: tl.Y})
		if err != nil {
			b.Fatal(err)
		}
		size += len(out.MVT)
		gz += gzipLevel(out.MVT, tiles.GzipLevel)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if before != nil {
			before(ts)
		}
		tl := list[i%len(list)]
		if _, err := ts.RenderTile(ctx, gridmap.TileQuery{Tileset: "nyc3", Z: tl.Z, X: tl.X, Y: tl.Y}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(size)/float64(len(list)), "B/tile")
	b.ReportMetric(float64(gz)/float64(len(list)), "gzip_B/tile")
}

// tileservStyleSQL is tile $2/$3/$4 of layer $1 as a tile server over
// PostGIS draws a table of grids (pg_tileserv's query: one ST_AsMVT over
// ST_TileEnvelope, the geometry projected whole, no cache): the grids of
// the levels $5 with their code, name, level and parent, a buffer as ours.
const tileservStyleSQL = `
SELECT ST_AsMVT(mvtgeom, 'grids', 4096, 'geom') FROM (
	SELECT ST_AsMVTGeom(ST_Transform(t.geom, 3857), bounds.geom_clip, 4096, 64) AS geom,
	       t.code, t.name, t.level, t.parent_code AS parent
	FROM grid_versions t, (SELECT ST_TileEnvelope($2, $3, $4) AS geom_clip,
	                              ST_Transform(ST_TileEnvelope($2, $3, $4, margin => 64.0 / 4096), 4326) AS geom_query) bounds
	WHERE t.layer_id = $1 AND t.valid_to IS NULL AND t.level = ANY($5) AND ST_Intersects(t.geom, bounds.geom_query)
	LIMIT 10000
) mvtgeom`

// BenchmarkTileservStyleZ14 renders the same z14 tiles with
// tileservStyleSQL, the baseline of the tiles above; its sizes are
// gzip-compressed at the default level.
func BenchmarkTileservStyleZ14(b *testing.B) {
	db := pgtest.Shared(b)
	pgtest.LoadNYCHierarchy(b, db, "nyc3")
	ctx := context.Background()
	l, err := postgres.NewLayerStore(db).Layer(ctx, "nyc3")
	if err != nil {
		b.Fatal(err)
	}
	levels := l.LevelsAt(14)
	list := z14BenchTiles()
	render := func(tl tiles.Tile) []byte {
		var out []byte
		if err := db.Pool.QueryRow(ctx, tileservStyleSQL, "nyc3", tl.Z, tl.X, tl.Y, levels).Scan(&out); err != nil {
			b.Fatal(err)
		}
		return out
	}
	var size, gz int
	for _, tl := range list {
		out := render(tl)
		size += len(out)
		gz += gzipLevel(out, gzip.DefaultCompression)
	}
	i := 0
	for b.Loop() {
		render(list[i%len(list)])
		i++
	}
	b.ReportMetric(float64(size)/float64(len(list)), "B/tile")
	b.ReportMetric(float64(gz)/float64(len(list)), "gzip_B/tile")
}

func gzipLevel(b []byte, level int) int {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, level)
	zw.Write(b)
	zw.Close()
	return buf.Len()
}

// z14BenchTiles lists the 96 z14 tiles over lower and midtown Manhattan
// and northern Brooklyn.
func z14BenchTiles() []tiles.Tile {
	x0, y0, x1, y1 := tiles.Covering(14, [4]float64{-74.03, 40.62, -73.88, 40.80}, 0)
	var out []tiles.Tile
	for x := x0; x <= x1; x++ {
		for y := y0; y <= y1; y++ {
			out = append(out, tiles.Tile{Z: 14, X: x, Y: y})
		}
	}
	return out
}

// cityTiles lists the tiles over the middle of New York at zoom z.
func cityTiles(z int) []tiles.Tile {
	x0, y0, x1, y1 := tiles.Covering(z, [4]float64{-74.02, 40.65, -73.9, 40.8}, 0)
	var out []tiles.Tile
	for x := x0; x <= x1; x++ {
		for y := y0; y <= y1; y++ {
			out = append(out, tiles.Tile{Z: z, X: x, Y: y})
		}
	}
	return out
}
