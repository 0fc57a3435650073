package geo

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/paulmach/orb"
)

// TestBoxIndexFindsWhatMeets checks a BoxIndex against comparing every
// box: lists of 0, 1, 8, 9 and 5,000 boxes on a coarse lattice, so that
// many only touch (an edge or a corner in common), some are points and
// some repeat; every query box is compared with every indexed one.
func TestBoxIndexFindsWhatMeets(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	at := func() float64 { return float64(rng.Intn(40)) / 4 }
	bound := func() orb.Bound {
		x, y := at(), at()
		return orb.Bound{Min: orb.Point{x, y}, Max: orb.Point{x + float64(rng.Intn(3))/4, y + float64(rng.Intn(3))/4}}
	}
	for _, n := range []int{0, 1, 8, 9, 5000} {
		bounds := make([]orb.Bound, n)
		for i := range bounds {
			bounds[i] = bound()
		}
		x := NewBoxIndex(bounds)
		var got []int32
		touching := 0
		for q := range 500 {
			b := bound()
			if q < len(bounds) {
				b = bounds[q]
			}
			got = x.Search(b, got[:0])
			slices.Sort(got)
			var want []int32
			for i, o := range bounds {
				if o.Intersects(b) {
					want = append(want, int32(i))
					if o.Min[0] == b.Max[0] || o.Max[0] == b.Min[0] || o.Min[1] == b.Max[1] || o.Max[1] == b.Min[1] {
						touching++
					}
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%d boxes, query %v: found %v, want %v", n, b, got, want)
			}
		}
		if n == 5000 && touching < 1000 {
			t.Errorf("only %d of the boxes found touch their query's", touching)
		}
	}
}
