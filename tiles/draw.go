package tiles

import (
	"math"

	"github.com/paulmach/orb"
)

// Drawer turns polygons in EPSG:3857 into one tile's integer coordinates as
// ST_AsMVTGeom(geom, ST_TileEnvelope(z, x, y), Extent, Buffer, true) does:
// clipped to the tile and its buffer, snapped to whole units (half to
// even, as C's rint), without repeated or collinear points, without rings
// that collapse, exterior rings wound with a positive area in tile
// coordinates and holes negative. A Drawer reuses its buffers: it is for
// one goroutine.
type Drawer struct {
	env    [4]float64 // the tile, EPSG:3857
	clip   [4]float64 // the tile and its buffer
	fx, fy float64

	a, b []orb.Point
	// Pts holds the drawn rings' x, y pairs, one after the other; Ends[i]
	// is where ring i ends in Pts (in pairs).
	Pts  []int32
	Ends []int
}

// NewDrawer returns a Drawer for tile t.
func NewDrawer(t Tile) *Drawer {
	d := &Drawer{}
	d.Reset(t)
	return d
}

// Reset makes d draw for tile t and forgets what it drew.
func (d *Drawer) Reset(t Tile) {
	d.env = t.Envelope()
	w, h := d.env[2]-d.env[0], d.env[3]-d.env[1]
	bx, by := w*Buffer/Extent, h*Buffer/Extent
	d.clip = [4]float64{d.env[0] - bx, d.env[1] - by, d.env[2] + bx, d.env[3] + by}
	d.fx, d.fy = Extent/w, Extent/h
	d.Clear()
}

// Clear forgets what d drew.
func (d *Drawer) Clear() { d.Pts, d.Ends = d.Pts[:0], d.Ends[:0] }

// Rings calls fn with each ring drawn, as x, y pairs without the closing
// point.
func (d *Drawer) Rings(fn func(pts []int32)) {
	start := 0
	for _, end := range d.Ends {
		fn(d.Pts[2*start : 2*end])
		start = end
	}
}

// Envelope returns the tile's extent, as Tile.Envelope.
func (d *Drawer) Envelope() [4]float64 { return d.env }

// MultiPolygon draws mp, each polygon's exterior before its holes, and
// tells whether anything is left of it in the tile. A polygon whose
// exterior collapses is left out with its holes.
func (d *Drawer) MultiPolygon(mp orb.MultiPolygon) bool {
	drew := false
	for _, p := range mp {
		if len(p) == 0 || !d.ring(p[0], true) {
			continue
		}
		drew = true
		for _, hole := range p[1:] {
			d.ring(hole, false)
		}
	}
	return drew
}

// Point returns p (EPSG:3857) in tile coordinates.
func (d *Drawer) Point(p orb.Point) (int32, int32) {
	return int32(math.RoundToEven((p[0] - d.env[0]) * d.fx)), int32(math.RoundToEven((d.env[3] - p[1]) * d.fy))
}

// ring clips r, snaps it and appends it wound as an exterior or a hole;
// false when nothing with an area is left.
func (d *Drawer) ring(r orb.Ring, exterior bool) bool {
	b := r.Bound()
	if b.Max[0] < d.clip[0] || b.Min[0] > d.clip[2] || b.Max[1] < d.clip[1] || b.Min[1] > d.clip[3] {
		return false
	}
	pts := []orb.Point(r)
	if len(pts) > 1 && pts[0] == pts[len(pts)-1] {
		pts = pts[:len(pts)-1]
	}
	if b.Min[0] < d.clip[0] || b.Max[0] > d.clip[2] || b.Min[1] < d.clip[1] || b.Max[1] > d.clip[3] {
		pts = d.clipRing(pts)
	}
	start := len(d.Pts)
	for _, p := range pts {
		x, y := d.Point(p)
		d.Pts = d.push(d.Pts, start, x, y)
	}
	// The ring closes on its first point: drop what repeats or lines up
	// across the seam.
	for len(d.Pts)-start >= 6 {
		n := len(d.Pts)
		if collinear(d.Pts[n-4], d.Pts[n-3], d.Pts[n-2], d.Pts[n-1], d.Pts[start], d.Pts[start+1]) {
			d.Pts = d.Pts[:n-2]
			continue
		}
		if collinear(d.Pts[n-2], d.Pts[n-1], d.Pts[start], d.Pts[start+1], d.Pts[start+2], d.Pts[start+3]) {
			copy(d.Pts[start:], d.Pts[start+2:])
			d.Pts = d.Pts[:n-2]
			continue
		}
		break
	}
	for n := len(d.Pts); n-start >= 4 && d.Pts[n-2] == d.Pts[start] && d.Pts[n-1] == d.Pts[start+1]; n = len(d.Pts) {
		d.Pts = d.Pts[:n-2]
	}
	area := ringArea(d.Pts[start:])
	if len(d.Pts)-start < 6 || area == 0 {
		d.Pts = d.Pts[:start]
		return false
	}
	if (area > 0) != exterior {
		reversePairs(d.Pts[start:])
	}
	d.Ends = append(d.Ends, len(d.Pts)/2)
	return true
}

// push appends x, y to the ring that starts at start in pts, unless it
// repeats the last point; a last point that lies on the line from the one
// before to x, y is replaced.
func (d *Drawer) push(pts []int32, start int, x, y int32) []int32 {
	n := len(pts)
	if n-start >= 2 && pts[n-2] == x && pts[n-1] == y {
		return pts
	}
	if n-start >= 4 && collinear(pts[n-4], pts[n-3], pts[n-2], pts[n-1], x, y) {
		pts[n-2], pts[n-1] = x, y
		return pts
	}
	return append(pts, x, y)
}

// collinear tells whether b lies on the line through a and c.
func collinear(ax, ay, bx, by, cx, cy int32) bool {
	return int64(bx-ax)*int64(cy-ay)-int64(by-ay)*int64(cx-ax) == 0
}

// ringArea is twice the signed area of the ring pts (x, y pairs, open).
func ringArea(pts []int32) int64 {
	var s int64
	n := len(pts) / 2
	for i := range n {
		j := (i + 1) % n
		s += int64(pts[2*i])*int64(pts[2*j+1]) - int64(pts[2*j])*int64(pts[2*i+1])
	}
	return s
}

func reversePairs(pts []int32) {
	for i, j := 0, len(pts)/2-1; i < j; i, j = i+1, j-1 {
		pts[2*i], pts[2*j] = pts[2*j], pts[2*i]
		pts[2*i+1], pts[2*j+1] = pts[2*j+1], pts[2*i+1]
	}
}

// clipRing clips the open ring pts to d.clip, one side after the other
// (Sutherland-Hodgman): a ring leaving and coming back along a side keeps
// the stretch of the side between, where the buffer hides it.
func (d *Drawer) clipRing(pts []orb.Point) []orb.Point {
	in := pts
	for side := range 4 {
		out := d.b[:0]
		if side%2 == 1 {
			out = d.a[:0]
		}
		for i, cur := range in {
			prev := in[(i+len(in)-1)%len(in)]
			ci, pi := d.inside(side, cur), d.inside(side, prev)
			if ci != pi {
				out = append(out, d.cross(side, prev, cur))
			}
			if ci {
				out = append(out, cur)
			}
		}
		if side%2 == 1 {
			d.a = out
		} else {
			d.b = out
		}
		in = out
		if len(in) == 0 {
			break
		}
	}
	return in
}

// inside tells whether p is inside side (0 west, 1 south, 2 east, 3
// north) of the clip box.
func (d *Drawer) inside(side int, p orb.Point) bool {
	switch side {
	case 0:
		return p[0] >= d.clip[0]
	case 1:
		return p[1] >= d.clip[1]
	case 2:
		return p[0] <= d.clip[2]
	}
	return p[1] <= d.clip[3]
}

// cross returns where the segment a-b crosses the line of side.
func (d *Drawer) cross(side int, a, b orb.Point) orb.Point {
	if side%2 == 0 {
		x := d.clip[side]
		return orb.Point{x, a[1] + (b[1]-a[1])*(x-a[0])/(b[0]-a[0])}
	}
	y := d.clip[side]
	return orb.Point{a[0] + (b[0]-a[0])*(y-a[1])/(b[1]-a[1]), y}
}

// Meets tells whether mp and the closed box b (minX, minY, maxX, maxY)
// share a point, as ST_Intersects does.
func Meets(mp orb.MultiPolygon, b [4]float64) bool {
	inBox := func(p orb.Point) bool { return p[0] >= b[0] && p[0] <= b[2] && p[1] >= b[1] && p[1] <= b[3] }
	for _, p := range mp {
		if len(p) == 0 {
			continue
		}
		pb := p[0].Bound()
		if pb.Max[0] < b[0] || pb.Min[0] > b[2] || pb.Max[1] < b[1] || pb.Min[1] > b[3] {
			continue
		}
		for _, r := range p {
			for i := 1; i < len(r); i++ {
				if inBox(r[i]) || segmentMeetsBox(r[i-1], r[i], b) {
					return true
				}
			}
		}
		// No boundary in the box: the box is inside the polygon or apart.
		c := orb.Point{(b[0] + b[2]) / 2, (b[1] + b[3]) / 2}
		if ringContains(p[0], c) {
			inHole := false
			for _, h := range p[1:] {
				if ringContains(h, c) {
					inHole = true
					break
				}
			}
			if !inHole {
				return true
			}
		}
	}
	return false
}

// segmentMeetsBox tells whether segment a-b crosses the closed box b
// (Liang-Barsky).
func segmentMeetsBox(a, c orb.Point, b [4]float64) bool {
	t0, t1 := 0.0, 1.0
	dx, dy := c[0]-a[0], c[1]-a[1]
	for _, e := range [4][2]float64{{-dx, a[0] - b[0]}, {dx, b[2] - a[0]}, {-dy, a[1] - b[1]}, {dy, b[3] - a[1]}} {
		p, q := e[0], e[1]
		if p == 0 {
			if q < 0 {
				return false
			}
			continue
		}
		r := q / p
		if p < 0 {
			if r > t1 {
				return false
			}
			t0 = max(t0, r)
		} else {
			if r < t0 {
				return false
			}
			t1 = min(t1, r)
		}
	}
	return t0 <= t1
}

// ringContains tells whether p is inside ring r (even-odd rule).
func ringContains(r orb.Ring, p orb.Point) bool {
	in := false
	for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
		a, c := r[i], r[j]
		if (a[1] > p[1]) != (c[1] > p[1]) && p[0] < (c[0]-a[0])*(p[1]-a[1])/(c[1]-a[1])+a[0] {
			in = !in
		}
	}
	return in
}
