package geo

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
)

// TestPolygonsFromWKB: polygons and multipolygons read into reused arrays
// are the MultiPolygon wkb.Unmarshal and Polygonal make, call after call,
// as the answers grow and shrink; other geometries and broken WKB are
// refused.
func TestPolygonsFromWKB(t *testing.T) {
	square := func(x, y, s float64) orb.Ring {
		return orb.Ring{{x, y}, {x + s, y}, {x + s, y + s}, {x, y + s}, {x, y}}
	}
	big := orb.Ring{}
	for i := range 500 {
		big = append(big, orb.Point{float64(i), float64(i % 7)})
	}
	big = append(big, big[0])
	geoms := []orb.Geometry{
		orb.Polygon{square(121, 31, 0.01)},
		orb.MultiPolygon{{big, square(10, 1, 2)}, {square(0, 0, 1)}, {square(5, 5, 1), square(5.2, 5.2, 0.1), square(5.5, 5.5, 0.1)}},
		orb.Polygon{square(-0.0, 1e-300, 1e300)},
		orb.MultiPolygon{{square(1, 1, 1)}},
		orb.Polygon{big},
		orb.MultiPolygon{},
		orb.MultiPolygon{{square(3, 3, 3), square(3.5, 3.5, 1)}, {big}},
	}
	var mp orb.MultiPolygon
	for round := range 2 {
		for i, g := range geoms {
			for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
				b, err := wkb.Marshal(g, order)
				if err != nil {
					t.Fatal(err)
				}
				want, err := Polygonal(g)
				if err != nil {
					t.Fatal(err)
				}
				if mp, err = PolygonsFromWKB(b, mp); err != nil {
					t.Fatalf("round %d, geometry %d (%v): %v", round, i, order, err)
				}
				if len(want) == 0 && len(mp) == 0 {
					continue
				}
				if !reflect.DeepEqual(mp, want) {
					t.Fatalf("round %d, geometry %d (%v): read %v, want %v", round, i, order, mp, want)
				}
			}
		}
	}
	line, _ := wkb.Marshal(orb.LineString{{0, 0}, {1, 1}})
	inMulti, _ := wkb.Marshal(orb.MultiPolygon{{square(0, 0, 1)}})
	whole, _ := wkb.Marshal(orb.Polygon{square(0, 0, 1)})
	for _, c := range []struct {
		name string
		wkb  []byte
		want string
	}{
		{"a line", line, "geometry is a LineString; a grid needs a Polygon or MultiPolygon"},
		{"nothing", nil, "cut short"},
		{"cut short", whole[:len(whole)-3], "cut short"},
		{"bytes left", append(whole[:len(whole):len(whole)], 0), "bytes left"},
		{"a line in a multipolygon", append(inMulti[:9:9], line...), "holds a LineString"},
	} {
		got, err := PolygonsFromWKB(c.wkb, mp)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
		if len(got) != 0 {
			t.Errorf("%s: %d polygons read", c.name, len(got))
		}
	}
}

func BenchmarkPolygonsFromWKB(b *testing.B) {
	mp := orb.MultiPolygon{{{}}}
	for i := range 40 {
		mp[0][0] = append(mp[0][0], orb.Point{121 + float64(i)*1e-4, 31 + float64(i%3)*1e-4})
	}
	mp[0][0] = append(mp[0][0], mp[0][0][0])
	w, _ := wkb.Marshal(mp)
	b.Run("reused", func(b *testing.B) {
		var dst orb.MultiPolygon
		b.ReportAllocs()
		for b.Loop() {
			dst, _ = PolygonsFromWKB(w, dst)
		}
	})
	b.Run("orb", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g, _ := wkb.Unmarshal(w)
			_, _ = Polygonal(g)
		}
	})
}

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
