package geo

import (
	"math"
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

// TestOutwardHoldsTheBox: a box rounded outwards to single precision holds
// the box it was made from, and is the least such: one step of a float32
// inwards on any side would cut the box. Coordinates of the Earth, of a
// projected system, exact float32 values, values between two of them by
// a hair, zeros of either sign, the smallest and beyond the largest.
func TestOutwardHoldsTheBox(t *testing.T) {
	rnd := rand.New(rand.NewSource(21))
	values := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 120.0733836, 30.1611512, -73.9712488, 40.7, 1e-30, -1e-30, 2.5e6,
		1e-45, -1e-45, 1e-39, 1e39, -1e39, math.MaxFloat32, -math.MaxFloat32, math.Nextafter(math.MaxFloat32, math.Inf(1))}
	for range 20000 {
		values = append(values, (rnd.Float64()-0.5)*360, (rnd.Float64()-0.5)*1e7)
		f := float32((rnd.Float64() - 0.5) * 360)
		values = append(values, float64(f), math.Nextafter(float64(f), math.Inf(1)), math.Nextafter(float64(f), math.Inf(-1)))
	}
	for i := 0; i+1 < len(values); i++ {
		j := (i + 7) % (len(values) - 1) // y from elsewhere in the list than x
		b := box{math.Min(values[i], values[i+1]), math.Min(values[j], values[j+1]), math.Max(values[i], values[i+1]), math.Max(values[j], values[j+1])}
		o := outward(b)
		w := o.wide()
		if !(w.minX <= b.minX && w.minY <= b.minY && w.maxX >= b.maxX && w.maxY >= b.maxY) {
			t.Fatalf("%+v rounded outwards to %+v, which does not hold it", b, o)
		}
		in := [4]float32{math.Nextafter32(o.minX, float32(math.Inf(1))), math.Nextafter32(o.minY, float32(math.Inf(1))),
			math.Nextafter32(o.maxX, float32(math.Inf(-1))), math.Nextafter32(o.maxY, float32(math.Inf(-1)))}
		// A side at the end of single precision has no step beyond it.
		if (float64(in[0]) <= b.minX && !math.IsInf(float64(o.minX), 0)) || (float64(in[1]) <= b.minY && !math.IsInf(float64(o.minY), 0)) ||
			(float64(in[2]) >= b.maxX && !math.IsInf(float64(o.maxX), 0)) || (float64(in[3]) >= b.maxY && !math.IsInf(float64(o.maxY), 0)) {
			t.Fatalf("%+v rounded outwards to %+v, wider than it needs", b, o)
		}
		if !o.containsXY(b.minX, b.minY) || !o.containsXY(b.maxX, b.maxY) || !o.intersects(b) {
			t.Fatalf("%+v: its outward box %+v does not hold its corners", b, o)
		}
	}
}
