package tiles

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
	"github.com/twpayne/go-geos"
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

	gctx *geos.Context // for polygons reaching past the buffer
	wkb  []byte
	a, b []orb.Point
	dev  []float64
	orig []int32
	nbs  map[uint64]uint64 // for Thin
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

// Rings calls fn with rings from to to (by the order drawn), as x, y
// pairs without the closing point.
func (d *Drawer) Rings(from, to int, fn func(pts []int32)) {
	for r := from; r < to; r++ {
		start := 0
		if r > 0 {
			start = d.Ends[r-1]
		}
		fn(d.Pts[2*start : 2*d.Ends[r]])
	}
}

// Envelope returns the tile's extent, as Tile.Envelope.
func (d *Drawer) Envelope() [4]float64 { return d.env }

// MultiPolygon draws mp, each polygon's exterior before its holes, and
// tells whether anything is left of it in the tile. A polygon whose
// exterior collapses is left out with its holes. A polygon reaching past
// the buffer is cut and snapped by GEOS (as ST_AsMVTGeom does), which
// keeps it valid where it leaves and comes back along the cut.
func (d *Drawer) MultiPolygon(mp orb.MultiPolygon) bool {
	drew := false
	for _, p := range mp {
		if len(p) == 0 {
			continue
		}
		switch d.place(p[0].Bound()) {
		case outside:
			continue
		case inside:
			if d.points(p[0], true) {
				drew = true
				for _, hole := range p[1:] {
					d.points(hole, false)
				}
			}
			continue
		}
		// A polygon crossing the buffer's outline once out and once in,
		// with no hole across it, is cut in one piece (Sutherland-Hodgman);
		// the others by GEOS, which keeps pieces apart that the outline
		// separates.
		if d.crossings(p[0]) <= 2 && !d.holeAcross(p) {
			if pts := d.clipRing(p[0]); d.points(pts, true) {
				drew = true
				for _, hole := range p[1:] {
					if d.place(hole.Bound()) == inside {
						d.points(hole, false)
					}
				}
			}
			continue
		}
		if d.cut(p) {
			drew = true
		}
	}
	return drew
}

// Where a box lies against the buffer's outline.
const (
	outside = iota
	inside
	across
)

// place tells where box b lies: wholly outside the buffer, wholly inside,
// or across its outline.
func (d *Drawer) place(b orb.Bound) int {
	switch {
	case b.Max[0] < d.clip[0] || b.Min[0] > d.clip[2] || b.Max[1] < d.clip[1] || b.Min[1] > d.clip[3]:
		return outside
	case b.Min[0] >= d.clip[0] && b.Max[0] <= d.clip[2] && b.Min[1] >= d.clip[1] && b.Max[1] <= d.clip[3]:
		return inside
	}
	return across
}

// holeAcross tells whether a hole of p crosses the outline of the buffer.
func (d *Drawer) holeAcross(p orb.Polygon) bool {
	for _, h := range p[1:] {
		if d.place(h.Bound()) == across {
			return true
		}
	}
	return false
}

// crossings counts how often ring r crosses the outline of the buffer,
// up to 3.
func (d *Drawer) crossings(r orb.Ring) int {
	n := 0
	in := func(p orb.Point) bool {
		return p[0] >= d.clip[0] && p[0] <= d.clip[2] && p[1] >= d.clip[1] && p[1] <= d.clip[3]
	}
	for i := 1; i < len(r) && n <= 2; i++ {
		a, b := in(r[i-1]), in(r[i])
		switch {
		case a != b:
			n++
		case !a && segmentMeetsBox(r[i-1], r[i], d.clip):
			n += 2 // through the buffer, or along its outline
		}
	}
	return n
}

// Point returns p (EPSG:3857) in tile coordinates.
func (d *Drawer) Point(p orb.Point) (int32, int32) {
	return int32(math.RoundToEven((p[0] - d.env[0]) * d.fx)), int32(math.RoundToEven((d.env[3] - p[1]) * d.fy))
}

// points snaps the ring r (closed or not), within the buffer, and appends
// it wound as an exterior or a hole; false when nothing with an area is
// left.
func (d *Drawer) points(r []orb.Point, exterior bool) bool {
	start := len(d.Pts)
	for _, p := range r {
		x, y := d.Point(p)
		d.Pts = push(d.Pts, start, x, y)
	}
	return d.close(start, exterior)
}

// cut draws polygon p cut to the buffer by GEOS, which keeps it valid
// where it leaves and comes back along the cut. The polygon goes to GEOS
// and back as WKB: one call each way.
func (d *Drawer) cut(p orb.Polygon) bool {
	if d.gctx == nil {
		d.gctx = geos.NewContext()
	}
	w := append(d.wkb[:0], 1)
	w = binary.LittleEndian.AppendUint32(w, 3)
	w = binary.LittleEndian.AppendUint32(w, uint32(len(p)))
	for _, r := range p {
		w = binary.LittleEndian.AppendUint32(w, uint32(len(r)))
		for _, pt := range r {
			w = binary.LittleEndian.AppendUint64(w, math.Float64bits((pt[0]-d.env[0])*d.fx))
			w = binary.LittleEndian.AppendUint64(w, math.Float64bits((d.env[3]-pt[1])*d.fy))
		}
	}
	d.wkb = w
	out, err := d.clipGEOS(w)
	if err != nil {
		// Drawn anyway, as one piece with the holes inside the buffer: a
		// grid missing from its tile would be worse than a ring doubling
		// back along the buffer or a hole across it drawn filled.
		if pts := d.clipRing(p[0]); d.points(pts, true) {
			for _, hole := range p[1:] {
				if d.place(hole.Bound()) == inside {
					d.points(hole, false)
				}
			}
			return true
		}
		return false
	}
	drew, _ := d.polygonsWKB(out)
	return drew
}

// clipGEOS cuts the polygon in WKB w (tile units) to the buffer with GEOS,
// and returns the result as WKB. GEOS reports failure by panicking in
// go-geos: that is returned as an error.
func (d *Drawer) clipGEOS(w []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("GEOS could not cut a polygon to the tile: %v", r)
		}
	}()
	// (go-geos frees both geometries when they are collected: this
	// version has no explicit Destroy.)
	g, err := d.gctx.NewGeomFromWKB(w)
	if err != nil {
		return nil, err
	}
	return g.ClipByRect(-Buffer, -Buffer, Extent+Buffer, Extent+Buffer).ToWKB(), nil
}

// polygonsWKB appends the polygons of a WKB geometry (a polygon, or the
// polygons of a multipolygon or collection), its coordinates snapped to
// whole units; points and lines a cut leaves are skipped. It returns
// whether a polygon was drawn, and the bytes after the geometry.
func (d *Drawer) polygonsWKB(b []byte) (bool, []byte) {
	if len(b) < 9 {
		return false, nil
	}
	var order binary.ByteOrder = binary.LittleEndian
	if b[0] == 0 {
		order = binary.BigEndian
	}
	kind, count := order.Uint32(b[1:])%1000, int(order.Uint32(b[5:]))
	b = b[9:]
	drew := false
	switch kind {
	case 1: // a point: two doubles in place of the count
		return false, b[min(len(b), 12):]
	case 2:
		return false, b[min(len(b), 16*count):]
	case 3:
		keep := true
		for i := range count {
			if len(b) < 4 {
				return drew, nil
			}
			n := int(order.Uint32(b))
			b = b[4:]
			if len(b) < 16*n {
				return drew, nil
			}
			if keep {
				start := len(d.Pts)
				for j := range n {
					x := math.Float64frombits(order.Uint64(b[16*j:]))
					y := math.Float64frombits(order.Uint64(b[16*j+8:]))
					d.Pts = push(d.Pts, start, int32(math.RoundToEven(x)), int32(math.RoundToEven(y)))
				}
				ok := d.close(start, i == 0)
				if i == 0 {
					keep, drew = ok, ok
				}
			}
			b = b[16*n:]
		}
	case 4, 5, 6, 7:
		for range count {
			var ok bool
			ok, b = d.polygonsWKB(b)
			drew = drew || ok
		}
	}
	return drew, b
}

// close ends the ring begun at start in d.Pts: drops its closing point and
// what repeats or lines up across the seam, and winds it as an exterior or
// a hole; false, dropping it, when it has no area left.
func (d *Drawer) close(start int, exterior bool) bool {
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

// Thin drops, from every ring drawn since Clear, the vertices that lie
// within half a unit of the line between their neighbours (a sixteenth of a
// pixel on a 512-pixel tile), never two next to each other. Edges that
// grids share stay shared: a vertex goes only where every ring through it
// has the same two neighbours, and of two neighbours that could both go,
// the nearer to its line goes (the first by x, then y, when as near), so
// every ring makes the same choice whichever way it runs.
func (d *Drawer) Thin() {
	// The neighbours of each vertex, as a hash of the pair; sharedBad
	// where two rings through it disagree.
	if d.nbs == nil {
		d.nbs = map[uint64]uint64{}
	}
	clear(d.nbs)
	start := 0
	for _, end := range d.Ends {
		pts := d.Pts[2*start : 2*end]
		n := len(pts) / 2
		for i := range n {
			p, q := (i+n-1)%n, (i+1)%n
			k := pointKey(pts[2*i], pts[2*i+1])
			a, b := pointKey(pts[2*p], pts[2*p+1]), pointKey(pts[2*q], pts[2*q+1])
			if a > b {
				a, b = b, a
			}
			h := mix(a*0x9e3779b97f4a7c15^b) | 1 // never sharedBad
			if got, ok := d.nbs[k]; !ok {
				d.nbs[k] = h
			} else if got != h {
				d.nbs[k] = sharedBad
			}
		}
		start = end
	}
	start, w := 0, 0
	for r, end := range d.Ends {
		kept := d.thin(start, end, w)
		d.Ends[r] = w + kept
		start, w = end, w+kept
	}
	d.Pts = d.Pts[:2*w]
}

const sharedBad = 0

func pointKey(x, y int32) uint64 { return uint64(uint32(x))<<32 | uint64(uint32(y)) }

// mix is the finaliser of splitmix64.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// thin thins the ring of vertices start to end (see Thin) and writes what
// is kept from vertex w on (w <= start); returns how many are kept.
func (d *Drawer) thin(start, end, w int) int {
	orig := append(d.orig[:0], d.Pts[2*start:2*end]...)
	d.orig = orig
	n := len(orig) / 2
	out := d.Pts[2*w:]
	if n < 5 {
		copy(out, orig)
		return n
	}
	dev := d.dev[:0]
	for i := range n {
		p, q := (i+n-1)%n, (i+1)%n
		v := math.Inf(1)
		if d.nbs[pointKey(orig[2*i], orig[2*i+1])] != sharedBad {
			ax, ay, bx, by, cx, cy := int64(orig[2*p]), int64(orig[2*p+1]), int64(orig[2*i]), int64(orig[2*i+1]), int64(orig[2*q]), int64(orig[2*q+1])
			cr := (bx-ax)*(cy-ay) - (by-ay)*(cx-ax)
			if l2 := (cx-ax)*(cx-ax) + (cy-ay)*(cy-ay); l2 > 0 && 4*cr*cr <= l2 {
				v = float64(cr*cr) / float64(l2)
			}
		}
		dev = append(dev, v)
	}
	d.dev = dev
	less := func(i, j int) bool {
		if dev[i] != dev[j] {
			return dev[i] < dev[j]
		}
		if orig[2*i] != orig[2*j] {
			return orig[2*i] < orig[2*j]
		}
		return orig[2*i+1] < orig[2*j+1]
	}
	k := 0
	for i := range n {
		if !math.IsInf(dev[i], 1) && less(i, (i+n-1)%n) && less(i, (i+1)%n) {
			continue
		}
		out[2*k], out[2*k+1] = orig[2*i], orig[2*i+1]
		k++
	}
	// A ring so small that thinning would flatten or turn it stays whole.
	if a, b := ringArea(orig), ringArea(out[:2*k]); k < 3 || a == 0 || (a > 0) != (b > 0) || b == 0 {
		copy(out, orig)
		return n
	}
	return k
}

// push appends x, y to the ring that starts at start in pts, unless it
// repeats the last point; a last point that lies on the line from the one
// before to x, y is replaced.
func push(pts []int32, start int, x, y int32) []int32 {
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
		if planar.PolygonContains(p, orb.Point{(b[0] + b[2]) / 2, (b[1] + b[3]) / 2}) {
			return true
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
