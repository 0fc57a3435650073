package geo

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// tiling returns cells that tile a wiggly parent with every shared edge
// drawn with the same vertices on both sides, as real grid layers are.
func tiling(t testing.TB, n int, seed uint64) (orb.MultiPolygon, []orb.MultiPolygon) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 3))
	parent := orb.MultiPolygon{{{{0, 0}, {1000, 0}, {1000, 700}, {400, 1000}, {0, 800}, {0, 0}}}}
	s := NewSubdivider()
	cells, err := s.Subdivide(parent, Seeds(parent, n, rnd), rnd)
	if err != nil {
		t.Fatal(err)
	}
	if cells, err = s.Renode(cells); err != nil {
		t.Fatal(err)
	}
	return parent, cells
}

type segment struct{ a, b orb.Point }

// unmatchedEdges returns the directed edges of polys that no other ring
// runs the other way: on a tiling, only the outer boundary.
func unmatchedEdges(polys []orb.MultiPolygon) []segment {
	count := map[segment]int{}
	for _, mp := range polys {
		for _, poly := range mp {
			for _, ring := range poly {
				for i := 0; i+1 < len(ring); i++ {
					count[segment{ring[i], ring[i+1]}]++
				}
			}
		}
	}
	var out []segment
	for s := range count {
		if count[segment{s.b, s.a}] == 0 {
			out = append(out, s)
		}
	}
	return out
}

func vertexCount(polys []orb.MultiPolygon) int {
	n := 0
	for _, mp := range polys {
		for _, poly := range mp {
			for _, r := range poly {
				n += len(r)
			}
		}
	}
	return n
}

func TestGeneraliseKeepsSharedEdgesShared(t *testing.T) {
	for _, tol := range []float64{0.5, 2, 8} {
		parent, cells := tiling(t, 40, 11)
		g := NewGeneraliser()
		out := g.Generalise(cells, tol)
		if len(out) != len(cells) {
			t.Fatalf("tolerance %g: %d results for %d cells", tol, len(out), len(cells))
		}
		if a, b := vertexCount(out), vertexCount(cells); a >= b {
			t.Errorf("tolerance %g: %d vertices after, %d before: nothing was simplified", tol, a, b)
		}
		c := NewChecker()
		var sum float64
		for i, mp := range out {
			if mp == nil {
				t.Fatalf("tolerance %g: cell %d vanished; cells here are far larger than the tolerance", tol, i)
			}
			if gm, _ := c.toGEOS(mp); !gm.IsValid() {
				t.Errorf("tolerance %g: cell %d is invalid: %s", tol, i, gm.IsValidReason())
			}
			sum += planar.Area(mp)
		}
		// Every edge inside the parent is run by two cells, one each way: the
		// cells neither overlap nor leave gaps between them.
		for _, s := range unmatchedEdges(out) {
			for _, p := range []orb.Point{s.a, s.b} {
				if d := distanceToBoundary(parent, p); d > tol {
					t.Errorf("tolerance %g: edge %v-%v is unmatched %g from the parent's boundary", tol, s.a, s.b, d)
				}
			}
		}
		union := planarUnionArea(t, c, out)
		if math.Abs(sum-union) > 1e-9*union {
			t.Errorf("tolerance %g: cells add up to %g but their union is %g: they overlap", tol, sum, union)
		}
		if want := planar.Area(parent); math.Abs(union-want) > tol*4000 {
			t.Errorf("tolerance %g: union %g, parent %g: more changed than the outline can explain", tol, union, want)
		}
	}
}

func distanceToBoundary(mp orb.MultiPolygon, p orb.Point) float64 {
	best := math.Inf(1)
	for _, poly := range mp {
		for _, r := range poly {
			for i := 0; i+1 < len(r); i++ {
				best = math.Min(best, pointSegmentDist2(p, r[i], r[i+1]))
			}
		}
	}
	return math.Sqrt(best)
}

func planarUnionArea(t testing.TB, c *Checker, polys []orb.MultiPolygon) float64 {
	t.Helper()
	var all orb.MultiPolygon
	for _, mp := range polys {
		all = append(all, mp...)
	}
	g, err := c.toGEOS(all)
	if err != nil {
		t.Fatal(err)
	}
	return g.UnaryUnion().Area()
}

func TestGeneraliseSameResultForANeighbourhood(t *testing.T) {
	_, cells := tiling(t, 40, 5)
	g := NewGeneraliser()
	whole := g.Generalise(cells, 4)
	// Generalise again only cell 0, its neighbours and theirs: cell 0 and
	// its neighbours come out as they did from the whole set.
	touches := func(a, b orb.MultiPolygon) bool {
		pts := map[orb.Point]bool{}
		for _, r := range a[0] {
			for _, p := range r {
				pts[p] = true
			}
		}
		for _, r := range b[0] {
			for _, p := range r {
				if pts[p] {
					return true
				}
			}
		}
		return false
	}
	ring1 := map[int]bool{0: true}
	for i := range cells {
		if touches(cells[0], cells[i]) {
			ring1[i] = true
		}
	}
	ring2 := map[int]bool{}
	for i := range cells {
		for j := range ring1 {
			if touches(cells[j], cells[i]) {
				ring2[i] = true
			}
		}
	}
	var idx []int
	var part []orb.MultiPolygon
	for i := range cells {
		if ring2[i] {
			idx = append(idx, i)
			part = append(part, cells[i])
		}
	}
	if len(idx) == len(cells) {
		t.Fatal("the neighbourhood is every cell; the check needs a bigger tiling")
	}
	local := g.Generalise(part, 4)
	for k, i := range idx {
		if !ring1[i] {
			continue
		}
		if !orb.Equal(local[k], whole[i]) {
			t.Errorf("cell %d generalised in its neighbourhood differs from the whole set", i)
		}
	}
}

func TestGeneraliseIslandsAndEnclaves(t *testing.T) {
	// A grid entirely inside another (an enclave) has a ring without nodes on
	// both sides; a detailed circle must still come out the same for both.
	circle := func(r float64, n int) orb.Ring {
		ring := orb.Ring{}
		for i := range n {
			a := 2 * math.Pi * float64(i) / float64(n)
			ring = append(ring, orb.Point{500 + r*math.Cos(a), 500 + r*math.Sin(a)})
		}
		return append(ring, ring[0])
	}
	hole := circle(200, 400)
	inner := orb.MultiPolygon{{hole}}
	outerHole := hole.Clone()
	for i, j := 0, len(outerHole)-1; i < j; i, j = i+1, j-1 {
		outerHole[i], outerHole[j] = outerHole[j], outerHole[i]
	}
	outer := orb.MultiPolygon{{{{0, 0}, {1000, 0}, {1000, 1000}, {0, 1000}, {0, 0}}, outerHole}}
	tiny := orb.MultiPolygon{{circle(0.3, 12)}}
	out := NewGeneraliser().Generalise([]orb.MultiPolygon{inner, outer, tiny}, 2)
	if out[0] == nil || out[1] == nil {
		t.Fatal("the enclave or its surrounding grid vanished")
	}
	if len(out[0][0][0]) >= len(hole) {
		t.Errorf("the enclave kept %d of %d vertices", len(out[0][0][0]), len(hole))
	}
	if len(out[1][0]) != 2 {
		t.Fatalf("the surrounding grid lost its hole: %d rings", len(out[1][0]))
	}
	if len(unmatchedEdges(out[:2])) != 4 {
		t.Errorf("enclave and hole differ: unmatched edges %v", unmatchedEdges(out[:2]))
	}
	if out[2] != nil {
		t.Errorf("a grid 0.6 wide kept at tolerance 2: %v", out[2])
	}
}

func TestGeneraliseNYCTracts(t *testing.T) {
	dir := os.Getenv("GRIDMAP_NYC_DATA")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "data", "nyc")
	}
	f, err := os.Open(filepath.Join(dir, "L3_tracts2010.geojson"))
	if err != nil {
		t.Skipf("NYC data not found (%v): the real-data check needs ../shared/data/nyc", err)
	}
	defer f.Close()
	rd := NewFeatureReader(f, FieldMap{Code: "boroct2010", DefaultLevel: "tract"})
	var tracts []orb.MultiPolygon
	for {
		feat, err := rd.Next()
		if err != nil {
			break
		}
		mp, err := Polygonal(feat.Geometry)
		if err != nil {
			t.Fatal(err)
		}
		tracts = append(tracts, MultiPolygonToWebMercator(mp))
	}
	if len(tracts) != 2165 {
		t.Fatalf("read %d tracts, want 2165", len(tracts))
	}
	g := NewGeneraliser()
	topo := g.Topology(tracts)
	c := NewChecker()
	for _, zoom := range []int{9, 11, 13} {
		tol := 0.5 * 2 * MercatorHalfWorld / 256 / float64(int(1)<<zoom)
		out := topo.Simplify(tol)
		kept := 0
		for i, mp := range out {
			if mp == nil {
				continue
			}
			kept++
			if gm, _ := c.toGEOS(mp); !gm.IsValid() {
				t.Errorf("z%d: tract %d invalid: %s", zoom, i, gm.IsValidReason())
			}
		}
		before, after := vertexCount(tracts), vertexCount(out)
		t.Logf("z%d (tolerance %.1f m): %d of %d tracts kept, %d -> %d vertices", zoom, tol, kept, len(tracts), before, after)
		if after*2 > before {
			t.Errorf("z%d: %d -> %d vertices: less than half removed", zoom, before, after)
		}
		if zoom == 13 && kept != len(tracts) {
			t.Errorf("z13: %d tracts vanished", len(tracts)-kept)
		}
	}
}

func TestLabelPoint(t *testing.T) {
	tests := []struct {
		name string
		mp   orb.MultiPolygon
		want orb.Point
		tol  float64
	}{
		{"square: its centre", orb.MultiPolygon{{{{0, 0}, {10, 0}, {10, 10}, {0, 10}, {0, 0}}}}, orb.Point{5, 5}, 0.1},
		// A U shape: the centroid falls in the notch, outside the grid.
		{"U shape: inside a leg, not in the notch", orb.MultiPolygon{{{{0, 0}, {30, 0}, {30, 30}, {20, 30}, {20, 10}, {10, 10}, {10, 30}, {0, 30}, {0, 0}}}}, orb.Point{}, 0},
		{"largest part wins", orb.MultiPolygon{
			{{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}},
			{{{100, 100}, {140, 100}, {140, 140}, {100, 140}, {100, 100}}},
		}, orb.Point{120, 120}, 0.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := LabelPoint(tc.mp, 0.01)
			if d := signedDistance(p, tc.mp[0]); tc.tol == 0 && d < 4.9 {
				t.Errorf("label %v is %g from the outline; the legs are 10 wide, so about 5 is possible", p, d)
			}
			if tc.tol > 0 && (math.Abs(p[0]-tc.want[0]) > tc.tol || math.Abs(p[1]-tc.want[1]) > tc.tol) {
				t.Errorf("label %v, want %v", p, tc.want)
			}
		})
	}
}
