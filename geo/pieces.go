package geo

import (
	"sort"

	"github.com/paulmach/orb"
)

// DefaultMaxPieceVertices bounds the vertices of one piece of a subdivided
// polygon: small enough that ray-casting a piece takes a few hundred
// nanoseconds, large enough that most grids stay in one piece.
const DefaultMaxPieceVertices = 256

// cutRing is a closed ring (first point repeated last) with, for each edge
// i -> i+1, whether it lies on the polygon's boundary (real) or on a line
// the subdivision cut along (not real). Both are read, never written: pts
// may be the caller's ring and real a slice every ring of a polygon shares
// (see subdividePolygon), each cut to its length so that an append copies.
type cutRing struct {
	pts  []orb.Point
	real []bool
}

// piecePolygon is one piece of a subdivided polygon: every ring of the
// polygon clipped to a rectangle. Under the even-odd rule the rings cover
// exactly the polygon inside the rectangle, holes included, so shells and
// holes need not be told apart.
type piecePolygon struct {
	rings []cutRing
	bound box
}

// subdividePolygon cuts mp into pieces of at most maxVertices vertices each
// by halving recursively at the median vertex along the longer side, with
// Sutherland-Hodgman clipping of every ring. Clipping a concave ring can
// leave zero-width walks along the cut line; they cancel out under the
// even-odd rule and are marked not real, so distances ignore them.
//
// The pieces read mp's closed rings where they lie (only a ring left open is
// copied, to close it): a piece is written into a store and let go before
// mp may change, and a cut makes new rings. Every edge of mp is real, one
// slice of flags read by all its rings. A copy of every ring was 780 MB of
// a province's load.
func subdividePolygon(mp orb.MultiPolygon, maxVertices int) []piecePolygon {
	var rings []cutRing
	longest := 0
	for _, poly := range mp {
		for _, r := range poly {
			longest = max(longest, len(r)+1)
		}
	}
	real := make([]bool, longest)
	for i := range real {
		real[i] = true
	}
	for _, poly := range mp {
		for _, r := range poly {
			if len(r) < 4 {
				continue
			}
			pts := []orb.Point(r[:len(r):len(r)])
			if pts[0] != pts[len(pts)-1] {
				pts = append(pts, pts[0]) // a new array, not the room after r
			}
			n := len(pts) - 1
			rings = append(rings, cutRing{pts, real[:n:n]})
		}
	}
	var out []piecePolygon
	split(rings, maxVertices, 0, &out)
	return out
}

func ringsBound(rings []cutRing) box {
	b := emptyBox()
	for _, r := range rings {
		for _, p := range r.pts {
			b.extend(box{p[0], p[1], p[0], p[1]})
		}
	}
	return b
}

func split(rings []cutRing, maxVertices, depth int, out *[]piecePolygon) {
	if len(rings) == 0 {
		return
	}
	n, largest := 0, 0
	for _, r := range rings {
		n += len(r.pts)
		largest = max(largest, len(r.pts))
	}
	b := ringsBound(rings)
	// Rings of a few points (a hole clipped to a rectangle, say) cannot be
	// made smaller by cutting: many of them are cut only while a cut parts
	// them (below).
	small := largest <= 8
	if n <= maxVertices || (small && len(rings) == 1) || depth >= 24 || (b.maxX == b.minX && b.maxY == b.minY) {
		*out = append(*out, piecePolygon{rings: rings, bound: b})
		return
	}
	axis := 0
	if b.maxY-b.minY > b.maxX-b.minX {
		axis = 1
	}
	// The median vertex balances the halves; when vertices bunch at one
	// coordinate (a long straight side), fall back to the middle.
	coords := make([]float64, 0, n)
	for _, r := range rings {
		for _, p := range r.pts {
			coords = append(coords, p[axis])
		}
	}
	sort.Float64s(coords)
	lo, hi := b.minX, b.maxX
	if axis == 1 {
		lo, hi = b.minY, b.maxY
	}
	c := coords[len(coords)/2]
	if c <= lo || c >= hi {
		c = (lo + hi) / 2
	}
	var below, above []cutRing
	halves := 0 // vertices
	for _, r := range rings {
		if cr, ok := clipRing(r, axis, c, false); ok {
			below = append(below, cr)
			halves += len(cr.pts)
		}
		if cr, ok := clipRing(r, axis, c, true); ok {
			above = append(above, cr)
			halves += len(cr.pts)
		}
	}
	// Thousands of small rings in one place (islets, a grid drawn as
	// squares) were one piece, scanned whole by every lookup there: they
	// are parted while a cut leaves each side fewer of them and adds at
	// most a quarter to their vertices (rings overlapping across the line,
	// bad data, would be copied into every piece below).
	if small && (len(below) == len(rings) || len(above) == len(rings) || halves > n+n/4) {
		*out = append(*out, piecePolygon{rings: rings, bound: b})
		return
	}
	split(below, maxVertices, depth+1, out)
	split(above, maxVertices, depth+1, out)
}

// clipRing keeps the part of a ring on one side of the line coord[axis] = c
// (keepAbove: coordinates >= c, else <= c). Points on the line belong to
// both sides, and an edge crossing it is cut at the same point for both.
// It reports false when nothing with area is left.
func clipRing(r cutRing, axis int, c float64, keepAbove bool) (cutRing, bool) {
	in := func(p orb.Point) bool {
		if keepAbove {
			return p[axis] >= c
		}
		return p[axis] <= c
	}
	allIn, noneIn := true, true
	for _, p := range r.pts {
		if in(p) {
			noneIn = false
		} else {
			allIn = false
		}
	}
	if allIn {
		return r, true
	}
	if noneIn {
		return cutRing{}, false
	}
	// Sutherland-Hodgman over the closed ring; flags[k] says whether the
	// edge ending at out[k] is real.
	var pts []orb.Point
	var flags []bool
	emit := func(p orb.Point, real bool) {
		pts = append(pts, p)
		flags = append(flags, real)
	}
	for i := 0; i+1 < len(r.pts); i++ {
		s, e := r.pts[i], r.pts[i+1]
		sIn, eIn := in(s), in(e)
		switch {
		case sIn && eIn:
			emit(e, r.real[i])
		case sIn && !eIn:
			emit(cut(s, e, axis, c), r.real[i])
		case !sIn && eIn:
			emit(cut(s, e, axis, c), false)
			emit(e, r.real[i])
		}
	}
	m := len(pts)
	if m < 3 {
		return cutRing{}, false
	}
	onLine := true
	for _, p := range pts {
		if p[axis] != c {
			onLine = false
			break
		}
	}
	if onLine {
		return cutRing{}, false
	}
	ring := cutRing{pts: make([]orb.Point, m+1), real: make([]bool, m)}
	copy(ring.pts, pts)
	ring.pts[m] = pts[0]
	for i := 0; i < m; i++ {
		ring.real[i] = flags[(i+1)%m]
	}
	return ring, true
}

// cut returns where the segment s-e crosses coord[axis] = c, computed from
// the endpoints in a fixed order so both sides of a cut get the same point.
func cut(s, e orb.Point, axis int, c float64) orb.Point {
	if s[0] > e[0] || (s[0] == e[0] && s[1] > e[1]) {
		s, e = e, s
	}
	other := 1 - axis
	t := (c - s[axis]) / (e[axis] - s[axis])
	var p orb.Point
	p[axis] = c
	p[other] = s[other] + t*(e[other]-s[other])
	return p
}
