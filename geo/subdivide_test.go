package geo

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// lShape is a concave parent: a bay cuts into it from the east.
var lShape = orb.MultiPolygon{{{{0, 0}, {10, 0}, {10, 4}, {4, 4}, {4, 6}, {10, 6}, {10, 10}, {0, 10}, {0, 0}}}}

func TestSubdivideTilesTheParent(t *testing.T) {
	tests := []struct {
		name   string
		parent orb.MultiPolygon
		n      int
	}{
		{"square into 7", orb.MultiPolygon{{{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}}}, 7},
		{"concave parent into 12", lShape, 12},
		{"one seed keeps the parent", lShape, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(1, 2))
			s := NewSubdivider()
			cells, err := s.Subdivide(tc.parent, Seeds(tc.parent, tc.n, rnd), rnd)
			if err != nil {
				t.Fatal(err)
			}
			if len(cells) != tc.n {
				t.Fatalf("got %d cells, want %d", len(cells), tc.n)
			}
			c := NewChecker()
			pg, _ := c.toGEOS(tc.parent)
			var sum float64
			for i, cell := range cells {
				if iv := c.Check(cell); iv != nil {
					t.Fatalf("cell %d is invalid: %s", i, iv.Reason)
				}
				a := planar.Area(cell)
				if a <= 0 {
					t.Fatalf("cell %d is empty", i)
				}
				sum += a
				g, _ := c.toGEOS(cell)
				if outside := g.Difference(pg).Area(); outside > 1e-12*planar.Area(tc.parent) {
					t.Errorf("cell %d reaches %g outside the parent", i, outside)
				}
				for j := i + 1; j < len(cells); j++ {
					h, _ := c.toGEOS(cells[j])
					if ov := g.Intersection(h).Area(); ov > 1e-12*planar.Area(tc.parent) {
						t.Errorf("cells %d and %d overlap by %g", i, j, ov)
					}
				}
			}
			if want := planar.Area(tc.parent); math.Abs(sum-want) > 1e-9*want {
				t.Errorf("cells cover %g, parent is %g", sum, want)
			}
		})
	}
}

func TestSubdivideIsDeterministic(t *testing.T) {
	run := func() []orb.MultiPolygon {
		rnd := rand.New(rand.NewPCG(7, 7))
		cells, err := NewSubdivider().Subdivide(lShape, Seeds(lShape, 9, rnd), rnd)
		if err != nil {
			t.Fatal(err)
		}
		return cells
	}
	a, b := run(), run()
	for i := range a {
		if !orb.Equal(a[i], b[i]) {
			t.Fatalf("cell %d differs between two runs with the same seed", i)
		}
	}
}
