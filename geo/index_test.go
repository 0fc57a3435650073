package geo

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// sq returns a closed square ring from (x0, y0) with side s.
func sq(x0, y0, s float64) orb.Ring {
	return orb.Ring{{x0, y0}, {x0 + s, y0}, {x0 + s, y0 + s}, {x0, y0 + s}, {x0, y0}}
}

// twoSquares is a layer of one district and two grids sharing the edge
// x = 120.01, 0.01 degrees (about 1 km) wide each.
func twoSquares(t testing.TB) *LayerIndex {
	t.Helper()
	in := LayerInput{ID: "t", Levels: []string{"district", "grid"}, ToleranceM: 30, Grids: []GridInput{
		{Code: "D", Level: "district", Geometry: orb.MultiPolygon{{{{120, 30}, {120.02, 30}, {120.02, 30.01}, {120, 30.01}, {120, 30}}}}},
		{Code: "A", Level: "grid", Parent: "D", Geometry: orb.MultiPolygon{{sq(120, 30, 0.01)}}},
		{Code: "B", Level: "grid", Parent: "D", Geometry: orb.MultiPolygon{{sq(120.01, 30, 0.01)}}},
	}}
	l, err := BuildLayerIndex(in, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func codes(l *LayerIndex, h *Hit) (owner string, co []string, reasons []string) {
	if h.Owner >= 0 {
		owner = l.Grids[h.Owner].Code
	}
	for _, c := range h.CoOwners {
		co = append(co, l.Grids[c.Grid].Code)
		reasons = append(reasons, c.Reason)
	}
	return
}

func TestLookupBoundaryRule(t *testing.T) {
	l := twoSquares(t)
	kx, _ := MetresPerDegree(30.005)
	cases := []struct {
		name      string
		x, y      float64
		tolerance float64
		accuracy  float64
		owner     string
		co        []string
		reasons   []string
	}{
		{"inside A far from edges", 120.003, 30.005, 30, 0, "A", nil, nil},
		{"on the shared edge: lower code owns, the other is on_boundary", 120.01, 30.005, 30, 0, "A", []string{"B"}, []string{gridmap.ReasonOnBoundary}},
		{"on a shared vertex", 120.01, 30, 30, 0, "A", []string{"B"}, []string{gridmap.ReasonOnBoundary}},
		{"10 m inside B: A within tolerance", 120.01 + 10/kx, 30.005, 30, 0, "B", []string{"A"}, []string{gridmap.ReasonWithinTolerance}},
		{"40 m inside B: A beyond tolerance", 120.01 + 40/kx, 30.005, 30, 0, "B", nil, nil},
		{"40 m inside B with 50 m accuracy", 120.01 + 40/kx, 30.005, 30, 50, "B", []string{"A"}, []string{gridmap.ReasonWithinAccuracy}},
		{"on the outer edge: covered", 120, 30.005, 30, 0, "A", nil, nil},
		{"outside: no owner", 119.99, 30.005, 30, 0, "", nil, nil},
	}
	var h Hit
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l.Lookup(c.x, c.y, c.tolerance, c.accuracy, &h)
			owner, co, reasons := codes(l, &h)
			if owner != c.owner || !equal(co, c.co) || !equal(reasons, c.reasons) {
				t.Errorf("got owner %q co-owners %v %v, want %q %v %v", owner, co, reasons, c.owner, c.co, c.reasons)
			}
		})
	}
	t.Run("chain runs root first", func(t *testing.T) {
		l.Lookup(120.015, 30.005, 30, 0, &h)
		var chain []string
		for _, g := range l.Chain(h.Owner, nil) {
			chain = append(chain, l.Grids[g].Code)
		}
		if !equal(chain, []string{"D", "B"}) {
			t.Errorf("chain %v, want [D B]", chain)
		}
	})
	t.Run("outside: nearest with distance", func(t *testing.T) {
		l.Lookup(119.99, 30.005, 30, 0, &h)
		if h.Nearest < 0 || l.Grids[h.Nearest].Code != "A" {
			t.Fatalf("nearest %d, want A", h.Nearest)
		}
		want := 0.01 * kx
		if math.Abs(h.NearestM-want) > want*0.001 {
			t.Errorf("nearest distance %.2f m, want %.2f", h.NearestM, want)
		}
	})
	t.Run("point in a gap between children falls to the parent", func(t *testing.T) {
		in := LayerInput{ID: "gap", Levels: []string{"district", "grid"}, ToleranceM: 30, Grids: []GridInput{
			{Code: "D", Level: "district", Geometry: orb.MultiPolygon{{sq(0, 0, 1)}}},
			{Code: "A", Level: "grid", Parent: "D", Geometry: orb.MultiPolygon{{sq(0, 0, 0.5)}}},
		}}
		gl, err := BuildLayerIndex(in, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		gl.Lookup(0.75, 0.75, 30, 0, &h)
		if h.Owner < 0 || gl.Grids[h.Owner].Code != "D" {
			t.Errorf("owner %d, want D", h.Owner)
		}
	})
}

// densify puts n-1 extra points on every edge of r.
func densify(r orb.Ring, n int) orb.Ring {
	var out orb.Ring
	for i := 0; i+1 < len(r); i++ {
		for k := 0; k < n; k++ {
			t := float64(k) / float64(n)
			out = append(out, orb.Point{r[i][0] + t*(r[i+1][0]-r[i][0]), r[i][1] + t*(r[i+1][1]-r[i][1])})
		}
	}
	return append(out, r[0])
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSubdividedMatchesWhole checks pieces against the polygon they came
// from: a ring with holes, a concave comb whose clipped pieces have
// zero-width walks along the cut, a many-vertex circle, and 400 small
// turned squares, some with holes, crossed by the cuts.
func TestSubdividedMatchesWhole(t *testing.T) {
	comb := orb.Ring{{0, 0}, {10, 0}, {10, 10}}
	for i := 9; i >= 1; i -= 2 {
		comb = append(comb, orb.Point{float64(i), 10}, orb.Point{float64(i), 1}, orb.Point{float64(i - 1), 1}, orb.Point{float64(i - 1), 10})
	}
	comb = append(comb, orb.Point{0, 0})
	circle := orb.Ring{}
	for i := 0; i < 2000; i++ {
		a := 2 * math.Pi * float64(i) / 2000
		r := 5 + math.Sin(a*17)
		circle = append(circle, orb.Point{5 + r*math.Cos(a), 5 + r*math.Sin(a)})
	}
	circle = append(circle, circle[0])
	shapes := map[string]orb.MultiPolygon{
		"square with two holes": {{densify(sq(0, 0, 10), 10), densify(sq(1, 1, 2), 3), sq(5, 5, 3)}},
		"comb":                  {{comb}},
		"wavy circle":           {{circle}},
		"two parts":             {{sq(0, 0, 4)}, {sq(6, 6, 4)}},
		"islets with holes":     islets(),
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for name, mp := range shapes {
		t.Run(name, func(t *testing.T) {
			l, err := BuildLayerIndex(LayerInput{ID: "s", Levels: []string{"grid"}, Grids: []GridInput{{Code: "X", Level: "grid", Geometry: mp}}}, 8, nil)
			if err != nil {
				t.Fatal(err)
			}
			if l.Stats().Pieces < 2 && name != "two parts" {
				t.Fatalf("%d pieces; the shape should have been cut", l.Stats().Pieces)
			}
			var h Hit
			for i := 0; i < 20000; i++ {
				x, y := rnd.Float64()*12-1, rnd.Float64()*12-1
				want := planar.MultiPolygonContains(mp, orb.Point{x, y})
				// Degrees are taken as they come: the distance rule only
				// matters within a millimetre of an edge.
				l.Lookup(x, y, 0, 0, &h)
				if got := h.Owner == 0; got != want {
					t.Fatalf("point (%g %g): covered %v, want %v", x, y, got, want)
				}
			}
		})
	}
}

// nycTracts reads the 2,165 NYC census tracts as one single-level layer.
func nycTracts(t testing.TB) LayerInput {
	t.Helper()
	path := filepath.Join("..", "..", "shared", "data", "nyc", "L3_tracts2010.geojson")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("NYC data not found (%v): the real-data checks need ../shared/data/nyc", err)
	}
	defer f.Close()
	in := LayerInput{ID: "tracts", Levels: []string{"tract"}, ToleranceM: 30}
	r := NewFeatureReader(f, FieldMap{Code: "boroct2010", Name: "ctlabel", DefaultLevel: "tract"})
	for {
		feat, err := r.Next()
		if err != nil {
			break
		}
		mp, err := Polygonal(feat.Geometry)
		if err != nil {
			t.Fatal(err)
		}
		in.Grids = append(in.Grids, GridInput{Code: feat.Code, Name: feat.Name, Level: "tract", Geometry: mp, VersionID: int64(len(in.Grids) + 1)})
	}
	if len(in.Grids) != 2165 {
		t.Fatalf("read %d tracts, want 2165", len(in.Grids))
	}
	return in
}

var (
	nycOnce  sync.Once
	nycIndex *LayerIndex
	nycInput LayerInput
)

func nycLayer(t testing.TB) (*LayerIndex, LayerInput) {
	t.Helper()
	nycOnce.Do(func() {
		nycInput = nycTracts(t)
		var err error
		if nycIndex, err = BuildLayerIndex(nycInput, 0, nil); err != nil {
			t.Fatal(err)
		}
	})
	if nycIndex == nil {
		t.Skip("NYC index unavailable")
	}
	return nycIndex, nycInput
}

// ringDistM is the brute-force distance in metres from a point to every
// edge of mp, the reference for the index's distances.
func ringDistM(mp orb.MultiPolygon, x, y float64) float64 {
	kx, ky := MetresPerDegree(y)
	best := math.Inf(1)
	for _, poly := range mp {
		for _, r := range poly {
			for i := 0; i+1 < len(r); i++ {
				d := segmentDist2((r[i][0]-x)*kx, (r[i][1]-y)*ky, (r[i+1][0]-x)*kx, (r[i+1][1]-y)*ky)
				best = math.Min(best, d)
			}
		}
	}
	return math.Sqrt(best)
}

// TestLookupNYCMatchesBruteForce compares index lookups over the real
// tracts with planar containment and distances over the whole polygons.
func TestLookupNYCMatchesBruteForce(t *testing.T) {
	l, in := nycLayer(t)
	bounds := make([]orb.Bound, len(in.Grids))
	all := orb.Bound{Min: orb.Point{180, 90}, Max: orb.Point{-180, -90}}
	for i, g := range in.Grids {
		bounds[i] = g.Geometry.Bound()
		all = all.Union(bounds[i])
	}
	rnd := rand.New(rand.NewPCG(7, 7))
	var h Hit
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := 0; i < n; i++ {
		x := all.Min[0] + rnd.Float64()*(all.Max[0]-all.Min[0])
		y := all.Min[1] + rnd.Float64()*(all.Max[1]-all.Min[1])
		l.Lookup(x, y, 30, 0, &h)
		want := map[string]float64{}
		owner := ""
		for k, g := range in.Grids {
			if !bounds[k].Pad(0.001).Contains(orb.Point{x, y}) {
				continue
			}
			d := ringDistM(g.Geometry, x, y)
			if planar.MultiPolygonContains(g.Geometry, orb.Point{x, y}) {
				d = 0
				if owner == "" || g.Code < owner {
					owner = g.Code
				}
			}
			if d <= 30 {
				want[g.Code] = d
			}
		}
		got := ""
		if h.Owner >= 0 {
			got = l.Grids[h.Owner].Code
		}
		if got != owner {
			t.Fatalf("point (%.7f %.7f): owner %q, want %q", x, y, got, owner)
		}
		if owner != "" {
			delete(want, owner)
		} else if h.Nearest >= 0 {
			delete(want, l.Grids[h.Nearest].Code)
		}
		if len(h.CoOwners) != len(want) {
			t.Fatalf("point (%.7f %.7f): %d co-owners, want %v", x, y, len(h.CoOwners), want)
		}
		for _, c := range h.CoOwners {
			w, ok := want[l.Grids[c.Grid].Code]
			if !ok || math.Abs(c.DistM-w) > 0.01 {
				t.Fatalf("point (%.7f %.7f): co-owner %s at %.3f m, want %v", x, y, l.Grids[c.Grid].Code, c.DistM, want)
			}
		}
	}
}

// nycPoints returns n random points uniform over the tracts' bounding box;
// onLand keeps only points some tract covers (rejection sampling).
func nycPoints(l *LayerIndex, in LayerInput, n int, onLand bool) []orb.Point {
	all := orb.Bound{Min: orb.Point{180, 90}, Max: orb.Point{-180, -90}}
	for _, g := range in.Grids {
		all = all.Union(g.Geometry.Bound())
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	pts := make([]orb.Point, 0, n)
	var h Hit
	for len(pts) < n {
		p := orb.Point{all.Min[0] + rnd.Float64()*(all.Max[0]-all.Min[0]), all.Min[1] + rnd.Float64()*(all.Max[1]-all.Min[1])}
		if onLand {
			l.Lookup(p[0], p[1], 0, 0, &h)
			if h.Owner < 0 {
				continue
			}
		}
		pts = append(pts, p)
	}
	return pts
}

// BenchmarkLookupNYC looks up 1,000,000 random points over New York's land
// in the tract layer, co-owners within 30 m included, on one core.
func BenchmarkLookupNYC(b *testing.B) { benchLookup(b, true, false) }

// BenchmarkLookupNYCBoundingBox looks up points uniform over the tracts'
// bounding box: about two thirds fall in water or New Jersey and get the
// nearest tract instead.
func BenchmarkLookupNYCBoundingBox(b *testing.B) { benchLookup(b, false, false) }

// BenchmarkLookupNYCBoundingBoxWalk is its baseline: the same points with
// the nearest grid found by walking the tree nearest first, as before the
// lattice.
func BenchmarkLookupNYCBoundingBoxWalk(b *testing.B) { benchLookup(b, false, true) }

// BenchmarkLookupNYCBoundingBoxInSpaceOrder looks up the same points in
// space order, 100,000 at a time, as POST /v1/lookup answers a full batch:
// against BenchmarkLookupNYCBoundingBox, what the order saves.
func BenchmarkLookupNYCBoundingBoxInSpaceOrder(b *testing.B) {
	l, in := nycLayer(b)
	pts := nycPoints(l, in, 1_000_000, false)
	for i := 0; i < len(pts); i += 100_000 {
		_, sorted := SpaceOrder(pts[i : i+100_000])
		copy(pts[i:], sorted)
	}
	var h Hit
	b.ResetTimer()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p := pts[i%len(pts)]
		l.Lookup(p[0], p[1], 30, 0, &h)
	}
}

func benchLookup(b *testing.B, onLand, walk bool) {
	l, in := nycLayer(b)
	pts := nycPoints(l, in, 1_000_000, onLand)
	if walk {
		w := *l
		w.edges.near = nil
		l = &w
	}
	var h Hit
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := pts[i%len(pts)]
		l.Lookup(p[0], p[1], 30, 0, &h)
	}
}

// BenchmarkLookupNYCUnsubdivided is the baseline for BenchmarkLookupNYC:
// the same points tested with orb's planar.MultiPolygonContains on whole
// tracts found by bounding box in the same kind of R-tree, without
// co-owners.
func BenchmarkLookupNYCUnsubdivided(b *testing.B) {
	l, in := nycLayer(b)
	pts := nycPoints(l, in, 1_000_000, true)
	boxes := make([]box, len(in.Grids))
	for i, g := range in.Grids {
		bd := g.Geometry.Bound()
		boxes[i] = box{bd.Min[0], bd.Min[1], bd.Max[0], bd.Max[1]}
	}
	tree, order := packRTree(boxes)
	var cand []int32
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := pts[i%len(pts)]
		cand = tree.search(box{p[0], p[1], p[0], p[1]}, cand[:0])
		for _, c := range cand {
			if planar.MultiPolygonContains(in.Grids[order[c]].Geometry, p) {
				break
			}
		}
	}
}

// TestRebuildReusesPieces rebuilds the NYC index from the previous one with
// no geometry at all: every grid's pieces come back from the old index and
// every answer stays the same.
func TestRebuildReusesPieces(t *testing.T) {
	l, in := nycLayer(t)
	again := LayerInput{ID: in.ID, Levels: in.Levels, ToleranceM: in.ToleranceM}
	for i, g := range in.Grids {
		g.Geometry, g.VersionID = nil, l.Grids[i].VersionID
		again.Grids = append(again.Grids, g)
	}
	l2, err := BuildLayerIndex(again, 0, l)
	if err != nil {
		t.Fatal(err)
	}
	// The same shapes (the lattice is filled by lookups, not builds).
	if s1, s2 := l.Stats(), l2.Stats(); s1.Grids != s2.Grids || s1.Pieces != s2.Pieces || s1.Vertices != s2.Vertices {
		t.Fatalf("rebuilt index %+v, first %+v", s2, s1)
	}
	var h1, h2 Hit
	for _, p := range nycPoints(l, in, 20000, false) {
		l.Lookup(p[0], p[1], 30, 0, &h1)
		l2.Lookup(p[0], p[1], 30, 0, &h2)
		if h1.Owner != h2.Owner || h1.Nearest != h2.Nearest || len(h1.CoOwners) != len(h2.CoOwners) {
			t.Fatalf("point %v: first %+v, rebuilt %+v", p, h1, h2)
		}
	}
	if _, err := BuildLayerIndex(again, 0, nil); err == nil {
		t.Error("a grid without geometry and nothing to reuse must be refused")
	}
}

// islets is 400 small squares, turned a little so that cuts cross them,
// every third with a square hole: a grid of many small rings, which
// subdivision parts into pieces of a few.
func islets() orb.MultiPolygon {
	var mp orb.MultiPolygon
	turned := func(cx, cy, half float64) orb.Ring {
		const a = 0.3
		var r orb.Ring
		for _, c := range [][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}, {-1, -1}} {
			x, y := c[0]*half, c[1]*half
			r = append(r, orb.Point{cx + x*math.Cos(a) - y*math.Sin(a), cy + x*math.Sin(a) + y*math.Cos(a)})
		}
		return r
	}
	for i := range 400 {
		cx, cy := 0.25+float64(i%20)*0.5, 0.25+float64(i/20)*0.5
		poly := orb.Polygon{turned(cx, cy, 0.2)}
		if i%3 == 0 {
			hole := turned(cx, cy, 0.08)
			slices.Reverse(hole)
			poly = append(poly, hole)
		}
		mp = append(mp, poly)
	}
	return mp
}

// TestSubdividePartsManySmallRings: a grid of many small rings is cut into
// pieces of at most the given vertices (squares on a lattice stay whole),
// rings piled in one place, which no cut parts, stay one piece, found at
// once (not cut into halves again and again, each holding them all), and
// small rings spread under 200 rings over all of them (bad data, but the
// index must not blow up on it) are parted into a few pieces, each with
// the big ones, not thousands.
func TestSubdividePartsManySmallRings(t *testing.T) {
	var spread, piled orb.MultiPolygon
	for i := range 3000 {
		x, y := float64(i%60)*2, float64(i/60)*2
		spread = append(spread, orb.Polygon{{{x, y}, {x + 1, y}, {x + 1, y + 1}, {x, y + 1}, {x, y}}})
		piled = append(piled, orb.Polygon{{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}})
	}
	pieces := subdividePolygon(spread, 64)
	rings := 0
	for _, p := range pieces {
		n := 0
		for _, r := range p.rings {
			n += len(r.pts)
		}
		if n > 64 {
			t.Fatalf("a piece of %d vertices, more than 64", n)
		}
		rings += len(p.rings)
	}
	if rings != 3000 {
		t.Fatalf("the pieces hold %d rings, want the 3,000 squares whole", rings)
	}
	if pieces := subdividePolygon(piled, 64); len(pieces) != 1 || len(pieces[0].rings) != 3000 {
		t.Fatalf("piled squares: %d pieces, want one of 3,000 rings", len(pieces))
	}
	under := slices.Clone(spread)
	for range 200 {
		under = append(under, orb.Polygon{{{-1, -1}, {121, -1}, {121, 101}, {-1, 101}, {-1, -1}}})
	}
	in, out := 0, 0
	for _, p := range under {
		in += len(p[0])
	}
	for _, p := range subdividePolygon(under, 64) {
		for _, r := range p.rings {
			out += len(r.pts)
		}
	}
	if out > in+in/2 {
		t.Fatalf("small rings under big ones: %d vertices cut into %d", in, out)
	}
}
