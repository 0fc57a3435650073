package geo

import (
	"math"
	"sort"

	"github.com/paulmach/orb"
)

// box is an axis-aligned rectangle in degrees.
type box struct{ minX, minY, maxX, maxY float64 }

func emptyBox() box {
	return box{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
}

func (b *box) extend(o box) {
	b.minX = math.Min(b.minX, o.minX)
	b.minY = math.Min(b.minY, o.minY)
	b.maxX = math.Max(b.maxX, o.maxX)
	b.maxY = math.Max(b.maxY, o.maxY)
}

func (b box) intersects(o box) bool {
	return b.minX <= o.maxX && o.minX <= b.maxX && b.minY <= o.maxY && o.minY <= b.maxY
}

func (b box) containsXY(x, y float64) bool {
	return b.minX <= x && x <= b.maxX && b.minY <= y && y <= b.maxY
}

// box32 is a box in single precision, rounded outwards: it holds all of
// the box it was made from, and a little more (a step of single precision:
// under two metres at the coordinates of the Earth), in half the bytes. The boxes a lookup reads
// to skip pieces and chains are box32: a box is only ever a filter before
// the exact test of an edge, and a wider one only lets a few more edges
// be tested.
type box32 struct{ minX, minY, maxX, maxY float32 }

// outward is the smallest box32 holding b.
func outward(b box) box32 {
	return box32{Down32(b.minX), Down32(b.minY), Up32(b.maxX), Up32(b.maxY)}
}

// Down32 is the greatest float32 at or below v.
func Down32(v float64) float32 {
	f := float32(v)
	if float64(f) > v {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

// Up32 is the least float32 at or above v.
func Up32(v float64) float32 {
	f := float32(v)
	if float64(f) < v {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

// wide is b in double precision, exactly.
func (b box32) wide() box {
	return box{float64(b.minX), float64(b.minY), float64(b.maxX), float64(b.maxY)}
}

func (b box32) intersects(o box) bool {
	return float64(b.minX) <= o.maxX && o.minX <= float64(b.maxX) && float64(b.minY) <= o.maxY && o.minY <= float64(b.maxY)
}

func (b box32) containsXY(x, y float64) bool {
	return float64(b.minX) <= x && x <= float64(b.maxX) && float64(b.minY) <= y && y <= float64(b.maxY)
}

// rtreeFanout is the number of children per node: 16 keeps a tree of a few
// thousand items three levels deep with small nodes to scan.
const rtreeFanout = 8

// rtree is a static R-tree packed with Sort-Tile-Recursive. It is built once
// and never changed, so it has no per-node allocations: every level is a run
// of boxes in one slice, leaves first, and node i of a level covers entries
// [i*fanout, (i+1)*fanout) of the level below.
type rtree struct {
	boxes  []box
	levels []int32 // start of each level in boxes; the last level is the root
	n      int
}

// packRTree orders the items in STR order and returns the tree and the
// permutation: order[i] is the input index of the tree's item i.
func packRTree(items []box) (*rtree, []int32) {
	n := len(items)
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	strSort(items, order)
	t := &rtree{n: n, boxes: make([]box, 0, n+n/(rtreeFanout-1)+2)}
	for _, i := range order {
		t.boxes = append(t.boxes, items[i])
	}
	t.levels = append(t.levels, 0)
	start, size := 0, n
	for size > 1 {
		next := len(t.boxes)
		for i := 0; i < size; i += rtreeFanout {
			b := emptyBox()
			for j := i; j < size && j < i+rtreeFanout; j++ {
				b.extend(t.boxes[start+j])
			}
			t.boxes = append(t.boxes, b)
		}
		t.levels = append(t.levels, int32(next))
		start, size = next, len(t.boxes)-next
	}
	return t, order
}

// strSort sorts order so that consecutive runs of rtreeFanout items are
// spatially compact: slices by x of about sqrt(n/fanout) runs each, then y
// within each slice.
func strSort(items []box, order []int32) {
	n := len(order)
	if n <= rtreeFanout {
		return
	}
	cx := func(i int32) float64 { return items[i].minX + items[i].maxX }
	cy := func(i int32) float64 { return items[i].minY + items[i].maxY }
	sort.Slice(order, func(a, b int) bool { return cx(order[a]) < cx(order[b]) })
	leaves := (n + rtreeFanout - 1) / rtreeFanout
	slices := int(math.Ceil(math.Sqrt(float64(leaves))))
	per := slices * rtreeFanout
	for s := 0; s < n; s += per {
		part := order[s:min(s+per, n)]
		sort.Slice(part, func(a, b int) bool { return cy(part[a]) < cy(part[b]) })
	}
}

// extent is the box of everything in the tree (empty for an empty tree).
func (t *rtree) extent() box {
	ext := emptyBox()
	if t.n == 0 {
		return ext
	}
	top := len(t.levels) - 1
	for i := range t.levelSize(top) {
		ext.extend(t.boxes[int(t.levels[top])+i])
	}
	return ext
}

func (t *rtree) levelSize(l int) int {
	if l == len(t.levels)-1 {
		return len(t.boxes) - int(t.levels[l])
	}
	return int(t.levels[l+1] - t.levels[l])
}

// search appends to dst the items whose boxes intersect q. It allocates
// nothing when dst has room.
func (t *rtree) search(q box, dst []int32) []int32 {
	if t.n == 0 {
		return dst
	}
	type frame struct{ level, node int32 }
	var stack [256]frame
	sp := 0
	top := int32(len(t.levels) - 1)
	push := func(level, first, last int32) {
		base := t.levels[level]
		for c := first; c < last; c++ {
			if t.boxes[base+c].intersects(q) {
				stack[sp] = frame{level, c}
				sp++
			}
		}
	}
	push(top, 0, int32(t.levelSize(int(top))))
	for sp > 0 {
		sp--
		f := stack[sp]
		if f.level == 0 {
			dst = append(dst, f.node)
			continue
		}
		below := f.level - 1
		first := f.node * rtreeFanout
		push(below, first, min(first+rtreeFanout, int32(t.levelSize(int(below)))))
	}
	return dst
}

// nodeDist is a tree node waiting in a nearest-first walk, with the
// squared distance in metres from the query point to its box.
type nodeDist struct {
	level, node int32
	d2          float64
}

// distM2 is the squared distance in metres from (x, y) to the box, with kx
// and ky the metres per degree of longitude and latitude near the point.
func (b box) distM2(x, y, kx, ky float64) float64 {
	var dx, dy float64
	if x < b.minX {
		dx = (b.minX - x) * kx
	} else if x > b.maxX {
		dx = (x - b.maxX) * kx
	}
	if y < b.minY {
		dy = (b.minY - y) * ky
	} else if y > b.maxY {
		dy = (y - b.maxY) * ky
	}
	return dx*dx + dy*dy
}

// nodeHeap is a binary min-heap on d2, kept in a caller's slice so a walk
// allocates nothing once the slice has grown.
type nodeHeap []nodeDist

func (h *nodeHeap) push(n nodeDist) {
	*h = append(*h, n)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if q[p].d2 <= q[i].d2 {
			break
		}
		q[p], q[i] = q[i], q[p]
		i = p
	}
}

func (h *nodeHeap) pop() nodeDist {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q) && q[l].d2 < q[m].d2 {
			m = l
		}
		if r < len(q) && q[r].d2 < q[m].d2 {
			m = r
		}
		if m == i {
			break
		}
		q[m], q[i] = q[i], q[m]
		i = m
	}
	*h = q
	return top
}

// pushChildren queues the children of a node (or the roots, for level -1
// meaning "above the root") with their box distances, leaving out those
// farther than limit2.
func (t *rtree) pushChildren(h *nodeHeap, level, node int32, x, y, kx, ky, limit2 float64) {
	var below, first, last int32
	if level < 0 {
		below = int32(len(t.levels) - 1)
		first, last = 0, int32(t.levelSize(int(below)))
	} else {
		below = level - 1
		first = node * rtreeFanout
		last = min(first+rtreeFanout, int32(t.levelSize(int(below))))
	}
	base := t.levels[below]
	for c := first; c < last; c++ {
		if d2 := t.boxes[base+c].distM2(x, y, kx, ky); d2 <= limit2 {
			h.push(nodeDist{below, c, d2})
		}
	}
}

// greedyLeaf descends from the root always into the child whose box is
// nearest, returning a leaf item that is close though not always closest:
// a first bound for a nearest-first walk.
func (t *rtree) greedyLeaf(x, y, kx, ky float64) int32 {
	level := int32(len(t.levels) - 1)
	first, last := int32(0), int32(t.levelSize(int(level)))
	for {
		base := t.levels[level]
		best, bestD := first, math.Inf(1)
		for c := first; c < last; c++ {
			if d := t.boxes[base+c].distM2(x, y, kx, ky); d < bestD {
				best, bestD = c, d
			}
		}
		if level == 0 {
			return best
		}
		level--
		first = best * rtreeFanout
		last = min(first+rtreeFanout, int32(t.levelSize(int(level))))
	}
}

// BoxIndex finds which of a fixed list of boxes meet a box: a packed
// R-tree over them, built once.
type BoxIndex struct {
	tree  *rtree
	order []int32 // the tree's item i is the list's item order[i]
}

// NewBoxIndex indexes bounds (in any one coordinate system).
func NewBoxIndex(bounds []orb.Bound) *BoxIndex {
	items := make([]box, len(bounds))
	for i, b := range bounds {
		items[i] = box{b.Min[0], b.Min[1], b.Max[0], b.Max[1]}
	}
	t, order := packRTree(items)
	return &BoxIndex{tree: t, order: order}
}

// Search appends to dst the positions in the indexed list of the boxes
// that meet b, touching included, in no particular order. It allocates
// nothing when dst has room.
func (x *BoxIndex) Search(b orb.Bound, dst []int32) []int32 {
	start := len(dst)
	dst = x.tree.search(box{b.Min[0], b.Min[1], b.Max[0], b.Max[1]}, dst)
	for i := start; i < len(dst); i++ {
		dst[i] = x.order[dst[i]]
	}
	return dst
}
