package geo

import (
	"math"
	"slices"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/project"
)

// Web Mercator (EPSG:3857), the projection of vector tiles.
const (
	mercatorRadius = 6378137.0
	// MercatorMaxLat is where Web Mercator stops: the world is a square.
	MercatorMaxLat = 85.05112877980659
	// MercatorHalfWorld is half the side of that square, in metres.
	MercatorHalfWorld = math.Pi * mercatorRadius
)

// ToWebMercator returns p (lon/lat) in EPSG:3857 metres, latitudes clamped
// to the projection's range. The same input always gives the same output,
// so vertices two grids share stay shared.
func ToWebMercator(p orb.Point) orb.Point {
	lat := math.Max(-MercatorMaxLat, math.Min(MercatorMaxLat, p[1]))
	return orb.Point{
		p[0] * math.Pi / 180 * mercatorRadius,
		math.Log(math.Tan(math.Pi/4+lat*math.Pi/360)) * mercatorRadius,
	}
}

// MultiPolygonToWebMercator projects every vertex of mp into a new MultiPolygon.
func MultiPolygonToWebMercator(mp orb.MultiPolygon) orb.MultiPolygon {
	return project.MultiPolygon(mp.Clone(), ToWebMercator)
}

// Generaliser simplifies polygons that tile an area together, such as the
// grids of one level, so that they still tile it: boundaries are cut into
// arcs at the vertices where three or more grids meet (or where a boundary
// stops being shared), every arc is simplified once with Douglas-Peucker and
// its end points fixed, and each grid is reassembled from its arcs. Two grids
// that shared an edge therefore share its simplified form: no slivers, no
// gaps. A grid whose simplified form is invalid (arcs crossing) is repaired
// by GEOS along the same lines; a grid smaller than the tolerance may vanish.
//
// The result for a grid depends only on its own vertices and the edges that
// meet them, so a neighbourhood can be generalised again after an edit and
// match what the rest of the level already has, as long as the input holds
// every grid touching the ones whose result is used.
//
// A Generaliser holds a GEOS context and is not safe for concurrent use.
type Generaliser struct {
	checker *Checker
	// degree per vertex: its distinct neighbours along all edges, capped at 3.
	seen map[orb.Point]*vertexLinks
	keep []bool
}

type vertexLinks struct {
	a, b orb.Point
	n    int // distinct neighbours seen: 0, 1, 2 or 3 (three or more)
}

func (v *vertexLinks) add(q orb.Point) {
	switch {
	case v.n == 0:
		v.a, v.n = q, 1
	case v.n == 1 && q != v.a:
		v.b, v.n = q, 2
	case v.n == 2 && q != v.a && q != v.b:
		v.n = 3
	}
}

// NewGeneraliser returns a Generaliser with its own GEOS context.
func NewGeneraliser() *Generaliser {
	return &Generaliser{checker: NewChecker(), seen: map[orb.Point]*vertexLinks{}}
}

// Generalise returns polys simplified to tolerance (in their own units, e.g.
// Web Mercator metres), in the same order. A nil entry is a grid that
// vanished at this tolerance. Several tolerances over the same polygons can
// share one topology: see Topology.
func (g *Generaliser) Generalise(polys []orb.MultiPolygon, tolerance float64) []orb.MultiPolygon {
	return g.Topology(polys).Simplify(tolerance)
}

// Topology is the arc structure of a set of polygons, built once and
// simplified at any number of tolerances.
type Topology struct {
	g     *Generaliser
	polys []orb.MultiPolygon
	// nodes[i][j][k]: ring k of polygon j of input i, as its vertex indices
	// where arcs start (after repeated points are removed).
	rings [][][]ringArcs
}

type ringArcs struct {
	pts   []orb.Point // closed, without repeated consecutive points, rotated to start at a node
	nodes []int       // indexes into pts where arcs start; the last arc ends at len(pts)-1
}

// Topology finds the arcs of polys.
func (g *Generaliser) Topology(polys []orb.MultiPolygon) *Topology {
	clear(g.seen)
	links := make([]vertexLinks, 0, 1024)
	linkOf := func(p orb.Point) *vertexLinks {
		if v, ok := g.seen[p]; ok {
			return v
		}
		if len(links) == cap(links) {
			links = make([]vertexLinks, 0, 2*cap(links))
		}
		links = append(links, vertexLinks{})
		v := &links[len(links)-1]
		g.seen[p] = v
		return v
	}
	cleaned := make([][][][]orb.Point, len(polys))
	for i, mp := range polys {
		cleaned[i] = make([][][]orb.Point, len(mp))
		for j, poly := range mp {
			cleaned[i][j] = make([][]orb.Point, len(poly))
			for k, ring := range poly {
				pts := withoutRepeats(ring)
				cleaned[i][j][k] = pts
				for n := 0; n+1 < len(pts); n++ {
					linkOf(pts[n]).add(pts[n+1])
					linkOf(pts[n+1]).add(pts[n])
				}
			}
		}
	}
	t := &Topology{g: g, polys: polys, rings: make([][][]ringArcs, len(polys))}
	for i := range cleaned {
		t.rings[i] = make([][]ringArcs, len(cleaned[i]))
		for j := range cleaned[i] {
			t.rings[i][j] = make([]ringArcs, len(cleaned[i][j]))
			for k, pts := range cleaned[i][j] {
				t.rings[i][j][k] = g.arcsOf(pts)
			}
		}
	}
	return t
}

// withoutRepeats returns ring closed and without consecutive repeated points.
func withoutRepeats(ring orb.Ring) []orb.Point {
	out := make([]orb.Point, 0, len(ring)+1)
	for _, p := range ring {
		if len(out) == 0 || out[len(out)-1] != p {
			out = append(out, p)
		}
	}
	if len(out) > 0 && out[0] != out[len(out)-1] {
		out = append(out, out[0])
	}
	return out
}

// arcsOf rotates a closed ring to start at a node and lists where its arcs
// start. A ring without nodes (an island, or a grid inside one other grid)
// is one closed arc from its lowest vertex, which both rings sharing it find.
func (g *Generaliser) arcsOf(pts []orb.Point) ringArcs {
	if len(pts) < 4 {
		return ringArcs{pts: pts}
	}
	open := pts[:len(pts)-1]
	var nodes []int
	for i, p := range open {
		if v := g.seen[p]; v.n != 2 {
			nodes = append(nodes, i)
		}
	}
	start := 0
	if len(nodes) > 0 {
		start = nodes[0]
	} else {
		for i, p := range open {
			if lessPoint(p, open[start]) {
				start = i
			}
		}
		nodes = []int{start}
	}
	rotated := make([]orb.Point, 0, len(pts))
	rotated = append(rotated, open[start:]...)
	rotated = append(rotated, open[:start]...)
	rotated = append(rotated, open[start])
	for i := range nodes {
		nodes[i] -= start
	}
	return ringArcs{pts: rotated, nodes: nodes}
}

func lessPoint(a, b orb.Point) bool {
	return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1])
}

// Simplify returns every input polygon simplified to tolerance; nil for one
// that vanished.
func (t *Topology) Simplify(tolerance float64) []orb.MultiPolygon {
	return t.SimplifySome(tolerance, nil)
}

// SimplifySome is Simplify for the polygons marked in want only (all when
// want is nil); the others come back nil. The topology still holds them all,
// so the wanted ones keep their edges in common with the rest.
func (t *Topology) SimplifySome(tolerance float64, want []bool) []orb.MultiPolygon {
	out := make([]orb.MultiPolygon, len(t.polys))
	for i, polys := range t.rings {
		if want != nil && !want[i] {
			continue
		}
		var mp orb.MultiPolygon
		for _, rings := range polys {
			var poly orb.Polygon
			for k, ra := range rings {
				r := t.g.simplifyRing(ra, tolerance)
				if r == nil {
					if k == 0 {
						break // the shell collapsed: the whole part goes
					}
					continue
				}
				poly = append(poly, r)
			}
			if len(poly) > 0 {
				mp = append(mp, poly)
			}
		}
		if len(mp) > 0 {
			out[i] = t.g.valid(mp)
		}
	}
	return out
}

// simplifyRing simplifies each arc of a ring; nil when the ring collapses.
func (g *Generaliser) simplifyRing(ra ringArcs, tolerance float64) orb.Ring {
	if len(ra.pts) < 4 {
		return nil
	}
	ring := make(orb.Ring, 0, len(ra.pts))
	for a, from := range ra.nodes {
		to := len(ra.pts) - 1
		if a+1 < len(ra.nodes) {
			to = ra.nodes[a+1]
		}
		arc := g.simplifyArc(ra.pts[from:to+1], tolerance)
		if len(ring) > 0 {
			arc = arc[1:]
		}
		ring = append(ring, arc...)
	}
	if len(ring) < 4 || math.Abs(ringArea(ring)) <= tolerance*tolerance*1e-6 {
		return nil
	}
	return ring
}

func ringArea(r orb.Ring) float64 {
	var s float64
	for i := 0; i+1 < len(r); i++ {
		s += r[i][0]*r[i+1][1] - r[i+1][0]*r[i][1]
	}
	return s / 2
}

// simplifyArc runs Douglas-Peucker over an arc with both ends kept. The arc
// is always processed in one canonical direction, so the two rings sharing
// it (which run it in opposite directions) get the same points.
func (g *Generaliser) simplifyArc(arc []orb.Point, tolerance float64) []orb.Point {
	n := len(arc)
	if n <= 2 || tolerance <= 0 {
		return arc
	}
	reversed := lessPoint(arc[n-1], arc[0]) || (arc[0] == arc[n-1] && lessPoint(arc[n-2], arc[1]))
	if reversed {
		arc = slices.Clone(arc)
		slices.Reverse(arc)
	}
	if cap(g.keep) < n {
		g.keep = make([]bool, n)
	}
	keep := g.keep[:n]
	clear(keep)
	keep[0], keep[n-1] = true, true
	douglasPeucker(arc, 0, n-1, tolerance*tolerance, keep)
	out := make([]orb.Point, 0, 8)
	for i, k := range keep {
		if k {
			out = append(out, arc[i])
		}
	}
	if reversed {
		slices.Reverse(out)
	}
	return out
}

func douglasPeucker(pts []orb.Point, first, last int, tol2 float64, keep []bool) {
	type span struct{ a, b int }
	stack := []span{{first, last}}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s.b-s.a < 2 {
			continue
		}
		far, farD := -1, tol2
		for i := s.a + 1; i < s.b; i++ {
			if d := pointSegmentDist2(pts[i], pts[s.a], pts[s.b]); d > farD {
				far, farD = i, d
			}
		}
		if far < 0 {
			continue
		}
		keep[far] = true
		stack = append(stack, span{s.a, far}, span{far, s.b})
	}
}

// pointSegmentDist2 is the squared distance from p to the segment a-b (to a
// when a and b coincide, as at the ends of a closed arc).
func pointSegmentDist2(p, a, b orb.Point) float64 {
	return segmentDist2(a[0]-p[0], a[1]-p[1], b[0]-p[0], b[1]-p[1])
}

// valid returns mp if GEOS finds it valid, else its repair along the same
// lines (nil if nothing polygonal is left).
func (g *Generaliser) valid(mp orb.MultiPolygon) orb.MultiPolygon {
	geom, err := g.checker.toGEOS(mp)
	if err != nil {
		return nil
	}
	if geom.IsValid() {
		return mp
	}
	out, err := g.checker.repair(mp)
	if err != nil {
		return nil
	}
	return out
}
