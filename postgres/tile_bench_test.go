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

func gzipSize(t testing.TB, b []byte) int {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // as the tile cache stores them
	zw.Write(b)
	zw.Close()
	return buf.Len()
}

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
	db := pgtest.Shared(b)
	pgtest.LoadNYCHierarchy(b, db, "nyc3")
	ts := postgres.NewTileStore(db)
	ctx := context.Background()
	list := cityTiles(14)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tl := list[i%len(list)]
		if _, err := ts.RenderTile(ctx, gridmap.TileQuery{Tileset: "nyc3", Z: tl.Z, X: tl.X, Y: tl.Y}); err != nil {
			b.Fatal(err)
		}
		i++
	}
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
