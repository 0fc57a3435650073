package postgres

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/paulmach/orb"
)

// TestNeighboursOfAChunk checks the neighbours a whole layer's tile shapes
// are made with against comparing every two grids: three levels (one of a
// single grid), boxes on a coarse lattice so that many only touch, and
// chunks of every size starting anywhere, across levels too. A level
// listed in two runs is refused.
func TestNeighboursOfAChunk(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	at := func() float64 { return float64(rng.Intn(30)) / 2 }
	type grid struct {
		level string
		b     orb.Bound
	}
	var grids []grid
	for _, l := range []struct {
		level string
		n     int
	}{{"district", 1}, {"grid", 400}, {"street", 60}} {
		for range l.n {
			x, y := at(), at()
			grids = append(grids, grid{l.level, orb.Bound{Min: orb.Point{x, y}, Max: orb.Point{x + float64(rng.Intn(4))/2, y + float64(rng.Intn(4))/2}}})
		}
	}
	n := &neighbours{}
	for i, g := range grids {
		if err := n.add(int64(1000+i), g.level, g.b); err != nil {
			t.Fatal(err)
		}
	}
	n.index()
	for range 300 {
		first := rng.Intn(len(grids))
		last := first + 1 + rng.Intn(min(80, len(grids)-first))
		got := n.of(first, last)
		var want []int64
		for j, o := range grids {
			for i := first; i < last; i++ {
				if grids[i].level == o.level && grids[i].b.Intersects(o.b) {
					want = append(want, int64(1000+j))
					break
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("grids %d to %d: found %v, want %v", first, last, got, want)
		}
	}

	apart := &neighbours{}
	for i, level := range []string{"grid", "street", "grid"} {
		err := apart.add(int64(i), level, orb.Bound{})
		if (err != nil) != (i == 2) {
			t.Fatalf("grid %d of level %s: %v", i, level, err)
		}
	}
}
