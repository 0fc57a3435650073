package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/paulmach/orb"
)

// TestInnerEdgesInRounds checks the inside edges innerEdges finds against
// a count by coordinates, made in one round, in rounds of a sixteenth, of
// 97 keys and of one bucket each, on one to five cores: a 40 by 30 block
// of grids of uneven sizes (some cut into pieces), a square given twice
// (its edges shared in the same direction: not inside), corners at -0
// beside 0, a long grid across the block, whose edges start in buckets
// far apart, and piles of one square drawn one way and both ways. The
// same block is checked again with one grid drawn far away, which crowds
// the block into a bucket beyond the budget of every round but the one
// round.
func TestInnerEdgesInRounds(t *testing.T) {
	for _, far := range []bool{false, true} {
		checkInnerEdgesInRounds(t, far)
	}
}

func checkInnerEdgesInRounds(t *testing.T, far bool) {
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
	// Piles of one square: eleven drawn one way (no edge inside), and six one
	// way with five the other (every edge inside): groups of one key too
	// many to compare two by two.
	for k := range 11 {
		in.Grids = append(in.Grids, GridInput{Code: fmt.Sprintf("pile%02d", k), Level: "grid", Geometry: cell(-8, -8, 1)})
		back := cell(-8, -3, 1)
		if k >= 6 {
			slices.Reverse(back[0][0])
		}
		in.Grids = append(in.Grids, GridInput{Code: fmt.Sprintf("both%02d", k), Level: "grid", Geometry: back})
	}
	layout := "spread"
	if far {
		layout = "crowded"
		in.Grids = append(in.Grids, GridInput{Code: "far", Level: "grid", Geometry: cell(4000, 3000, 1)})
	}
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
			for i := c.start; i < c.end(); i++ {
				if c.isReal(i - c.start) {
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
		t.Fatalf("%s: the count by coordinates finds %d inside edges: the block is not built as meant", layout, len(want))
	}
	// The layouts are as meant: edges over many buckets, or most in one.
	cellOfPoint := cellKey(s.tree)
	byBucket := map[uint64]int{}
	for _, i := range real {
		a, _, _ := edgeEnds(st.at(i), st.at(i+1))
		byBucket[cellOfPoint(a)>>(edgeCellBits-edgeBucketBits)]++
	}
	most := 0
	for _, n := range byBucket {
		most = max(most, n)
	}
	if crowded := most > len(real)/16; crowded != far || (!far && len(byBucket) < 100) {
		t.Fatalf("%s: %d edges in %d buckets, %d in the fullest", layout, len(real), len(byBucket), most)
	}

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, workers := range []int{1, 2, 5} {
		runtime.GOMAXPROCS(workers)
		for _, budget := range []struct {
			name string
			keys func(int) int
		}{
			{"one round", func(n int) int { return n }},
			{"rounds of a sixteenth", func(n int) int { return n / 16 }},
			{"rounds of 97 keys", func(int) int { return 97 }},
			{"a bucket a round", func(int) int { return 1 }},
		} {
			name := fmt.Sprintf("%s, %d cores, %s", layout, workers, budget.name)
			inner, edges := innerEdges(s, budget.keys)
			if edges != wantEdges {
				t.Errorf("%s: %d edges, want %d", name, edges, wantEdges)
			}
			got := 0
			for _, i := range real {
				word, bit := bitAt(inner, i)
				if isInner := *word&bit != 0; isInner != want[i] {
					t.Fatalf("%s: edge %v -> %v inside %v, want %v", name, st.at(i), st.at(i+1), isInner, want[i])
				}
				if *word&bit != 0 {
					got++
				}
			}
			if got != len(want) {
				t.Errorf("%s: %d inside edges, want %d", name, got, len(want))
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

// TestMarkInnerMatchesPairs: a group of one key is marked exactly as
// comparing every two of its edges would: 20,000 shuffled groups of 1 to
// 40 edges with every edge given the same key (hash collisions), ends from
// 0, -0, 1, -1, 2, +Inf and NaN, edges of no length, and copies of earlier
// edges both ways.
func TestMarkInnerMatchesPairs(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 9))
	vals := []float64{0, math.Copysign(0, -1), 1, -1, math.NaN(), 2, math.Inf(1)}
	pick := func() orb.Point { return orb.Point{vals[rnd.IntN(len(vals))], vals[rnd.IntN(len(vals))]} }
	for trial := range 20000 {
		n := 1 + rnd.IntN(40)
		edges := make([][2]orb.Point, n)
		for i := range edges {
			a, b := pick(), pick()
			switch rnd.IntN(4) {
			case 0:
				b = a
			case 1:
				if i > 0 {
					j := rnd.IntN(i)
					a, b = edges[j][1], edges[j][0]
				}
			case 2:
				if i > 0 {
					j := rnd.IntN(i)
					a, b = edges[j][0], edges[j][1]
				}
			}
			edges[i] = [2]orb.Point{a, b}
		}
		ends := func(i int32) (orb.Point, orb.Point) {
			a, b, _ := edgeEnds(edges[i][0], edges[i][1])
			return a, b
		}
		group := make([]edgeKey, n)
		for i := range group {
			_, _, fwd := edgeEnds(edges[i][0], edges[i][1])
			group[i] = edgeKey{key: 42, i: int32(i), fwd: fwd}
		}
		rnd.Shuffle(n, func(x, y int) { group[x], group[y] = group[y], group[x] })
		got := [][]uint64{make([]uint64, 1)}
		markInner(group, ends, got)
		for x := range n {
			ax, bx, fx := edgeEnds(edges[x][0], edges[x][1])
			want := false
			for y := range n {
				if ay, by, fy := edgeEnds(edges[y][0], edges[y][1]); fx != fy && ax == ay && bx == by {
					want = true
				}
			}
			word, bit := bitAt(got, int32(x))
			if isInner := *word&bit != 0; isInner != want {
				t.Fatalf("group %d of %d edges, edge %v: inside %v, want %v", trial, n, edges[x], isInner, want)
			}
		}
	}
}
