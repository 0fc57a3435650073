package geo

import (
	"container/heap"
	"math"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// LabelPoint returns the point where a grid's name reads best: the pole of
// inaccessibility of its largest part (the interior point farthest from
// every edge), found to within precision (or 1% of the part's width, if
// larger) by subdividing cells best-first
// (the polylabel method). The point is always inside the polygon, unlike a
// centroid on a crescent-shaped grid.
func LabelPoint(mp orb.MultiPolygon, precision float64) orb.Point {
	var poly orb.Polygon
	best := -1.0
	for _, p := range mp {
		if a := planar.Area(p); a > best {
			poly, best = p, a
		}
	}
	if len(poly) == 0 || len(poly[0]) < 4 {
		return orb.Point{}
	}
	b := poly[0].Bound()
	size := math.Min(b.Max[0]-b.Min[0], b.Max[1]-b.Min[1])
	if size == 0 {
		return poly[0][0]
	}
	// Closer than a hundredth of the grid's width changes nothing a reader sees.
	precision = math.Max(precision, size*0.01)
	h := size / 2
	cells := &cellHeap{}
	for x := b.Min[0]; x < b.Max[0]; x += size {
		for y := b.Min[1]; y < b.Max[1]; y += size {
			heap.Push(cells, newCell(orb.Point{x + h, y + h}, h, poly))
		}
	}
	// Start from the centroid, which is often good already.
	c, _ := planar.CentroidArea(poly)
	top := newCell(c, 0, poly)
	for cells.Len() > 0 {
		cell := heap.Pop(cells).(labelCell)
		if cell.d > top.d {
			top = cell
		}
		if cell.max-top.d <= precision {
			continue
		}
		h := cell.h / 2
		for _, o := range [4][2]float64{{-1, -1}, {1, -1}, {-1, 1}, {1, 1}} {
			heap.Push(cells, newCell(orb.Point{cell.c[0] + o[0]*h, cell.c[1] + o[1]*h}, h, poly))
		}
	}
	if top.d <= 0 {
		// Degenerate slivers: any interior-ish vertex will do.
		return poly[0][0]
	}
	return top.c
}

type labelCell struct {
	c      orb.Point
	h      float64 // half the cell's side
	d, max float64 // signed distance of the centre to the outline; best possible inside the cell
}

func newCell(c orb.Point, h float64, poly orb.Polygon) labelCell {
	d := signedDistance(c, poly)
	return labelCell{c: c, h: h, d: d, max: d + h*math.Sqrt2}
}

// signedDistance is the distance from p to the polygon's outline, negative
// outside.
func signedDistance(p orb.Point, poly orb.Polygon) float64 {
	inside := false
	best := math.Inf(1)
	for _, r := range poly {
		for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
			a, b := r[i], r[j]
			if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0]-a[0])*(p[1]-a[1])/(b[1]-a[1])+a[0] {
				inside = !inside
			}
			best = math.Min(best, pointSegmentDist2(p, a, b))
		}
	}
	d := math.Sqrt(best)
	if !inside {
		return -d
	}
	return d
}

type cellHeap []labelCell

func (h cellHeap) Len() int           { return len(h) }
func (h cellHeap) Less(i, j int) bool { return h[i].max > h[j].max }
func (h cellHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cellHeap) Push(x any)        { *h = append(*h, x.(labelCell)) }
func (h *cellHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
