package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/paulmach/orb"
)

// TestInnerEdgesInRounds checks the inside edges innerEdges finds against
// a count by coordinates, made in one round and in many (down to a bucket
// a round), on one to five cores: a 40 by 30 block of grids of uneven
// sizes (some cut into pieces), a square given twice (its edges shared in
// the same direction: not inside), corners at -0 beside 0, and a long
// grid across the block, whose edges start in buckets far apart.
func TestInnerEdgesInRounds(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	in := LayerInput{ID: "rounds", Levels: []string{"grid"}}
	xs := []float64{0}
	for i := 1; i <= 40; i++ {
		xs = append(xs, xs[i-1]+0.5+rnd.Float64())
	}
	ys := []float64{math.Copysign(0, -1)}
	for j := 1; j <= 30; j++ {
		ys = append(ys, ys[j-1]+0.5+rnd.Float64())
	}
	for i := range 40 {
		for j := range 30 {
			// Some grids have a point halfway along each side, and
			// their neighbours' edges do not: those edges are not
			// shared.
			ring := orb.Ring{{xs[i], ys[j]}, {xs[i+1], ys[j]}, {xs[i+1], ys[j+1]}, {xs[i], ys[j+1]}, {xs[i], ys[j]}}
			if (i*7+j*3)%11 == 0 {
				ring = orb.Ring{{xs[i], ys[j]}, {(xs[i] + xs[i+1]) / 2, ys[j]}, {xs[i+1], ys[j]}, {xs[i+1], ys[j+1]}, {xs[i], ys[j+1]}, {xs[i], ys[j]}}
			}
			in.Grids = append(in.Grids, GridInput{Code: fmt.Sprintf("g%02d%02d", i, j), Level: "grid", Geometry: orb.MultiPolygon{{ring}}})
		}
	}
	top := ys[30]
	long := orb.Ring{{0, top}}
	for i := 1; i <= 40; i++ {
		long = append(long, orb.Point{xs[i], top}) // shared with the top row
	}
	long = append(long, orb.Point{xs[40], top + 1}, orb.Point{0, top + 1}, orb.Point{0, top})
	in.Grids = append(in.Grids,
		GridInput{Code: "long", Level: "grid", Geometry: orb.MultiPolygon{{long}}},
		GridInput{Code: "twice1", Level: "grid", Geometry: cell(-5, -5, 1)},
		GridInput{Code: "twice2", Level: "grid", Geometry: cell(-5, -5, 1)})
	l, err := BuildLayerIndex(in, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &l.leaves
	st := s.st
	if len(s.pieces) <= len(in.Grids) {
		t.Fatalf("%d pieces of %d grids: none was cut", len(s.pieces), len(in.Grids))
	}

	type key [4]float64
	norm := func(v float64) float64 { return v + 0 } // -0 + 0 is +0
	edge := func(i int32) key {
		a, b := st.at(i), st.at(i+1)
		return key{norm(a[0]), norm(a[1]), norm(b[0]), norm(b[1])}
	}
	runs := map[key]int{}
	var real []int32
	wantEdges := 0
	for _, p := range s.pieces {
		for _, c := range st.chainsOf(p.c0, p.c1) {
			wantEdges += int(c.n)
			for i := c.start; i < c.start+c.n; i++ {
				if st.isReal(i) {
					real = append(real, i)
					runs[edge(i)]++
				}
			}
		}
	}
	want := map[int32]bool{}
	for _, i := range real {
		// An edge of no length (a cut through a corner leaves some)
		// has no other way to run.
		if k := edge(i); k != (key{k[2], k[3], k[0], k[1]}) && runs[key{k[2], k[3], k[0], k[1]}] > 0 {
			want[i] = true
		}
	}
	if len(want) < 2000 {
		t.Fatalf("the count by coordinates finds %d inside edges: the block is not built as meant", len(want))
	}

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, workers := range []int{1, 2, 5} {
		runtime.GOMAXPROCS(workers)
		for _, roundKeys := range []int{1, 97, 1000, len(real)} {
			inner, edges := innerEdges(s, roundKeys)
			if edges != wantEdges {
				t.Errorf("%d cores, rounds of %d: %d edges, want %d", workers, roundKeys, edges, wantEdges)
			}
			got := 0
			for _, i := range real {
				word, bit := bitAt(inner, i)
				if isInner := *word&bit != 0; isInner != want[i] {
					t.Fatalf("%d cores, rounds of %d: edge %v -> %v inside %v, want %v", workers, roundKeys, st.at(i), st.at(i+1), isInner, want[i])
				}
				if *word&bit != 0 {
					got++
				}
			}
			if got != len(want) {
				t.Errorf("%d cores, rounds of %d: %d inside edges, want %d", workers, roundKeys, got, len(want))
			}
		}
	}
}

// TestSplitRange covers [0, n) with contiguous ranges, none empty.
func TestSplitRange(t *testing.T) {
	for n := 0; n < 20; n++ {
		for parts := 1; parts < 6; parts++ {
			next := 0
			for _, r := range splitRange(n, parts) {
				if r[0] != next || (n > 0 && r[1] <= r[0]) {
					t.Fatalf("n %d, %d parts: range %v after %d", n, parts, r, next)
				}
				next = r[1]
			}
			if next != n {
				t.Fatalf("n %d, %d parts: ranges end at %d", n, parts, next)
			}
		}
	}
}
