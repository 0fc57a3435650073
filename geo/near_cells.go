package geo

import (
	"cmp"
	"math"
	"slices"
	"sync/atomic"
)

// nearCells is a lattice over a layer's extent that remembers, for each
// cell, the boundary chunks that can hold the nearest boundary edge of any
// point in the cell. A point outside every grid then measures those few
// chunks instead of walking the tree nearest first, which was most of what
// a lookup in water or beyond the district cost.
//
// A cell's list is made the first time a lookup falls in it, so a layer
// pays nothing for cells no point outside it ever reaches. Two lookups
// filling one cell at once make the same list and either is kept.
type nearCells struct {
	x0, y0, sx, sy float64 // the lattice's corner and a cell's size, in degrees
	nx, ny         int
	cells          []atomic.Pointer[[]nearChunk]
	// left is how many more bytes of lists the lattice may keep. A cell
	// whose list would not fit is answered by walking the tree: a client
	// sweeping points over a province's box holds no more than this.
	left atomic.Int64
	// filled counts the cells with a list, and held their bytes.
	filled, held atomic.Int64
}

// nearListBytes bounds the lists a lattice keeps: twice the bytes of its
// layer's finest grids' coordinates (a city's lattice then fills every
// cell lookups reach), at least 4 MB and at most 64 MB.
func nearListBytes(coordinateBytes int64) int64 {
	return min(max(2*coordinateBytes, 4<<20), 64<<20)
}

// nearChunk is a chunk in a cell's list with a lower bound of the squared
// distance in metres from any point in the cell to it. Lists run by bound,
// so a lookup stops at the first chunk bound farther than its best edge.
type nearChunk struct {
	chunk int32
	gap2  float32 // rounded down
}

// The lattice has about two cells per boundary chunk, within these bounds:
// a cell then spans a chunk or two. Its list holds the chunks within a
// band around its nearest edge, as wide as the cell: a few near the
// boundary, dozens (up to a few hundred) far out in water facing a long
// shore; a lookup reads them in order of their bound and stops early.
const (
	nearCellsMin = 256
	nearCellsMax = 1 << 20
)

// newNearCells lays a lattice over the tree's extent and a tenth of it
// beyond each side, where most points outside a layer fall. It returns nil
// when the tree is empty or the extent has no lattice (a layer at a pole).
func newNearCells(t *rtree, coordinateBytes int64) *nearCells {
	if t == nil || t.n == 0 {
		return nil
	}
	ext := t.extent()
	m := 0.1 * math.Max(ext.maxX-ext.minX, ext.maxY-ext.minY)
	ext = box{ext.minX - m, math.Max(ext.minY-m, -90), ext.maxX + m, math.Min(ext.maxY+m, 90)}
	kx, ky := MetresPerDegree((ext.minY + ext.maxY) / 2)
	w, h := (ext.maxX-ext.minX)*kx, (ext.maxY-ext.minY)*ky
	cells := min(max(2*t.n, nearCellsMin), nearCellsMax)
	side := math.Sqrt(w * h / float64(cells))
	sx, sy := side/kx, side/ky
	if !(sx > 0 && sy > 0) || math.IsInf(sx, 0) || math.IsInf(sy, 0) {
		return nil
	}
	nx := max(1, int(math.Ceil((ext.maxX-ext.minX)/sx)))
	ny := max(1, int(math.Ceil((ext.maxY-ext.minY)/sy)))
	if nx*ny > 2*nearCellsMax {
		return nil
	}
	c := &nearCells{x0: ext.minX, y0: ext.minY, sx: sx, sy: sy, nx: nx, ny: ny,
		cells: make([]atomic.Pointer[[]nearChunk], nx*ny)}
	c.left.Store(nearListBytes(coordinateBytes))
	return c
}

// bytes is what the lattice holds: its cells and their lists.
func (c *nearCells) bytes() int64 {
	if c == nil {
		return 0
	}
	return int64(len(c.cells))*8 + c.held.Load()
}

// cell is the lattice cell holding (x, y), if the lattice covers it.
func (c *nearCells) cell(x, y float64) (int, bool) {
	fx, fy := (x-c.x0)/c.sx, (y-c.y0)/c.sy
	if !(fx >= 0 && fx < float64(c.nx) && fy >= 0 && fy < float64(c.ny)) {
		return 0, false
	}
	return int(fy)*c.nx + int(fx), true
}

// bounds is cell i's box, grown by a millionth of a cell each side so that
// it holds every point cell maps to it despite rounding.
func (c *nearCells) bounds(i int) box {
	cx, cy := float64(i%c.nx), float64(i/c.nx)
	ex, ey := c.sx*1e-6, c.sy*1e-6
	return box{c.x0 + cx*c.sx - ex, c.y0 + cy*c.sy - ey, c.x0 + (cx+1)*c.sx + ex, c.y0 + (cy+1)*c.sy + ey}
}

// candidates returns the chunks that can hold the nearest boundary edge of
// a point in cell i, making the cell's list on first use; false when the
// lattice has no room left for it (walk the tree instead).
func (es *edgeSet) candidates(i int, st *PieceStore) ([]nearChunk, bool) {
	c := es.near
	if l := c.cells[i].Load(); l != nil {
		return *l, true
	}
	if c.left.Load() <= 0 {
		return nil, false
	}
	l := es.chunksNear(c.bounds(i), st)
	size := int64(cap(l))*8 + 48 // the list, its header and the pointer's box
	if c.left.Add(-size) < 0 {
		// Full: what is left is less than a list, and every lookup in an
		// empty cell would make one only to throw it away.
		c.left.Store(0)
		return nil, false
	}
	if !c.cells[i].CompareAndSwap(nil, &l) {
		// Another lookup filled it meanwhile: keep one.
		c.left.Add(size)
		return *c.cells[i].Load(), true
	}
	c.filled.Add(1)
	c.held.Add(size)
	return l, true
}

// chunksNear returns every chunk that can hold the nearest edge of some
// point in c. Over c, the metres per degree lie within [lo, hi]; distance
// to a segment is convex, so its largest value over c is at a corner. A
// chunk's farthest reach u, the least over its segments of their largest
// corner distance (at hi), bounds the nearest edge's distance for every
// point in c; any chunk whose box is farther than u from c (at lo) cannot
// hold it. The tree is walked with the least u found so far.
func (es *edgeSet) chunksNear(c box, st *PieceStore) []nearChunk {
	t := es.tree
	// A cell of the top or bottom row may reach past a pole, where a
	// degree of longitude has no length.
	kxLo, kyLo, kxHi, kyHi := metresPerDegreeOver(math.Max(c.minY, -90), math.Min(c.maxY, 90))
	corners := [4][2]float64{{c.minX, c.minY}, {c.maxX, c.minY}, {c.minX, c.maxY}, {c.maxX, c.maxY}}
	reach := func(chunk int32) float64 {
		ch := es.chunks[chunk]
		p := st.run(ch.start, ch.n)
		best := math.Inf(1)
		for i := 0; i+1 < len(p); i++ {
			far := 0.0
			for _, q := range corners {
				d := segmentDist2((p[i][0]-q[0])*kxHi, (p[i][1]-q[1])*kyHi, (p[i+1][0]-q[0])*kxHi, (p[i+1][1]-q[1])*kyHi)
				far = math.Max(far, d)
			}
			best = math.Min(best, far)
		}
		return best
	}
	gap := func(b box) float64 {
		dx := math.Max(0, math.Max(b.minX-c.maxX, c.minX-b.maxX)) * kxLo
		dy := math.Max(0, math.Max(b.minY-c.maxY, c.minY-b.maxY)) * kyLo
		return dx*dx + dy*dy
	}
	// Rounding in either bound must not drop a chunk: compare with slack.
	within := func(d2, u2 float64) bool { return d2 <= u2*(1+1e-9)+1e-12 }

	mx, my := (c.minX+c.maxX)/2, (c.minY+c.maxY)/2
	kx, ky := MetresPerDegree(my)
	u := reach(t.greedyLeaf(mx, my, kx, ky))
	type found struct {
		chunk int32
		d2    float64
	}
	var near []found
	type frame struct{ level, node int32 }
	top := int32(len(t.levels) - 1)
	stack := make([]frame, 0, 64)
	for n := range int32(t.levelSize(int(top))) {
		stack = append(stack, frame{top, n})
	}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		d2 := gap(t.boxes[t.levels[f.level]+f.node])
		if !within(d2, u) {
			continue
		}
		if f.level == 0 {
			near = append(near, found{f.node, d2})
			u = math.Min(u, reach(f.node))
			continue
		}
		first := f.node * rtreeFanout
		last := min(first+rtreeFanout, int32(t.levelSize(int(f.level-1))))
		for n := first; n < last; n++ {
			stack = append(stack, frame{f.level - 1, n})
		}
	}
	list := make([]nearChunk, 0, len(near))
	for _, f := range near {
		if within(f.d2, u) {
			g := float32(f.d2)
			if float64(g) > f.d2 {
				g = math.Nextafter32(g, 0)
			}
			list = append(list, nearChunk{f.chunk, g})
		}
	}
	slices.SortFunc(list, func(a, b nearChunk) int { return cmp.Compare(a.gap2, b.gap2) })
	return list
}

// metresPerDegreeOver bounds the metres per degree of longitude and
// latitude between latitudes y0 and y1: a degree of longitude shrinks and
// one of latitude grows away from the equator.
func metresPerDegreeOver(y0, y1 float64) (kxLo, kyLo, kxHi, kyHi float64) {
	kxa, kya := MetresPerDegree(y0)
	kxb, kyb := MetresPerDegree(y1)
	kxLo, kxHi = math.Min(kxa, kxb), math.Max(kxa, kxb)
	kyLo, kyHi = math.Min(kya, kyb), math.Max(kya, kyb)
	if y0 < 0 && y1 > 0 {
		kx0, ky0 := MetresPerDegree(0)
		kxHi, kyLo = math.Max(kxHi, kx0), math.Min(kyLo, ky0)
	}
	return kxLo, kyLo, kxHi, kyHi
}
