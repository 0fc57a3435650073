package geo

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/geojson"
)

func TestAppendGeoJSON(t *testing.T) {
	square := orb.Polygon{{{1, 2}, {3, 2}, {3, 4}, {1, 2}}}
	for _, tc := range []struct {
		name string
		geom orb.Geometry
		want string
	}{
		{"a point to nine decimals, trailing zeros dropped", orb.Point{121.4737021234567, 31.23}, `{"type":"Point","coordinates":[121.473702123,31.23]}`},
		{"whole numbers without a point", orb.Point{-74, 40}, `{"type":"Point","coordinates":[-74,40]}`},
		{"minus zero as zero", orb.Point{-0.0000000001, 0}, `{"type":"Point","coordinates":[0,0]}`},
		{"a line", orb.LineString{{0, 0}, {1.5, 2.25}}, `{"type":"LineString","coordinates":[[0,0],[1.5,2.25]]}`},
		{"a polygon with a hole", orb.Polygon{{{0, 0}, {4, 0}, {4, 4}, {0, 0}}, {{1, 1}, {2, 1}, {2, 2}, {1, 1}}},
			`{"type":"Polygon","coordinates":[[[0,0],[4,0],[4,4],[0,0]],[[1,1],[2,1],[2,2],[1,1]]]}`},
		{"a multipolygon", orb.MultiPolygon{square, square}, `{"type":"MultiPolygon","coordinates":[[[[1,2],[3,2],[3,4],[1,2]]],[[[1,2],[3,2],[3,4],[1,2]]]]}`},
		{"a multipoint", orb.MultiPoint{{1, 2}, {3, 4}}, `{"type":"MultiPoint","coordinates":[[1,2],[3,4]]}`},
		{"a collection", orb.Collection{orb.Point{1, 2}, square}, `{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},{"type":"Polygon","coordinates":[[[1,2],[3,2],[3,4],[1,2]]]}]}`},
		{"an empty polygon", orb.Polygon{}, `{"type":"Polygon","coordinates":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
				b, err := wkb.Marshal(tc.geom, order)
				if err != nil {
					t.Fatal(err)
				}
				got, err := AppendGeoJSON(nil, b, 9)
				if err != nil {
					t.Fatalf("%v: %v", order, err)
				}
				if string(got) != tc.want {
					t.Errorf("%v:\n got %s\nwant %s", order, got, tc.want)
				}
			}
		})
	}
}

func TestAppendGeoJSONRefuses(t *testing.T) {
	poly, _ := wkb.Marshal(orb.Polygon{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}}, binary.LittleEndian)
	pointZ := []byte{1, 0xe9, 3, 0, 0} // type 1001: a point with Z
	pointZ = append(pointZ, make([]byte, 24)...)
	for _, tc := range []struct {
		name string
		wkb  []byte
	}{
		{"nothing", nil},
		{"cut short in a ring", poly[:len(poly)-5]},
		{"a byte order that is neither", append([]byte{7}, poly[1:]...)},
		{"bytes after the geometry", append(append([]byte{}, poly...), 0)},
		{"a Z coordinate", pointZ},
		{"a count past the end", []byte{1, 3, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := AppendGeoJSON(nil, tc.wkb, 9); err == nil {
				t.Errorf("accepted: %s", got)
			}
		})
	}
}

// TestAppendGeoJSONNYCTracts writes every NYC tract and reads it back:
// the same shapes, each coordinate within the rounding to nine places.
func TestAppendGeoJSONNYCTracts(t *testing.T) {
	tracts := nycTractGeometries(t)
	for i, g := range tracts {
		b, err := wkb.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		out, err := AppendGeoJSON(nil, b, 9)
		if err != nil {
			t.Fatalf("tract %d: %v", i, err)
		}
		back, err := geojson.UnmarshalGeometry(out)
		if err != nil {
			t.Fatalf("tract %d: %v in %s", i, err, out)
		}
		if !sameWithin(g, back.Geometry(), 0.5e-9) {
			t.Fatalf("tract %d differs after writing: %s", i, out)
		}
	}
}

func sameWithin(a, b orb.Geometry, tol float64) bool {
	var pa, pb []orb.Point
	collect := func(g orb.Geometry, into *[]orb.Point) bool {
		switch g := g.(type) {
		case orb.Polygon:
			for _, r := range g {
				*into = append(*into, r...)
			}
		case orb.MultiPolygon:
			for _, p := range g {
				for _, r := range p {
					*into = append(*into, r...)
				}
			}
		default:
			return false
		}
		return true
	}
	if a.GeoJSONType() != b.GeoJSONType() || !collect(a, &pa) || !collect(b, &pb) || len(pa) != len(pb) {
		return false
	}
	for i := range pa {
		if math.Abs(pa[i][0]-pb[i][0]) > tol || math.Abs(pa[i][1]-pb[i][1]) > tol {
			return false
		}
	}
	return true
}

func nycTractGeometries(tb testing.TB) []orb.Geometry {
	dir := os.Getenv("GRIDMAP_NYC_DATA")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "data", "nyc")
	}
	f, err := os.Open(filepath.Join(dir, "L3_tracts2010.geojson"))
	if err != nil {
		tb.Skipf("NYC data not found (%v): the real-data check needs ../shared/data/nyc", err)
	}
	defer f.Close()
	rd := NewFeatureReader(f, FieldMap{Code: "boroct2010", DefaultLevel: "tract"})
	var out []orb.Geometry
	for {
		feat, err := rd.Next()
		if err != nil {
			break
		}
		out = append(out, feat.Geometry)
	}
	if len(out) != 2165 {
		tb.Fatalf("read %d tracts, want 2165", len(out))
	}
	return out
}

// BenchmarkAppendGeoJSON writes the NYC tracts from WKB; the baseline
// decodes the WKB with orb and marshals it with orb's geojson.
func BenchmarkAppendGeoJSON(b *testing.B) {
	var wkbs [][]byte
	for _, g := range nycTractGeometries(b) {
		w, _ := wkb.Marshal(g)
		wkbs = append(wkbs, w)
	}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			for _, w := range wkbs {
				var err error
				if buf, err = AppendGeoJSON(buf[:0], w, 9); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("orb", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, w := range wkbs {
				g, err := wkb.Unmarshal(w)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := geojson.NewGeometry(g).MarshalJSON(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

func FuzzAppendGeoJSON(f *testing.F) {
	for _, g := range []orb.Geometry{orb.Point{1, 2}, orb.Polygon{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}}, orb.Collection{orb.MultiPoint{{1, 2}}}} {
		b, _ := wkb.Marshal(g)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := AppendGeoJSON(nil, b, 9)
		if err != nil {
			return
		}
		if _, err := geojson.UnmarshalGeometry(out); err != nil {
			t.Fatalf("wrote what does not read as GeoJSON: %s (%v)", out, err)
		}
	})
}
