package tiles

import (
	"bytes"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/twpayne/go-geos"
)

// tileUnits returns the EPSG:3857 point at tile units x, y of tile t.
func tileUnits(t Tile, x, y float64) orb.Point {
	e := t.Envelope()
	return orb.Point{e[0] + x*(e[2]-e[0])/Extent, e[3] - y*(e[3]-e[1])/Extent}
}

func ringOf(t Tile, xy ...float64) orb.Ring {
	var r orb.Ring
	for i := 0; i < len(xy); i += 2 {
		r = append(r, tileUnits(t, xy[i], xy[i+1]))
	}
	return append(r, r[0])
}

// drawnPolygons returns what d drew as polygons in tile units (each
// exterior with the holes after it).
func drawnPolygons(d *Drawer) orb.MultiPolygon {
	var mp orb.MultiPolygon
	d.Rings(0, len(d.Ends), func(pts []int32) {
		var r orb.Ring
		for i := 0; i < len(pts); i += 2 {
			r = append(r, orb.Point{float64(pts[i]), float64(pts[i+1])})
		}
		r = append(r, r[0])
		if ringArea(pts) > 0 {
			mp = append(mp, orb.Polygon{r})
		} else {
			mp[len(mp)-1] = append(mp[len(mp)-1], r)
		}
	})
	return mp
}

func valid(t *testing.T, gctx *geos.Context, mp orb.MultiPolygon) *geos.Geom {
	t.Helper()
	b, _ := wkb.Marshal(mp)
	g, err := gctx.NewGeomFromWKB(b)
	if err != nil {
		t.Fatal(err)
	}
	if !g.IsValid() {
		t.Errorf("drawn polygons are invalid: %s", g.IsValidReason())
	}
	return g
}

// TestDrawerCutsAcrossTheBufferValid: a comb whose teeth reach past the
// buffer and come back is cut into valid pieces; a square inside is kept
// as drawn; rings are wound as the specification wants.
func TestDrawerCutsAcrossTheBufferValid(t *testing.T) {
	tl := Tile{Z: 14, X: 4823, Y: 6160}
	d := NewDrawer(tl)
	gctx := geos.NewContext()
	// A comb along the west edge: its back lies past the buffer (x < -64),
	// its three teeth reach into the tile.
	comb := ringOf(tl, -500, 100, 300, 100, 300, 200, -200, 200, -200, 300, 300, 300, 300, 400, -200, 400, -200, 500, 300, 500, 300, 600, -500, 600)
	if !d.MultiPolygon(orb.MultiPolygon{{comb}}) {
		t.Fatal("the comb was not drawn")
	}
	got := valid(t, gctx, drawnPolygons(d))
	// The teeth, cut at x = -64: three rectangles 364 wide, 100 high.
	if a := got.Area(); a != 3*364*100 {
		t.Errorf("the cut comb covers %.0f square units, want %d", a, 3*364*100)
	}
	if n := len(d.Ends); n != 3 {
		t.Errorf("the cut comb is %d rings, want 3", n)
	}
	d.Clear()
	// A square with a hole, inside the tile, drawn clockwise in EPSG:3857
	// (y up): the exterior comes out with a positive area in tile units.
	sq := orb.Polygon{ringOf(tl, 1000, 1000, 1000, 2000, 2000, 2000, 2000, 1000), ringOf(tl, 1200, 1200, 1800, 1200, 1800, 1800, 1200, 1800)}
	d.MultiPolygon(orb.MultiPolygon{sq})
	if len(d.Ends) != 2 {
		t.Fatalf("%d rings, want 2", len(d.Ends))
	}
	d.Rings(0, 1, func(pts []int32) {
		if ringArea(pts) <= 0 {
			t.Error("the exterior is wound with a negative area")
		}
	})
	d.Rings(1, 2, func(pts []int32) {
		if ringArea(pts) >= 0 {
			t.Error("the hole is wound with a positive area")
		}
	})
	valid(t, gctx, drawnPolygons(d))
	// A polygon reaching past the buffer once, with a hole in the tile and
	// a hole past the buffer: the hole past it is left out.
	d.Clear()
	holed := orb.Polygon{
		ringOf(tl, 1000, 1000, 9000, 1000, 9000, 2000, 1000, 2000),
		ringOf(tl, 1200, 1200, 1800, 1200, 1800, 1800, 1200, 1800),
		ringOf(tl, 6000, 1200, 7000, 1200, 7000, 1800, 6000, 1800),
	}
	if !d.MultiPolygon(orb.MultiPolygon{holed}) {
		t.Fatal("the holed polygon was not drawn")
	}
	if len(d.Ends) != 2 {
		t.Errorf("%d rings, want the exterior and the hole in the tile", len(d.Ends))
	}
	valid(t, gctx, drawnPolygons(d))
	// A polygon past the buffer draws nothing.
	d.Clear()
	if d.MultiPolygon(orb.MultiPolygon{{ringOf(tl, -900, 100, -100, 100, -100, 200, -900, 200)}}) {
		t.Error("a polygon past the buffer was drawn")
	}
}

// TestThinKeepsSharedEdgesShared: two grids sharing a wavy edge whose
// vertices stray less than half a unit from straight, each ring running
// its own way, keep exactly the same vertices along it after Thin, fewer
// than before; a corner where three grids meet stays.
func TestThinKeepsSharedEdgesShared(t *testing.T) {
	tl := Tile{Z: 14, X: 4823, Y: 6160}
	d := NewDrawer(tl)
	// The shared edge from (1000, 1000) to (1010, 2000): every other
	// vertex lands half a unit off it once snapped.
	var edge []float64
	for i := 0; i <= 20; i++ {
		edge = append(edge, 1000+0.5*float64(i), 1000+50*float64(i))
	}
	rev := func(xy []float64) []float64 {
		out := make([]float64, 0, len(xy))
		for i := len(xy) - 2; i >= 0; i -= 2 {
			out = append(out, xy[i], xy[i+1])
		}
		return out
	}
	west := append(append([]float64{}, rev(edge)...), 500, 1000, 500, 2000)
	east := append(edge, 1500, 2000, 1500, 1000)
	// A third grid below both, meeting them at (1000, 1000).
	south := []float64{500, 1000, 1000, 1000, 1500, 1000, 1500, 500, 500, 500}
	for _, xy := range [][]float64{west, east, south} {
		if !d.MultiPolygon(orb.MultiPolygon{{ringOf(tl, xy...)}}) {
			t.Fatal("a grid was not drawn")
		}
	}
	before := len(d.Pts)
	d.Thin()
	if len(d.Pts) >= before {
		t.Errorf("Thin kept all %d vertices", before/2)
	}
	onEdge := func(r int) map[[2]int32]bool {
		out := map[[2]int32]bool{}
		d.Rings(r, r+1, func(pts []int32) {
			for i := 0; i < len(pts); i += 2 {
				if pts[i] >= 1000 && pts[i] <= 1010 && pts[i+1] >= 1000 && pts[i+1] <= 2000 {
					out[[2]int32{pts[i], pts[i+1]}] = true
				}
			}
		})
		return out
	}
	w, e := onEdge(0), onEdge(1)
	if len(w) != len(e) {
		t.Errorf("the shared edge has %d vertices in the west grid, %d in the east", len(w), len(e))
	}
	for p := range w {
		if !e[p] {
			t.Errorf("vertex %v of the shared edge is only in the west grid", p)
		}
	}
	if !w[[2]int32{1000, 1000}] || !e[[2]int32{1000, 1000}] {
		t.Error("the corner where three grids meet was thinned")
	}
	gctx := geos.NewContext()
	for _, p := range drawnPolygons(d) {
		valid(t, gctx, orb.MultiPolygon{p})
	}
}

// TestLayerWriterEncodesAsPostGIS: a layer decodes with another MVT
// reader to the properties and geometry written; integers and strings
// are shared values; a feature without geometry is dropped.
func TestLayerWriterEncodesAsPostGIS(t *testing.T) {
	w := NewLayerWriter("grids", "code", "name", "depth", "parent")
	w.Begin()
	w.String(0, "A")
	w.String(1, "甲")
	w.Int(2, 0)
	w.Ring([]int32{0, 0, 100, 0, 100, 100, 0, 100})
	w.End()
	w.Begin()
	w.String(0, "B")
	w.String(1, "甲")
	w.Int(2, -3)
	w.String(3, "A")
	w.End() // no geometry
	w.Begin()
	w.String(0, "C")
	w.Int(2, 0)
	w.Point(7, 9)
	w.End()
	raw := w.AppendTo(nil)
	if bytes.Contains(raw, []byte("B")) {
		t.Error("the values of the feature dropped are in the layer")
	}
	ls, err := mvt.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Name != "grids" || ls[0].Extent != Extent || ls[0].Version != 2 || len(ls[0].Features) != 2 {
		t.Fatalf("decoded %+v", ls)
	}
	a, c := ls[0].Features[0], ls[0].Features[1]
	if a.Properties["code"] != "A" || a.Properties["name"] != "甲" || a.Properties["depth"] != float64(0) || a.Properties["parent"] != nil {
		t.Errorf("feature A: %v", a.Properties)
	}
	if p, ok := a.Geometry.(orb.Polygon); !ok || len(p) != 1 || len(p[0]) != 5 || p[0][2] != (orb.Point{100, 100}) {
		t.Errorf("feature A's geometry: %v", a.Geometry)
	}
	if c.Properties["code"] != "C" || c.Geometry != (orb.Point{7, 9}) {
		t.Errorf("feature C: %v %v", c.Properties, c.Geometry)
	}
	if got := NewLayerWriter("empty").AppendTo([]byte{1}); !bytes.Equal(got, []byte{1}) {
		t.Errorf("an empty layer appended to a tile made it %v", got)
	}
	if got := NewLayerWriter("empty").AppendTo(nil); len(got) != 0 {
		t.Errorf("an empty layer wrote %d bytes", len(got))
	}
}
