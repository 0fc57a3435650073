package tiles

import (
	"fmt"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/project"
)

func entry(n int) *Entry { return &Entry{Gzip: make([]byte, n), ETag: `"x"`} }

// Tiles around lower Manhattan at zoom 14, and one in Brooklyn far from it.
var (
	wallStreet = Key{Tileset: "nyc", Tile: Tile{14, 4823, 6160}}
	nextDoor   = Key{Tileset: "nyc", Tile: Tile{14, 4824, 6160}}
	brooklyn   = Key{Tileset: "nyc", Tile: Tile{14, 4830, 6170}}
	wallBox    = [4]float64{-74.0095, 40.7055, -74.0090, 40.7060}
)

func TestCacheInvalidatesOnlyTouchedTiles(t *testing.T) {
	c := NewCache(1 << 20)
	reports := Key{Tileset: "reports", Tile: wallStreet.Tile}
	filtered := Key{Tileset: "nyc", Tile: wallStreet.Tile, Filter: "status=open"}
	for _, k := range []Key{wallStreet, nextDoor, brooklyn, reports, filtered} {
		if !c.Put(k, entry(100), c.Mark()) {
			t.Fatalf("%v not stored", k)
		}
	}
	if n := c.Invalidate("nyc", [][4]float64{wallBox}); n != 2 {
		t.Errorf("dropped %d tiles, want the two over Wall Street (with and without filter)", n)
	}
	for k, want := range map[Key]bool{wallStreet: false, filtered: false, nextDoor: true, brooklyn: true, reports: true} {
		if _, ok := c.Get(k); ok != want {
			t.Errorf("%v cached = %v, want %v", k, ok, want)
		}
	}
	if n := c.Invalidate("nyc", nil); n != 2 {
		t.Errorf("dropping the tileset dropped %d, want 2", n)
	}
	if _, ok := c.Get(reports); !ok {
		t.Error("dropping one tileset dropped another's tiles")
	}
}

func TestCacheEdgeOfTileCountsWithBuffer(t *testing.T) {
	c := NewCache(1 << 20)
	c.Put(nextDoor, entry(10), c.Mark())
	// A change just west of the tile's west edge: inside the tile's buffer.
	b := nextDoor.Tile.Bound()
	lo := project.Mercator.ToWGS84(orb.Point{b[0] - 2, b[1] + 1000})
	edge := [4]float64{lo[0], lo[1], lo[0], lo[1]}
	if n := c.Invalidate("nyc", [][4]float64{edge}); n != 1 {
		t.Errorf("a change in the buffer left the tile cached (dropped %d)", n)
	}
}

func TestCacheRefusesARenderAnEditOvertook(t *testing.T) {
	c := NewCache(1 << 20)
	mark := c.Mark()
	c.Invalidate("nyc", [][4]float64{wallBox}) // committed while rendering
	if c.Put(wallStreet, entry(10), mark) {
		t.Error("a tile rendered before an edit that touches it was stored")
	}
	if !c.Put(brooklyn, entry(10), mark) {
		t.Error("a tile the edit did not touch was refused")
	}
	c.InvalidateAll()
	if c.Put(brooklyn, entry(10), mark) {
		t.Error("stored across a drop of everything")
	}
}

func TestCacheStaysWithinItsBytes(t *testing.T) {
	c := NewCache(100 * 1000)
	for i := range 1000 {
		c.Put(Key{Tileset: "nyc", Tile: Tile{16, i, 0}}, entry(800), c.Mark())
	}
	n, size := c.Stats()
	if size > 100*1000 {
		t.Errorf("cache holds %d bytes, bound is 100000", size)
	}
	if n == 0 || n == 1000 {
		t.Errorf("cache holds %d tiles", n)
	}
	// The most recent survive, the oldest went first.
	if _, ok := c.Get(Key{Tileset: "nyc", Tile: Tile{16, 999, 0}}); !ok {
		t.Error("the newest tile was dropped")
	}
	if _, ok := c.Get(Key{Tileset: "nyc", Tile: Tile{16, 0, 0}}); ok {
		t.Error("the oldest tile is still there")
	}
	if c.Put(Key{Tileset: "nyc", Tile: Tile{16, 0, 1}}, entry(50*1000), c.Mark()) {
		t.Error("one tile of half the cache was stored")
	}
}

func BenchmarkCacheGet(b *testing.B) {
	c := NewCache(1 << 30)
	keys := make([]Key, 10000)
	for i := range keys {
		keys[i] = Key{Tileset: "nyc", Tile: Tile{14, 4800 + i%100, 6100 + i/100}}
		c.Put(keys[i], entry(2000), c.Mark())
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := c.Get(keys[i%len(keys)]); !ok {
			b.Fatal(fmt.Sprint("missing ", keys[i%len(keys)]))
		}
	}
}

func TestCacheRefusesARenderThatOutlivedTheLog(t *testing.T) {
	c := NewCache(1 << 20)
	mark := c.Mark()
	for range 3 * recentInvalidations {
		c.Invalidate("elsewhere", [][4]float64{{0, 0, 0, 0}})
	}
	if c.Put(brooklyn, entry(10), mark) {
		t.Error("stored a render older than every invalidation the cache remembers")
	}
	if !c.Put(brooklyn, entry(10), c.Mark()) {
		t.Error("a fresh render was refused")
	}
}
