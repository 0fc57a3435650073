package postgres

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/tiles"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
)

// TestBlockReadOvertakenByADrop: a tile asking for a block while it is
// read waits for that read, unless a change to the block is noticed in
// between; then it reads the block again, and the read the change overtook
// is not kept.
func TestBlockReadOvertakenByADrop(t *testing.T) {
	blocks := newTileBlocks(1 << 20)
	// The block holding lon -73.995, lat 40.705.
	x, y, _, _ := tiles.Covering(BlockZoom, [4]float64{-73.995, 40.705, -73.995, 40.705}, 0)
	k := blockKey{layer: "nyc", x: x, y: y}
	var reads atomic.Int64
	release := make(chan struct{})
	started := make(chan int64, 4)
	load := func(context.Context) (*block, error) {
		n := reads.Add(1)
		started <- n
		<-release
		return &block{key: k, bytes: 100, changes: []blockChange{{version: n}}}, nil
	}
	wait := func() int64 {
		t.Helper()
		select {
		case n := <-started:
			return n
		case <-time.After(10 * time.Second):
			t.Fatal("no read started")
			return 0
		}
	}
	get := func() chan int64 {
		ch := make(chan int64, 1)
		go func() {
			b, err := blocks.get(context.Background(), k, load)
			if err != nil {
				t.Error(err)
			}
			ch <- b.changes[0].version
		}()
		return ch
	}
	first := get()
	if n := wait(); n != 1 {
		t.Fatalf("read %d first", n)
	}
	joiner := get()
	time.Sleep(50 * time.Millisecond)
	// A change of the block's area.
	blocks.drop("nyc", [][4]float64{{-73.996, 40.704, -73.994, 40.706}})
	late := get()
	if n := wait(); n != 2 {
		t.Fatalf("read %d second: the tile after the change waited for the read it overtook", n)
	}
	release <- struct{}{}
	release <- struct{}{}
	if v := <-first; v != 1 {
		t.Errorf("the first tile got read %d", v)
	}
	if v := <-joiner; v != 1 {
		t.Errorf("the tile that came before the change got read %d, want the one it waited for", v)
	}
	if v := <-late; v != 2 {
		t.Errorf("the tile that came after the change got read %d", v)
	}
	if n, _ := blocks.stats(); n != 1 {
		t.Fatalf("%d blocks held, want 1", n)
	}
	b, _ := blocks.get(context.Background(), k, load)
	if b.changes[0].version != 2 {
		t.Errorf("the block held is read %d, want 2 (read 1 predates the change)", b.changes[0].version)
	}
	// A change elsewhere leaves the block.
	blocks.drop("nyc", [][4]float64{{116.3, 39.9, 116.4, 40.0}})
	blocks.drop("other", nil)
	if n, _ := blocks.stats(); n != 1 {
		t.Errorf("a change elsewhere dropped the block")
	}
	blocks.drop("nyc", nil)
	if n, _ := blocks.stats(); n != 0 {
		t.Errorf("a change of the whole layer left the block")
	}
}

// TestBlockReadKeptDespiteDropsElsewhere: changes to other layers, or far
// from the block, while it is read do not stop it being kept.
func TestBlockReadKeptDespiteDropsElsewhere(t *testing.T) {
	blocks := newTileBlocks(1 << 20)
	x, y, _, _ := tiles.Covering(BlockZoom, [4]float64{-73.995, 40.705, -73.995, 40.705}, 0)
	k := blockKey{layer: "nyc", x: x, y: y}
	release := make(chan struct{})
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		blocks.get(context.Background(), k, func(context.Context) (*block, error) {
			close(started)
			<-release
			return &block{key: k, bytes: 100}, nil
		})
	}()
	<-started
	blocks.drop("other", nil)
	blocks.drop("nyc", [][4]float64{{116.3, 39.9, 116.4, 40.0}})
	close(release)
	<-done
	if n, _ := blocks.stats(); n != 1 {
		t.Errorf("%d blocks held after changes elsewhere, want 1", n)
	}
}

// TestBlockTileDepthFromTheCurrentLayer: a block keeps levels, not depths,
// so a tile drawn after the layer gained a coarser level numbers depths by
// the layer as it is, whenever the block was read.
func TestBlockTileDepthFromTheCurrentLayer(t *testing.T) {
	s := &TileStore{blocks: newTileBlocks(1 << 20)}
	tl := tiles.Tile{Z: 14, X: 4823, Y: 6160}
	e := tl.Envelope()
	sq := orb.Ring{{e[0] + 100, e[1] + 100}, {e[2] - 100, e[1] + 100}, {e[2] - 100, e[3] - 100}, {e[0] + 100, e[3] - 100}, {e[0] + 100, e[1] + 100}}
	k := blockKey{layer: "d", x: tl.X >> (tl.Z - BlockZoom), y: tl.Y >> (tl.Z - BlockZoom)}
	g := blockGrid{code: "D1", name: "一区", level: "district", geom: orb.MultiPolygon{{sq}}}
	g.bound = g.geom.Bound()
	if _, err := s.blocks.get(context.Background(), k, func(context.Context) (*block, error) {
		return &block{key: k, grids: []blockGrid{g}, bytes: 100}, nil
	}); err != nil {
		t.Fatal(err)
	}
	// Depth is the level's place among all the layer's levels, drawn at
	// this zoom or not (street is drawn only up to zoom 10).
	for _, levels := range [][]string{{"district"}, {"city", "street", "district"}} {
		l := &gridmap.Layer{ID: "d", Levels: levels, Zooms: map[string]gridmap.ZoomRange{}}
		for _, lv := range levels {
			l.Zooms[lv] = gridmap.ZoomRange{0, 16}
		}
		l.Zooms["street"] = gridmap.ZoomRange{0, 10}
		out, err := s.blockTile(context.Background(), l, gridmap.TileQuery{Tileset: "d", Z: tl.Z, X: tl.X, Y: tl.Y})
		if err != nil {
			t.Fatal(err)
		}
		ls, err := mvt.Unmarshal(out.MVT)
		if err != nil || len(ls) == 0 || len(ls[0].Features) != 1 {
			t.Fatalf("levels %v: %v %+v", levels, err, ls)
		}
		if got, want := ls[0].Features[0].Properties["depth"], float64(len(levels)-1); got != want {
			t.Errorf("levels %v: depth %v, want %v", levels, got, want)
		}
	}
}

// TestBlockReadThatPanicsIsReadAgain: a read that panics leaves those
// waiting for it with an error, and the next tile reads the block again.
func TestBlockReadThatPanicsIsReadAgain(t *testing.T) {
	blocks := newTileBlocks(1 << 20)
	k := blockKey{layer: "nyc", x: 1, y: 1}
	func() {
		defer func() { recover() }()
		blocks.get(context.Background(), k, func(context.Context) (*block, error) { panic("a bug") })
	}()
	reads := 0
	b, err := blocks.get(context.Background(), k, func(context.Context) (*block, error) {
		reads++
		return &block{key: k, bytes: 100}, nil
	})
	if err != nil || b == nil || reads != 1 {
		t.Fatalf("after a read that panicked: %v, %d reads", err, reads)
	}
	if n, _ := blocks.stats(); n != 1 {
		t.Errorf("%d blocks held, want 1", n)
	}
}
