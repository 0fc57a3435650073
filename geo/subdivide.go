package geo

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/planar"
	"github.com/twpayne/go-geos"
)

// Subdivider cuts polygons into natural-looking cells that tile them: the
// Voronoi cells of seed points, with every internal edge bent by smooth noise,
// clipped to the parent. Cells are built by polygonizing one shared set of
// noded lines, so neighbours share their edges vertex for vertex and the
// cells' outer edges are the parent's own boundary. It holds a GEOS context
// and is not safe for concurrent use.
type Subdivider struct {
	ctx *geos.Context
	// Wiggle is how far an edge bends, as a fraction of its length.
	Wiggle float64
}

// NewSubdivider returns a Subdivider with its own GEOS context.
func NewSubdivider() *Subdivider { return &Subdivider{ctx: geos.NewContext(), Wiggle: 0.08} }

// Seeds places n points inside parent, spread out (no two closer than about
// half the spacing of a regular grid of n points), drawn from rnd.
func Seeds(parent orb.MultiPolygon, n int, rnd *rand.Rand) []orb.Point {
	b := parent.Bound()
	spacing := math.Sqrt(planar.Area(parent) / float64(n))
	minDist := 0.7 * spacing
	var seeds []orb.Point
	for tries := 0; len(seeds) < n; tries++ {
		if tries > 0 && tries%2000 == 0 {
			minDist *= 0.85 // crowded: accept closer seeds rather than loop forever
		}
		p := orb.Point{b.Min[0] + rnd.Float64()*(b.Max[0]-b.Min[0]), b.Min[1] + rnd.Float64()*(b.Max[1]-b.Min[1])}
		if !planar.MultiPolygonContains(parent, p) {
			continue
		}
		ok := true
		for _, s := range seeds {
			if math.Hypot(s[0]-p[0], s[1]-p[1]) < minDist {
				ok = false
				break
			}
		}
		if ok {
			seeds = append(seeds, p)
		}
	}
	return seeds
}

// Subdivide returns one cell per seed, in seed order; together the cells
// cover parent exactly and do not overlap. Seeds must lie inside parent and
// be distinct. A cell that would come out in pieces (a Voronoi cell crossing a
// bay of the parent) gives its far pieces to the neighbour sharing the
// longest edge with them, so every cell is one piece where the parent allows.
func (s *Subdivider) Subdivide(parent orb.MultiPolygon, seeds []orb.Point, rnd *rand.Rand) ([]orb.MultiPolygon, error) {
	if len(seeds) == 0 {
		return nil, fmt.Errorf("no seeds")
	}
	pg, err := s.toGEOS(parent)
	if err != nil {
		return nil, err
	}
	if len(seeds) == 1 {
		return []orb.MultiPolygon{parent}, nil
	}
	lines := []*geos.Geom{pg.Boundary()}
	b := parent.Bound()
	for _, e := range voronoiEdges(b.Pad(0.1*math.Max(b.Max[0]-b.Min[0], b.Max[1]-b.Min[1])), seeds) {
		lines = append(lines, s.ctx.NewLineString(s.bend(e, rnd)))
	}
	noded := s.ctx.NewCollection(geos.TypeIDGeometryCollection, lines).UnaryUnion()
	faces := s.ctx.Polygonize([]*geos.Geom{noded})

	seedGeoms := make([]*geos.Geom, len(seeds))
	for i, p := range seeds {
		seedGeoms[i] = s.ctx.NewPointFromXY(p[0], p[1])
	}
	var cellFaces []*geos.Geom
	var owner []int
	for i := range faces.NumGeometries() {
		f := faces.Geometry(i).Clone()
		if !pg.Contains(f.PointOnSurface()) {
			continue // a face outside the parent, closed off by an edge across a bay
		}
		o := -1
		for j, sg := range seedGeoms {
			if f.Contains(sg) {
				o = j
				break
			}
		}
		cellFaces = append(cellFaces, f)
		owner = append(owner, o)
	}
	giveToNeighbours(cellFaces, owner)

	cells := make([]orb.MultiPolygon, len(seeds))
	pieces := make([][]*geos.Geom, len(seeds))
	for i, f := range cellFaces {
		if owner[i] >= 0 {
			pieces[owner[i]] = append(pieces[owner[i]], f)
		}
	}
	// Split every cell into its connected parts; far parts (without the seed)
	// go to their best neighbour.
	var parts []*geos.Geom
	var partOwner []int
	for i := range seeds {
		if len(pieces[i]) == 0 {
			return nil, fmt.Errorf("seed %d got no area", i)
		}
		u := s.ctx.NewCollection(geos.TypeIDMultiPolygon, pieces[i]).UnaryUnion()
		for k := range u.NumGeometries() {
			part := u.Geometry(k).Clone()
			o := -1
			if part.Contains(seedGeoms[i]) || u.NumGeometries() == 1 {
				o = i
			}
			parts = append(parts, part)
			partOwner = append(partOwner, o)
		}
	}
	giveToNeighbours(parts, partOwner)
	for i := range seeds {
		var mine []*geos.Geom
		for k, p := range parts {
			if partOwner[k] == i {
				mine = append(mine, p)
			}
		}
		u := s.ctx.NewCollection(geos.TypeIDMultiPolygon, mine).UnaryUnion()
		mp, err := polygonalParts(u)
		if err != nil {
			return nil, err
		}
		cells[i] = mp
	}
	return cells, nil
}

// giveToNeighbours assigns every piece without an owner (-1) to the owner of
// the neighbouring piece it shares the longest edge with, repeating until
// none is left (pieces surrounded by unowned pieces wait a round).
func giveToNeighbours(pieces []*geos.Geom, owner []int) {
	for {
		changed, left := false, false
		for i, p := range pieces {
			if owner[i] >= 0 {
				continue
			}
			best, bestLen := -1, 0.0
			for j, q := range pieces {
				if owner[j] < 0 || j == i || !p.Intersects(q) {
					continue
				}
				if l := p.Boundary().Intersection(q.Boundary()).Length(); l > bestLen {
					best, bestLen = owner[j], l
				}
			}
			if best >= 0 {
				owner[i], changed = best, true
			} else {
				left = true
			}
		}
		if !left || !changed {
			return
		}
	}
}

// edge is a Voronoi edge between two seeds.
type edge struct{ a, b orb.Point }

// voronoiEdges returns each edge of the Voronoi diagram of seeds inside
// bound once, computed by clipping bound with the bisector half-planes.
func voronoiEdges(bound orb.Bound, seeds []orb.Point) []edge {
	var edges []edge
	for i, si := range seeds {
		// A convex polygon whose edge k (from vertex k to k+1) is labelled by
		// the seed whose bisector made it (-1 for the bounding box).
		poly := []orb.Point{bound.Min, {bound.Max[0], bound.Min[1]}, bound.Max, {bound.Min[0], bound.Max[1]}}
		labels := []int{-1, -1, -1, -1}
		for j, sj := range seeds {
			if j == i {
				continue
			}
			poly, labels = clipHalfPlane(poly, labels, si, sj, j)
		}
		for k, l := range labels {
			if l > i { // each edge once, from the lower seed's side
				edges = append(edges, edge{poly[k], poly[(k+1)%len(poly)]})
			}
		}
	}
	// A Voronoi vertex is computed once per cell around it, each time with
	// its own rounding: make the copies one point so the edges meet.
	eps := 1e-9 * math.Max(bound.Max[0]-bound.Min[0], bound.Max[1]-bound.Min[1])
	var vertices []orb.Point
	canonical := func(p orb.Point) orb.Point {
		for _, v := range vertices {
			if math.Abs(v[0]-p[0]) <= eps && math.Abs(v[1]-p[1]) <= eps {
				return v
			}
		}
		vertices = append(vertices, p)
		return p
	}
	for k := range edges {
		edges[k].a, edges[k].b = canonical(edges[k].a), canonical(edges[k].b)
	}
	return edges
}

// clipHalfPlane keeps the part of a convex polygon nearer to si than to sj;
// the new edge along the bisector is labelled j.
func clipHalfPlane(poly []orb.Point, labels []int, si, sj orb.Point, j int) ([]orb.Point, []int) {
	mid := orb.Point{(si[0] + sj[0]) / 2, (si[1] + sj[1]) / 2}
	d := orb.Point{sj[0] - si[0], sj[1] - si[1]}
	side := func(p orb.Point) float64 { return (p[0]-mid[0])*d[0] + (p[1]-mid[1])*d[1] }
	var out []orb.Point
	var outLabels []int
	n := len(poly)
	for k := range n {
		p, q := poly[k], poly[(k+1)%n]
		sp, sq := side(p), side(q)
		if sp <= 0 {
			out = append(out, p)
			outLabels = append(outLabels, labels[k])
		}
		if (sp < 0 && sq > 0) || (sp > 0 && sq < 0) {
			t := sp / (sp - sq)
			x := orb.Point{p[0] + t*(q[0]-p[0]), p[1] + t*(q[1]-p[1])}
			out = append(out, x)
			if sp < 0 {
				outLabels = append(outLabels, j) // leaving: the next edge runs along the bisector
			} else {
				outLabels = append(outLabels, labels[k])
			}
		}
	}
	return out, outLabels
}

// bend returns the edge as a polyline displaced sideways by smooth noise
// that fades to nothing at both ends, so edges still meet at their vertices.
func (s *Subdivider) bend(e edge, rnd *rand.Rand) [][]float64 {
	dx, dy := e.b[0]-e.a[0], e.b[1]-e.a[1]
	length := math.Hypot(dx, dy)
	n := 12
	nx, ny := -dy/length, dx/length
	amp := s.Wiggle * length
	p1, p2, p3 := rnd.Float64()*2*math.Pi, rnd.Float64()*2*math.Pi, rnd.Float64()*2*math.Pi
	coords := make([][]float64, 0, n+1)
	for k := 0; k <= n; k++ {
		t := float64(k) / float64(n)
		off := 0.0
		if k > 0 && k < n {
			off = amp * math.Sin(math.Pi*t) * (0.6*math.Sin(2*math.Pi*t+p1) + 0.3*math.Sin(4*math.Pi*t+p2) + 0.15*math.Sin(7*math.Pi*t+p3))
		}
		coords = append(coords, []float64{e.a[0] + t*dx + nx*off, e.a[1] + t*dy + ny*off})
	}
	// a + 1*(b-a) need not be b in floating point: end exactly where the
	// neighbouring edges start.
	coords[n] = []float64{e.b[0], e.b[1]}
	return coords
}

func (s *Subdivider) toGEOS(g orb.Geometry) (*geos.Geom, error) {
	b, err := wkb.Marshal(g)
	if err != nil {
		return nil, err
	}
	return s.ctx.NewGeomFromWKB(b)
}

// Renode rebuilds cells that tile an area so that every shared edge has the
// same vertices on both sides: all boundaries are noded together and
// polygonized once, and each face goes back to the cell containing it. Cells
// cut independently (each parent split on its own) otherwise disagree by
// rounding where their parents meet, which geodesic areas and strict
// coverage checks notice.
func (s *Subdivider) Renode(cells []orb.MultiPolygon) ([]orb.MultiPolygon, error) {
	lines := make([]*geos.Geom, 0, len(cells))
	for _, c := range cells {
		g, err := s.toGEOS(c)
		if err != nil {
			return nil, err
		}
		lines = append(lines, g.Boundary())
	}
	noded := s.ctx.NewCollection(geos.TypeIDGeometryCollection, lines).UnaryUnion()
	faces := s.ctx.Polygonize([]*geos.Geom{noded})
	bounds := make([]orb.Bound, len(cells))
	for i, c := range cells {
		bounds[i] = c.Bound()
	}
	pieces := make([]*geos.Geom, 0, faces.NumGeometries())
	owner := make([]int, 0, faces.NumGeometries())
	for i := range faces.NumGeometries() {
		f := faces.Geometry(i).Clone()
		pt := f.PointOnSurface()
		p := orb.Point{pt.X(), pt.Y()}
		o := -1
		for j, c := range cells {
			if bounds[j].Contains(p) && planar.MultiPolygonContains(c, p) {
				o = j
				break
			}
		}
		pieces = append(pieces, f)
		owner = append(owner, o)
	}
	giveToNeighbours(pieces, owner)
	mine := make([][]*geos.Geom, len(cells))
	for i, f := range pieces {
		if owner[i] >= 0 {
			mine[owner[i]] = append(mine[owner[i]], f)
		}
	}
	out := make([]orb.MultiPolygon, len(cells))
	for i := range cells {
		if len(mine[i]) == 0 {
			return nil, fmt.Errorf("cell %d lost all its area when renoded", i)
		}
		mp, err := polygonalParts(s.ctx.NewCollection(geos.TypeIDMultiPolygon, mine[i]).UnaryUnion())
		if err != nil {
			return nil, err
		}
		out[i] = mp
	}
	return out, nil
}

// Union returns the union of polygons that share edges exactly, such as the
// children of one parent after Renode.
func (s *Subdivider) Union(parts []orb.MultiPolygon) (orb.MultiPolygon, error) {
	gs := make([]*geos.Geom, 0, len(parts))
	for _, p := range parts {
		g, err := s.toGEOS(p)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	return polygonalParts(s.ctx.NewCollection(geos.TypeIDGeometryCollection, gs).UnaryUnion())
}
