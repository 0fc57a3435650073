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
