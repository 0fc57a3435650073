package geo

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSpaceOrder: every point once, along the Z curve over the points'
// box with the points of one cell in their own order, neighbours after one
// another, and batches with no extent in one or both axes kept in their own
// order.
func TestSpaceOrder(t *testing.T) {
	walk := func(pts [][2]float64) (d float64) {
		for i := 1; i < len(pts); i++ {
			d += math.Hypot(pts[i][0]-pts[i-1][0], pts[i][1]-pts[i-1][1])
		}
		return d
	}
	scattered := scatteredPoints(50_000)
	order, sorted := SpaceOrder(scattered)
	if len(order) != len(scattered) || len(sorted) != len(scattered) {
		t.Fatalf("%d places and %d points for %d points", len(order), len(sorted), len(scattered))
	}
	seen := make([]bool, len(scattered))
	for j, i := range order {
		if seen[i] {
			t.Fatalf("point %d comes twice", i)
		}
		seen[i] = true
		if sorted[j] != scattered[i] {
			t.Fatalf("place %d holds %v, want point %d's %v", j, sorted[j], i, scattered[i])
		}
	}
	// Each point's cell, 65,536 a side over the box, comes no earlier on
	// the Z curve (y's bits above x's) than the one before it, compared by
	// the highest bit in which they differ; in one cell, input order.
	lo, hi := [2]float64{math.Inf(1), math.Inf(1)}, [2]float64{math.Inf(-1), math.Inf(-1)}
	for _, p := range scattered {
		lo = [2]float64{min(lo[0], p[0]), min(lo[1], p[1])}
		hi = [2]float64{max(hi[0], p[0]), max(hi[1], p[1])}
	}
	cell := func(p [2]float64) (c [2]uint32) {
		for a := range c {
			c[a] = uint32(min((p[a]-lo[a])*(1<<16/(hi[a]-lo[a])), 1<<16-1))
		}
		return c
	}
	for j := 1; j < len(sorted); j++ {
		a, b := cell(sorted[j-1]), cell(sorted[j])
		dx, dy := a[0]^b[0], a[1]^b[1]
		switch {
		case dx == 0 && dy == 0:
			if order[j-1] > order[j] {
				t.Fatalf("points %d and %d of one cell in space order %d, %d", order[j-1], order[j], j-1, j)
			}
		case bits.Len32(dy) >= bits.Len32(dx) && a[1] > b[1], bits.Len32(dy) < bits.Len32(dx) && a[0] > b[0]:
			t.Fatalf("cell %v after %v on the Z curve, at places %d and %d", b, a, j, j-1)
		}
	}
	// Walking the points in space order is far shorter than in theirs.
	if in, space := walk(scattered), walk(sorted); space > in/20 {
		t.Errorf("a walk in space order is %.1f degrees, in input order %.1f", space, in)
	}

	line := [][2]float64{{120, 30.3}, {120, 30.1}, {120, 30.2}, {120, 30.1}}
	if order, _ := SpaceOrder(line); !slices.Equal(order, []int32{1, 3, 2, 0}) {
		t.Errorf("points on a meridian in order %v, want [1 3 2 0]", order)
	}
	same := [][2]float64{{120, 30}, {120, 30}, {120, 30}}
	if order, _ := SpaceOrder(same); !slices.Equal(order, []int32{0, 1, 2}) {
		t.Errorf("one place three times in order %v, want [0 1 2]", order)
	}
	if order, sorted := SpaceOrder([][2]float64(nil)); order != nil || sorted != nil {
		t.Errorf("no points: %v %v", order, sorted)
	}
	// An extent too small for a finite scale: kept in order.
	tiny := [][2]float64{{5e-324, 0}, {0, 0}, {5e-324, 0}}
	if order, _ := SpaceOrder(tiny); !slices.Equal(order, []int32{0, 1, 2}) {
		t.Errorf("points a step of double precision apart in order %v, want [0 1 2]", order)
	}
}

// BenchmarkSpaceOrder puts 100,000 points scattered over a city in space
// order, as POST /v1/lookup does a full batch.
func BenchmarkSpaceOrder(b *testing.B) {
	pts := scatteredPoints(100_000)
	b.ReportAllocs()
	for b.Loop() {
		SpaceOrder(pts)
	}
}

// BenchmarkSpaceOrderBySort is its baseline: keys of the same kind (a Z
// order over a fixed box, with each point's position) sorted by the
// standard library's sort.
func BenchmarkSpaceOrderBySort(b *testing.B) {
	pts := scatteredPoints(100_000)
	b.ReportAllocs()
	for b.Loop() {
		keys := make([]uint64, len(pts))
		for i, p := range pts {
			x, y := uint16((p[0]-116)*65535), uint16((p[1]-39)*2*65535)
			keys[i] = zOrder(x, y)<<32 | uint64(i)
		}
		slices.Sort(keys)
	}
}

func scatteredPoints(n int) [][2]float64 {
	rnd := rand.New(rand.NewPCG(5, 6))
	pts := make([][2]float64, n)
	for i := range pts {
		pts[i] = [2]float64{116 + rnd.Float64(), 39 + rnd.Float64()/2}
	}
	return pts
}
