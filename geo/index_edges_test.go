package geo

import (
	"math"
	"testing"

	"github.com/paulmach/orb"
)

// cell is the square at (x, y) of side d, anticlockwise.
func cell(x, y, d float64) orb.MultiPolygon {
	return orb.MultiPolygon{{{{x, y}, {x + d, y}, {x + d, y + d}, {x, y + d}, {x, y}}}}
}

// TestEdgeSetKeepsTheOuterBoundary checks the boundary edges the index
// keeps for the nearest-grid search against a count by coordinates: a
// 3x3 block of grids, one of them cut by a grid whose corner is at -0
// (equal to 0), and a grid given twice over (every edge shared in the
// same direction, so still outer). An edge is inside the coverage exactly
// when another edge runs the other way between the same points.
func TestEdgeSetKeepsTheOuterBoundary(t *testing.T) {
	in := LayerInput{ID: "edges", Levels: []string{"grid"}}
	for i := range 3 {
		for j := range 3 {
			x, y := float64(i)-1, float64(j)-1
			if x == 0 {
				x = math.Copysign(0, -1) // -0: the same point as its neighbour's 0
			}
			in.Grids = append(in.Grids, GridInput{Code: string(rune('a' + 3*i + j)), Level: "grid", Geometry: cell(x, y, 1)})
		}
	}
	in.Grids = append(in.Grids,
		GridInput{Code: "x1", Level: "grid", Geometry: cell(5, 5, 1)},
		GridInput{Code: "x2", Level: "grid", Geometry: cell(5, 5, 1)})
	l, err := BuildLayerIndex(in, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := l.leaves.st
	type key [4]float64
	norm := func(v float64) float64 { return v + 0 } // -0 + 0 is +0
	edge := func(i int32) key {
		a, b := st.at(i), st.at(i+1)
		return key{norm(a[0]), norm(a[1]), norm(b[0]), norm(b[1])}
	}
	// Every edge of every leaf piece, by its position.
	var edges []int32
	real := map[int32]bool{}
	for _, p := range l.leaves.pieces {
		for _, c := range st.chainsOf(p.c0, p.c1) {
			for i := c.start; i < c.end(); i++ {
				edges = append(edges, i)
				real[i] = c.isReal(i - c.start)
			}
		}
	}
	runs := map[key]int{}
	for _, i := range edges {
		if real[i] {
			runs[edge(i)]++
		}
	}
	want := map[int32]bool{}
	for _, i := range edges {
		if !real[i] {
			continue
		}
		if k := edge(i); runs[key{k[2], k[3], k[0], k[1]}] == 0 {
			want[i] = true
		}
	}
	got := map[int32]bool{}
	for _, c := range l.edges.chunks {
		for e := c.start; e < c.start+c.n; e++ {
			got[e] = true
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d outer edges kept, want %d", len(got), len(want))
	}
	for e := range want {
		if !got[e] {
			t.Errorf("outer edge %v -> %v left out", st.at(e), st.at(e+1))
		}
	}
	// 12 edges round the 3x3 block, 8 of the doubled square.
	if len(want) != 20 {
		t.Errorf("the count by coordinates finds %d outer edges, want 20", len(want))
	}
}

// TestPiecesServeOneBuild: pieces cut beforehand go into one index; a
// second build from them is refused, as are pieces cut into another
// layer's store and cuts into a store an index holds.
func TestPiecesServeOneBuild(t *testing.T) {
	st := NewPieceStore()
	pieces, err := st.Cut(cell(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	in := LayerInput{ID: "cut", Levels: []string{"grid"}, Grids: []GridInput{{Code: "a", Level: "grid", Pieces: pieces}}}
	if _, err := BuildLayerIndex(in, 0, nil); err == nil {
		t.Fatal("pieces cut into a store the layer was not given were taken")
	}
	in.Store = st
	l, err := BuildLayerIndex(in, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var h Hit
	if l.Lookup(0.5, 0.5, 0, 0, &h); h.Owner != 0 {
		t.Fatalf("a point inside the cut grid: owner %d", h.Owner)
	}
	if _, err := BuildLayerIndex(in, 0, nil); err == nil {
		t.Fatal("a second build from the same pieces was not refused")
	}
	if _, err := st.Cut(cell(2, 2, 1)); err == nil {
		t.Fatal("a cut into a store an index holds was not refused")
	}
	// A rebuild copying the grid's pieces from l into the store l holds.
	again := LayerInput{ID: "cut", Levels: []string{"grid"}, Store: st,
		Grids: []GridInput{{Code: "a", Level: "grid", VersionID: l.Grids[0].VersionID}}}
	if _, err := BuildLayerIndex(again, 0, l); err == nil {
		t.Fatal("a rebuild copied pieces into a store an index holds")
	}
	if n := st.chainCount(); n != 1 {
		t.Errorf("the held store has %d chains, want its one", n)
	}
}

// TestFailedBuildSpoilsItsStore: a build that fails part way (here a ring
// too long for a slab, left uncut) leaves its store incomplete, so the
// store takes no more pieces and serves no later build.
func TestFailedBuildSpoilsItsStore(t *testing.T) {
	long := make(orb.Ring, slabMax+2)
	for i := range long[:len(long)-1] {
		a := 2 * math.Pi * float64(i) / float64(len(long)-1)
		long[i] = orb.Point{math.Cos(a), math.Sin(a)}
	}
	long[len(long)-1] = long[0]
	st := NewPieceStore()
	in := LayerInput{ID: "long", Levels: []string{"grid"}, Store: st, Grids: []GridInput{
		{Code: "a", Level: "grid", Geometry: cell(5, 5, 1)},
		{Code: "b", Level: "grid", Geometry: orb.MultiPolygon{{long}}},
	}}
	if _, err := BuildLayerIndex(in, len(long)+1, nil); err == nil {
		t.Fatal("a ring longer than a slab was indexed")
	}
	if _, err := st.Cut(cell(0, 0, 1)); err == nil {
		t.Error("a store a failed build wrote to took more pieces")
	}
	in.Grids = in.Grids[:1]
	if _, err := BuildLayerIndex(in, len(long)+1, nil); err == nil {
		t.Error("a store a failed build wrote to served another build")
	}
}
