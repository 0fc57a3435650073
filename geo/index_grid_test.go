package geo

import (
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
