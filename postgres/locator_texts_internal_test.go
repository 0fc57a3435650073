package postgres

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/gridmap/gridmap/geo"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
)

// TestTextsKeepOneCopy: a text read again is the copy kept the first time;
// past textsKept distinct texts, new ones are still given right but not
// kept, and those kept before stay shared.
func TestTextsKeepOneCopy(t *testing.T) {
	tx := newTexts()
	first := tx.of([]byte("第3网格"))
	again := tx.of([]byte("第3网格"))
	if again != "第3网格" || unsafe.StringData(again) != unsafe.StringData(first) {
		t.Fatalf("the same text read twice gave %q at %p and %p: want one copy", again, unsafe.StringData(first), unsafe.StringData(again))
	}
	if e := tx.of(nil); e != "" {
		t.Fatalf("no bytes gave %q, want the empty text", e)
	}
	for i := len(tx.kept); i < textsKept; i++ {
		tx.of([]byte(fmt.Sprint("name ", i)))
	}
	if len(tx.kept) != textsKept {
		t.Fatalf("%d texts kept, want %d", len(tx.kept), textsKept)
	}
	late := tx.of([]byte("网格 late"))
	lateAgain := tx.of([]byte("网格 late"))
	if late != "网格 late" || lateAgain != "网格 late" {
		t.Fatalf("a text past the cap gave %q and %q", late, lateAgain)
	}
	if len(tx.kept) != textsKept {
		t.Fatalf("%d texts kept past the cap of %d", len(tx.kept), textsKept)
	}
	if s := tx.of([]byte("第3网格")); unsafe.StringData(s) != unsafe.StringData(first) {
		t.Fatal("a text kept before the cap is no longer shared")
	}
}

// TestCutterNamesTheFirstFailure: every grid handed to the cutter comes
// back, and of those that failed the one named is the first by layer and
// grid, whichever worker finished first. Each row's bytes are overwritten
// once handed over, as the driver's are by the next row: the cutter works
// on its own copy.
func TestCutterNamesTheFirstFailure(t *testing.T) {
	square, err := wkb.Marshal(orb.Polygon{{{121, 31}, {121.01, 31}, {121.01, 31.01}, {121, 31.01}, {121, 31}}})
	if err != nil {
		t.Fatal(err)
	}
	bad := map[[2]int]bool{{0, 37}: true, {0, 90}: true, {1, 3}: true}
	for round := range 20 {
		c := newCutter()
		stores := []*geo.PieceStore{geo.NewPieceStore(), geo.NewPieceStore()}
		var row []byte
		for layer := range 2 {
			for grid := range 100 {
				row = append(row[:0], square...)
				if bad[[2]int{layer, grid}] {
					row = append(row[:0], 1, 3, 0, 0)
				}
				c.cut(layer, grid, stores[layer], row)
				for i := range row {
					row[i] = 0xff
				}
			}
		}
		cut, failed := c.wait()
		if len(cut) != 200 {
			t.Fatalf("round %d: %d grids came back of 200", round, len(cut))
		}
		if failed.err == nil || failed.layer != 0 || failed.grid != 37 {
			t.Fatalf("round %d: failure named layer %d grid %d (%v), want layer 0 grid 37", round, failed.layer, failed.grid, failed.err)
		}
		for _, g := range cut {
			if bad[[2]int{int(g.layer), int(g.grid)}] != (g.pieces == nil) {
				t.Fatalf("round %d: layer %d grid %d: pieces %v", round, g.layer, g.grid, g.pieces)
			}
		}
	}
}

// TestCutterCutsEachGridItsOwn: grids of different shapes (a square, a
// square with a hole, two halves, one of 6,000 vertices whose WKB is too
// big to reuse), each handed over in a row buffer overwritten at once, are
// each cut from their own bytes: an index built on the pieces finds every
// grid where it is, and none in a hole.
func TestCutterCutsEachGridItsOwn(t *testing.T) {
	square := func(x, y, s float64) orb.Ring {
		return orb.Ring{{x, y}, {x + s, y}, {x + s, y + s}, {x, y + s}, {x, y}}
	}
	c := newCutter()
	st := geo.NewPieceStore()
	var grids []geo.GridInput
	var row []byte
	corner := func(g int) (float64, float64) { return 100 + float64(g%20)*0.01, 30 + float64(g/20)*0.01 }
	for g := range 300 {
		x, y := corner(g)
		var geom orb.Geometry
		switch {
		case g == 150:
			var r orb.Ring
			for i := range 6000 { // along the square's sides
				f := float64(i) / 6000 * 4
				switch side := int(f); side {
				case 0:
					r = append(r, orb.Point{x + (f-0)*0.01, y})
				case 1:
					r = append(r, orb.Point{x + 0.01, y + (f-1)*0.01})
				case 2:
					r = append(r, orb.Point{x + 0.01 - (f-2)*0.01, y + 0.01})
				default:
					r = append(r, orb.Point{x, y + 0.01 - (f-3)*0.01})
				}
			}
			geom = orb.Polygon{append(r, r[0])}
		case g%3 == 0:
			geom = orb.Polygon{square(x, y, 0.01)}
		case g%3 == 1:
			geom = orb.Polygon{square(x, y, 0.01), square(x+0.004, y+0.004, 0.002)}
		default:
			geom = orb.MultiPolygon{{square(x, y, 0.005)}, {{{x + 0.005, y}, {x + 0.01, y}, {x + 0.01, y + 0.005}, {x + 0.005, y + 0.005}, {x + 0.005, y}}}}
		}
		b, err := wkb.Marshal(geom)
		if err != nil {
			t.Fatal(err)
		}
		if g == 150 && len(b) <= wkbReused {
			t.Fatalf("the big grid's WKB is %d bytes, within the buffers reused", len(b))
		}
		row = append(row[:0], b...)
		c.cut(0, g, st, row)
		for i := range row {
			row[i] = 0xff
		}
		grids = append(grids, geo.GridInput{Code: fmt.Sprintf("G%03d", g), Level: "grid", Version: 1, VersionID: int64(g + 1)})
	}
	cut, failed := c.wait()
	if failed.err != nil {
		t.Fatalf("grid %d: %v", failed.grid, failed.err)
	}
	for _, k := range cut {
		grids[k.grid].Pieces = k.pieces
	}
	li, err := geo.BuildLayerIndex(geo.LayerInput{ID: "cut", Levels: []string{"grid"}, Grids: grids, Store: st}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var h geo.Hit
	for g := range 300 {
		x, y := corner(g)
		if li.Lookup(x+0.002, y+0.002, 0, 0, &h); h.Owner < 0 || li.Grids[h.Owner].Code != grids[g].Code {
			t.Fatalf("grid %d: the point in it found %d", g, h.Owner)
		}
		if g%3 == 1 && g != 150 {
			if li.Lookup(x+0.005, y+0.005, 0, 0, &h); h.Owner >= 0 {
				t.Fatalf("grid %d: the point in its hole found %s", g, li.Grids[h.Owner].Code)
			}
		}
	}
}
