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
	// Read again into its own arrays, a geometry allocates nothing.
	again, _ := wkb.Marshal(geoms[1])
	if allocs := testing.AllocsPerRun(100, func() { mp, _ = PolygonsFromWKB(again, mp) }); allocs != 0 {
		t.Errorf("%v allocations reading a multipolygon into its own arrays", allocs)
	}
	// Empty forms read as empty, however PostGIS writes them.
	for _, g := range []orb.Geometry{orb.Polygon{}, orb.Polygon{orb.Ring{}}, orb.MultiPolygon{orb.Polygon{}}} {
		b, _ := wkb.Marshal(g)
		got, err := PolygonsFromWKB(b, mp)
		if err != nil {
			t.Errorf("%v: %v", g, err)
		}
		for _, p := range got {
			for _, r := range p {
				if len(r) > 0 {
					t.Errorf("%v read as %v", g, got)
				}
			}
		}
	}
	// A big-endian multipolygon may hold little-endian polygons.
	le, _ := wkb.Marshal(orb.Polygon{square(7, 7, 1)}, binary.LittleEndian)
	mixed := append([]byte{0, 0, 0, 0, 6, 0, 0, 0, 1}, le...)
	if got, err := PolygonsFromWKB(mixed, mp); err != nil || !reflect.DeepEqual(got, orb.MultiPolygon{{square(7, 7, 1)}}) {
		t.Errorf("mixed byte orders: %v, %v", got, err)
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
		{"rings past the bytes", []byte{1, 3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, "cut short"},
		{"points past the bytes", []byte{1, 3, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, "cut short"},
		{"no byte order", append([]byte{2}, whole[1:]...), "byte order"},
		{"a Z polygon", append([]byte{1, 0xeb, 3, 0, 0}, whole[5:]...), "only 2D"},
		{"an SRID", append([]byte{1, 3, 0, 0, 0x20}, whole[5:]...), "only 2D"},
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
