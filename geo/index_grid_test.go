package geo

import (
	"fmt"
	"slices"
	"testing"
	"unsafe"

	"github.com/gridmap/gridmap"
	"github.com/paulmach/orb"
)

// TestIndexGridIsALine: a grid's record is one cache line, and what it
// keeps apart (its level, its people) reads back as given: levels the
// layer lists and levels it lacks, grids with people and without. A point
// in a gap between children goes to the deepest parent covering it, a
// level the layer lacks counting deepest, then to the lower code.
func TestIndexGridIsALine(t *testing.T) {
	if size := unsafe.Sizeof(IndexGrid{}); size != 64 && unsafe.Sizeof(uintptr(0)) == 8 {
		t.Errorf("IndexGrid is %d bytes, want 64: a lookup reads one cache line a grid", size)
	}
	warden := []gridmap.Person{{Role: "grid worker", Name: "王芳", Phone: "13800000000"}, {Role: "leader", Name: "李强"}}
	in := LayerInput{ID: "t", Levels: []string{"street", "community", "grid"}, Grids: []GridInput{
		{Code: "S", Level: "street", Version: 3, VersionID: 30, Geometry: orb.MultiPolygon{{sq(120, 30, 0.04)}}},
		{Code: "C", Level: "community", Parent: "S", Version: 1, VersionID: 10, Geometry: orb.MultiPolygon{{sq(120, 30, 0.03)}}, People: warden},
		{Code: "X", Level: "annex", Parent: "S", Version: 2, VersionID: 20, Geometry: orb.MultiPolygon{{sq(120.03, 30, 0.01)}}},
		{Code: "W", Level: "annex", Parent: "S", Version: 1, VersionID: 40, Geometry: orb.MultiPolygon{{sq(120.03, 30.01, 0.01)}}},
		{Code: "G", Level: "grid", Parent: "C", Version: 1, VersionID: 50, Geometry: orb.MultiPolygon{{sq(120, 30, 0.01)}}},
		{Code: "M", Level: "micro", Parent: "X", Version: 1, VersionID: 60, Geometry: orb.MultiPolygon{{sq(120.03, 30, 0.005)}}},
	}}
	l, err := BuildLayerIndex(in, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range in.Grids {
		x := &l.Grids[i]
		if x.Code != g.Code || l.Level(int32(i)) != g.Level || int(x.Version) != g.Version || x.VersionID != g.VersionID {
			t.Errorf("grid %s: %s level %q version %d (%d), want level %q version %d (%d)", g.Code, x.Code, l.Level(int32(i)),
				x.Version, x.VersionID, g.Level, g.Version, g.VersionID)
		}
		if got := l.People(int32(i)); !slices.Equal(got, g.People) {
			t.Errorf("grid %s: people %v, want %v", g.Code, got, g.People)
		}
	}
	if n := l.Staffed(); n != 1 {
		t.Errorf("%d grids staffed, want 1", n)
	}
	var h Hit
	for _, c := range []struct {
		x, y  float64
		owner string
	}{
		{120.005, 30.005, "G"},  // a leaf
		{120.02, 30.02, "C"},    // in the community, outside its grid
		{120.035, 30.008, "X"},  // in the annex X, outside its micro-grid: annex counts deeper than street
		{120.035, 30.035, "S"},  // in the street alone
		{120.0325, 30.002, "M"}, // the micro-grid
	} {
		l.Lookup(c.x, c.y, 0, 0, &h)
		if h.Owner < 0 || l.Grids[h.Owner].Code != c.owner {
			owner := "none"
			if h.Owner >= 0 {
				owner = l.Grids[h.Owner].Code
			}
			t.Errorf("(%v, %v) owned by %s, want %s", c.x, c.y, owner, c.owner)
		}
	}
}

// TestChainsListedAsWalked: the chain of every grid, read from its
// parent's list of ancestors, is the walk up its parents: in a layer of
// districts over streets over grids, with a grid nested deeper than
// chains are listed (then walked) and a cycle in the parents (cut).
func TestChainsListedAsWalked(t *testing.T) {
	var grids []GridInput
	add := func(code, parent string, x, y, d float64) {
		grids = append(grids, GridInput{Code: code, Parent: parent, Level: "grid", Version: 1,
			VersionID: int64(len(grids) + 1), Geometry: orb.MultiPolygon{{sq(x, y, d)}}})
	}
	for d := range 3 {
		dc := fmt.Sprintf("D%d", d)
		add(dc, "", float64(d), 0, 1)
		for s := range 4 {
			sc := fmt.Sprintf("%s-S%d", dc, s)
			add(sc, dc, float64(d)+float64(s)*0.25, 0, 0.25)
			for g := range 5 {
				add(fmt.Sprintf("%s-G%d", sc, g), sc, float64(d)+float64(s)*0.25+float64(g)*0.05, 0, 0.05)
			}
		}
	}
	// A tower of nested grids deeper than the lists reach, under D0.
	parent := "D0"
	for i := range maxListedDepth + 8 {
		code := fmt.Sprintf("T%02d", i)
		add(code, parent, 0, 2, 1/float64(i+2))
		parent = code
	}
	// A cycle: A -> B -> C -> A, and E under C.
	add("A", "C", 5, 5, 0.1)
	add("B", "A", 5, 5, 0.1)
	add("C", "B", 5, 5, 0.1)
	add("E", "C", 5, 5, 0.05)
	l, err := BuildLayerIndex(LayerInput{ID: "t", Levels: []string{"grid"}, Grids: grids}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	walked, listed := 0, 0
	for g := range l.Grids {
		var want []int32
		for a := int32(g); a >= 0; a = l.Grids[a].Parent {
			want = append([]int32{a}, want...)
		}
		got := l.Chain(int32(g), []int32{-7})
		if got[0] != -7 || !slices.Equal(got[1:], want) {
			t.Fatalf("chain of %s: %v, want %v after what dst held", l.Grids[g].Code, got, want)
		}
		if l.up[g] < 0 {
			walked++
		} else {
			listed++
		}
	}
	if want := 8; walked != want {
		t.Errorf("%d chains walked, want the %d of the tower past %d ancestors", walked, want, maxListedDepth)
	}
	chainOf := func(code string) []string {
		var out []string
		for _, g := range l.Chain(l.GridByCode(code), nil) {
			out = append(out, l.Grids[g].Code)
		}
		return out
	}
	if got, want := chainOf("D1-S2-G3"), []string{"D1", "D1-S2", "D1-S2-G3"}; !slices.Equal(got, want) {
		t.Errorf("chain of D1-S2-G3: %v, want %v", got, want)
	}
	if got, want := chainOf("E"), []string{"A", "B", "C", "E"}; !slices.Equal(got, want) {
		t.Errorf("chain of E, under a cycle cut at A: %v, want %v", got, want)
	}
	if got := chainOf("T39"); len(got) != maxListedDepth+9 || got[0] != "D0" || got[len(got)-1] != "T39" {
		t.Errorf("chain of the tower's top: %v", got)
	}
	// Grids with children share one list: one entry and their ancestors
	// for each of them listed, nothing for the leaves.
	want, parents := 1, map[int32]bool{}
	for g := range l.Grids {
		if p := l.Grids[g].Parent; p >= 0 && !parents[p] {
			parents[p] = true
			if n := len(l.Chain(p, nil)); n <= maxListedDepth {
				want += 1 + n
			}
		}
	}
	if len(l.ups) != want {
		t.Errorf("the lists hold %d entries for %d grids with children, want %d", len(l.ups), len(parents), want)
	}
}
