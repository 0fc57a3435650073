package geo

import (
	"math"
	"slices"
)

// pieceCells is a lattice over a piece set's extent that lists, for each
// cell, the pieces whose boxes meet it. A lookup reads its cell's short
// list instead of descending the R-tree: one or two cache misses instead
// of one or more a level, which is most of what the tree cost once a
// province's tree no longer fits in the cache.
//
// A cell is about as large as the set's typical piece, so a piece is
// listed in about four cells. Queries wider than a few cells (a large
// accuracy) and queries meeting a crowded cell (a dense town among
// country pieces the cells were sized for) use the tree.
type pieceCells struct {
	x0, y0 float64 // the lattice's corner, in degrees
	ix, iy float64 // cells per degree
	nx, ny int32
	// The pieces meeting cell c are items[start[c]:start[c+1]], in tree
	// order.
	start []uint32
	items []int32
}

// pieceCellsQueryCells is the most cells a query may span and still be
// answered from the lattice.
const pieceCellsQueryCells = 4

// Bounds on the lattice.
const (
	// pieceCellsPerPiece: about this many cells a piece at most (cells
	// grow to keep it).
	pieceCellsPerPiece = 4
	// pieceCellsListingsMax: listings a piece on average, at most (cells
	// grow to keep it, pieceCellsTries times at most; a set that still
	// has more keeps its tree alone).
	pieceCellsListingsMax = 16
	pieceCellsTries       = 8
	// pieceCellsListMax: the mean length of the lists a query among the
	// pieces reads, at most, or the set keeps its tree alone; and the
	// longest list a query reads: a query meeting a longer one asks the
	// tree.
	pieceCellsListMax = 32
)

// newPieceCells lays the lattice over the leaf boxes of t (its pieces, by
// position). It returns nil when the set is empty or its pieces do not
// suit a lattice.
func newPieceCells(t *rtree) *pieceCells {
	if t == nil || t.n == 0 {
		return nil
	}
	boxes := t.boxes[:t.n]
	ext := t.extent()
	ws, hs := make([]float64, len(boxes)), make([]float64, len(boxes))
	for i, b := range boxes {
		ws[i], hs[i] = b.maxX-b.minX, b.maxY-b.minY
	}
	slices.Sort(ws)
	slices.Sort(hs)
	// A cell as large as the median piece; no smaller than a
	// millionth of the extent, so a set of points or slivers still
	// gets a lattice of bounded size.
	w, h := ext.maxX-ext.minX, ext.maxY-ext.minY
	sx, sy := max(ws[len(ws)/2], w*1e-6), max(hs[len(hs)/2], h*1e-6)
	if !(sx > 0 && sy > 0) || math.IsInf(w, 0) || math.IsInf(h, 0) {
		return nil
	}
	// Larger pieces among small ones would be listed in many cells: the
	// cells grow until the listings are few enough.
	var c *pieceCells
	listings := 0
	for range pieceCellsTries {
		if c = newLattice(ext, sx, sy, len(boxes)); c == nil {
			return nil
		}
		if listings = c.listings(boxes); listings <= pieceCellsListingsMax*len(boxes) {
			break
		}
		c, sx, sy = nil, 2*sx, 2*sy
	}
	if c == nil {
		return nil
	}
	// Count each cell's pieces, then place them: the pieces go in tree
	// order, so a cell's list reads boxes that lie together.
	counts := make([]uint32, int(c.nx)*int(c.ny)+1)
	for _, b := range boxes {
		c.eachCell(b, func(k int) { counts[k+1]++ })
	}
	// A query among the pieces reads a list as long as those of the
	// cells the pieces are in: when that is long (grown cells), the
	// tree does better.
	var sum2 float64
	for _, n := range counts {
		sum2 += float64(n) * float64(n)
	}
	if sum2/float64(listings) > pieceCellsListMax {
		return nil
	}
	for i := 1; i < len(counts); i++ {
		counts[i] += counts[i-1]
	}
	c.start = counts
	c.items = make([]int32, listings)
	next := slices.Clone(counts[:len(counts)-1])
	for i, b := range boxes {
		c.eachCell(b, func(k int) {
			c.items[next[k]] = int32(i)
			next[k]++
		})
	}
	return c
}

// newLattice lays cells of sx by sy degrees over ext, growing them when
// there would be more than pieceCellsPerPiece a piece (a sparse set, such
// as towns far apart, would otherwise have mostly empty cells; a set so
// sparse that its grown cells hold long lists keeps its tree).
func newLattice(ext box, sx, sy float64, pieces int) *pieceCells {
	w, h := ext.maxX-ext.minX, ext.maxY-ext.minY
	span := func(sx, sy float64) (float64, float64) {
		return max(1, math.Ceil(w/sx)), max(1, math.Ceil(h/sy))
	}
	nx, ny := span(sx, sy)
	if most := float64(pieceCellsPerPiece * pieces); nx*ny > most {
		f := math.Sqrt(nx * ny / most)
		sx, sy = sx*f, sy*f
		nx, ny = span(sx, sy)
	}
	if !(nx*ny <= math.MaxInt32) {
		return nil
	}
	return &pieceCells{x0: ext.minX, y0: ext.minY, ix: 1 / sx, iy: 1 / sy, nx: int32(nx), ny: int32(ny)}
}

// listings counts the cells each box is listed in, stopping once past
// what the lattice allows.
func (c *pieceCells) listings(boxes []box) int {
	n := 0
	for _, b := range boxes {
		x0, y0, x1, y1 := c.span(b)
		if n += int(x1-x0+1) * int(y1-y0+1); n > pieceCellsListingsMax*len(boxes) {
			break
		}
	}
	return n
}

// cellOf is the lattice column (or row) of a coordinate v, for a lattice
// starting at lo with inv cells per degree and n cells, clamped to the
// lattice. It is monotone: a box meeting another spans a cell of the
// other's span.
func cellOf(v, lo, inv float64, n int32) int32 {
	f := (v - lo) * inv
	switch {
	case !(f >= 0): // NaN falls here too
		return 0
	case f >= float64(n-1):
		return n - 1
	}
	return int32(f)
}

// span is the range of cells a box meets.
func (c *pieceCells) span(b box) (x0, y0, x1, y1 int32) {
	return cellOf(b.minX, c.x0, c.ix, c.nx), cellOf(b.minY, c.y0, c.iy, c.ny),
		cellOf(b.maxX, c.x0, c.ix, c.nx), cellOf(b.maxY, c.y0, c.iy, c.ny)
}

// eachCell calls f with the index of every cell a box meets.
func (c *pieceCells) eachCell(b box, f func(k int)) {
	x0, y0, x1, y1 := c.span(b)
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			f(int(y)*int(c.nx) + int(x))
		}
	}
}

// search appends to dst the pieces whose boxes meet q, each once; false,
// with dst as given, when q spans too many cells or meets a crowded one
// (ask the tree). pieces are the set's, by position in the tree the
// lattice was laid over, with that tree's boxes.
func (c *pieceCells) search(pieces []pieceRef, q box, dst []int32) ([]int32, bool) {
	x0, y0, x1, y1 := c.span(q)
	if int(x1-x0+1)*int(y1-y0+1) > pieceCellsQueryCells {
		return dst, false
	}
	given := len(dst)
	one := x0 == x1 && y0 == y1
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			k := int(y)*int(c.nx) + int(x)
			list := c.items[c.start[k]:c.start[k+1]]
			if len(list) > pieceCellsListMax {
				return dst[:given], false
			}
			for _, pi := range list {
				b := pieces[pi].b
				if !b.intersects(q) {
					continue
				}
				// A piece listed in several of the query's cells is
				// reported from the first of them: the cell where
				// its span and the query's begin to overlap.
				if !one && (max(cellOf(float64(b.minX), c.x0, c.ix, c.nx), x0) != x || max(cellOf(float64(b.minY), c.y0, c.iy, c.ny), y0) != y) {
					continue
				}
				dst = append(dst, pi)
			}
		}
	}
	return dst, true
}
