package geo

import (
	"reflect"
	"testing"

	"github.com/paulmach/orb"
)

// TestSubdivideLeavesItsInputAlone: subdividePolygon reads its rings
// where they lie and changes none of them, not even past the end of a ring
// left open that it closes.
func TestSubdivideLeavesItsInputAlone(t *testing.T) {
	var wide orb.Ring
	for i := range 1000 {
		wide = append(wide, orb.Point{float64(i) * 0.001, float64(i%5) * 0.001})
	}
	wide = append(wide, orb.Point{1, 1}, orb.Point{0, 1}, wide[0])
	open := make(orb.Ring, 4, 8) // a square left open, with room after it
	copy(open, orb.Ring{{2, 2}, {3, 2}, {3, 3}, {2, 3}})
	spare := open[:8]
	spare[4] = orb.Point{-7, -7}
	mp := orb.MultiPolygon{{wide}, {open}}
	before := orb.Clone(mp)
	pieces := subdividePolygon(mp, 64)
	if len(pieces) < 16 {
		t.Fatalf("%d pieces: the wide ring was not cut", len(pieces))
	}
	if !reflect.DeepEqual(mp, before) || spare[4] != (orb.Point{-7, -7}) {
		t.Fatalf("the input changed: %v", mp[1])
	}
	closed := false
	for _, p := range pieces {
		for _, r := range p.rings {
			if len(r.pts) == 5 && r.pts[0] == (orb.Point{2, 2}) && r.pts[4] == r.pts[0] && len(r.real) == 4 && r.real[3] {
				closed = true
			}
		}
	}
	if !closed {
		t.Fatal("the open square is not in a piece, closed, its edges real")
	}
}
