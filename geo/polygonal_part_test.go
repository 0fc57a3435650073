package geo

import (
	"testing"

	"github.com/paulmach/orb"
)

func TestPolygonalPart(t *testing.T) {
	square := orb.Polygon{{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}}
	tests := []struct {
		name    string
		g       orb.Geometry
		parts   int
		dropped string
	}{
		{"a polygon with a stray line keeps the polygon", orb.Collection{square, orb.LineString{{0, 0}, {2, 2}}}, 1, "1 LineString"},
		{"nested collections and points are flattened", orb.Collection{orb.Collection{square, orb.Point{1, 1}, orb.Point{2, 2}}, orb.MultiPolygon{square}}, 2, "2 Points"},
		{"only polygons drops nothing", orb.Collection{square}, 1, ""},
		{"a collection without polygons is left to Polygonal", orb.Collection{orb.Point{1, 1}}, 0, ""},
		{"a polygon is not a collection", square, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp, dropped := PolygonalPart(tt.g)
			if len(mp) != tt.parts || dropped != tt.dropped {
				t.Errorf("got %d parts, dropped %q; want %d, %q", len(mp), dropped, tt.parts, tt.dropped)
			}
		})
	}
}
