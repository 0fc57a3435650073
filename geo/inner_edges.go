package geo

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/paulmach/orb"
)

// edgeKey is a real edge as innerEdges sorts it: its position and
// direction, and a key equal for the two directions of one segment. A
// province has tens of millions of edges, and keys holding the coordinates
// (40 bytes) were the largest thing a build held; edges of one key are
// compared by their coordinates.
//
// The key's top bits are the lattice cell of the segment's first end (in
// Z order), the rest a hash of both ends: sorted, edges of one place come
// together, and so do the points the comparisons read. Sorted by hash
// alone, every comparison read points from anywhere in the layer, a cache
// miss each: a third of a province's build.
type edgeKey struct {
	key uint64
	i   int32
	fwd bool
}

// edgeCellBits is the bits of the key given to the cell: 12 a side.
const edgeCellBits = 24

// edgeBucketBits splits the keys by the top bits of their cell into
// buckets (a 64 by 64 lattice over the layer), which are made, sorted and
// compared a run at a time.
const edgeBucketBits = 12

// edgeRoundBudget is how many keys a round of innerEdges holds in a
// build: a sixteenth of the edges, or 2^19 (8 MB) if more. All the keys
// at once (16 bytes an edge) were the peak of a province's build, half a
// gigabyte over its index. A bucket beyond the budget is a round of its
// own: a layer crowded into a few of the lattice's cells (a city within a
// province's extent, or one grid drawn far from the rest) holds more.
func edgeRoundBudget(edges int) int { return max(edges/16, 1<<19) }

// innerEdges finds the real edges of the set's pieces that another edge
// runs along the other way, between the same two points: inside the
// coverage. It returns them as bits by position (a bit a point, by slab:
// see bitAt), and how many edges the set has.
//
// Edges are counted by bucket first. Then, round by round, the keys of a
// run of buckets within budget(the real edges) are made (from the pieces
// whose box reaches them), each bucket sorted and compared apart, on every
// core.
func innerEdges(s *pieceSet, budget func(edges int) int) (inner [][]uint64, edges int) {
	st := s.st
	inner = make([][]uint64, len(st.slabs))
	for k := range inner {
		inner[k] = make([]uint64, (len(st.slabs[k])+63)/64)
	}
	const buckets = 1 << edgeBucketBits
	cell := cellKey(s.tree)
	bucketOf := func(p orb.Point) int { return int(cell(p) >> (edgeCellBits - edgeBucketBits)) }
	// A piece's edges start in cells between those of its box's corners:
	// the Z order never decreases along either axis.
	reaches := func(pi int, lo, hi int) bool {
		b := s.tree.boxes[pi]
		return bucketOf(orb.Point{b.minX, b.minY}) < hi && bucketOf(orb.Point{b.maxX, b.maxY}) >= lo
	}
	// eachEdge calls f with every real edge of the pieces [p0, p1) that
	// reach buckets [lo, hi), its ends in order and its bucket.
	eachEdge := func(p0, p1, lo, hi int, f func(i int32, a, b orb.Point, fwd bool, bucket int)) {
		for pi := p0; pi < p1; pi++ {
			if !reaches(pi, lo, hi) {
				continue
			}
			p := s.pieces[pi]
			for _, c := range st.chainsOf(p.c0, p.c1) {
				pts := st.chainPoints(c)
				for e := range int32(c.n) {
					i := c.start + e
					if !c.isReal(e) {
						continue
					}
					a, b, fwd := edgeEnds(pts[e], pts[e+1])
					if k := bucketOf(a); k >= lo && k < hi {
						f(i, a, b, fwd, k)
					}
				}
			}
		}
	}

	workers := runtime.GOMAXPROCS(0)
	parts := splitRange(len(s.pieces), workers)
	counts := make([][buckets]int, len(parts)) // by part, by bucket
	edgeCounts := make([]int, len(parts))
	onEach(len(parts), func(w int) {
		for _, p := range s.pieces[parts[w][0]:parts[w][1]] {
			for _, c := range st.chainsOf(p.c0, p.c1) {
				edgeCounts[w] += int(c.n)
			}
		}
		eachEdge(parts[w][0], parts[w][1], 0, buckets, func(_ int32, _, _ orb.Point, _ bool, k int) { counts[w][k]++ })
	})
	total := 0
	byBucket := make([]int, buckets)
	for w := range parts {
		edges += edgeCounts[w]
		for k := range buckets {
			byBucket[k] += counts[w][k]
			total += counts[w][k]
		}
	}

	most := budget(total)
	var keys []edgeKey
	ends := func(i int32) (a, b orb.Point) {
		a, b, _ = edgeEnds(st.at(i), st.at(i+1))
		return a, b
	}
	for lo := 0; lo < buckets; {
		// The round: buckets [lo, hi), at least one, within the budget.
		hi, n := lo+1, byBucket[lo]
		for hi < buckets && n+byBucket[hi] <= most {
			n += byBucket[hi]
			hi++
		}
		if cap(keys) < n {
			keys = make([]edgeKey, n)
		}
		keys = keys[:n]
		// Bucket by bucket, and within one part by part: next[w][k] is
		// where part w's next key of bucket k goes.
		starts := make([]int, hi-lo+1)
		next := make([][buckets]int, len(parts))
		at := 0
		for k := lo; k < hi; k++ {
			starts[k-lo] = at
			for w := range parts {
				next[w][k] = at
				at += counts[w][k]
			}
		}
		starts[hi-lo] = at
		onEach(len(parts), func(w int) {
			eachEdge(parts[w][0], parts[w][1], lo, hi, func(i int32, a, b orb.Point, fwd bool, k int) {
				keys[next[w][k]] = edgeKey{cell(a)<<(64-edgeCellBits) | edgeHash(a, b)>>edgeCellBits, i, fwd}
				next[w][k]++
			})
		})
		var taken atomic.Int32
		onEach(min(workers, hi-lo), func(int) {
			for k := int(taken.Add(1)) - 1; k < hi-lo; k = int(taken.Add(1)) - 1 {
				markInner(keys[starts[k]:starts[k+1]], ends, inner)
			}
		})
		lo = hi
	}
	return inner, edges
}

// markInner sorts one bucket's keys and sets the inner bit of every edge
// another edge of its key runs along the other way.
func markInner(part []edgeKey, ends func(int32) (orb.Point, orb.Point), inner [][]uint64) {
	slices.SortFunc(part, func(x, y edgeKey) int { return cmp.Compare(x.key, y.key) })
	for lo := 0; lo < len(part); {
		hi := lo + 1
		for hi < len(part) && part[hi].key == part[lo].key {
			hi++
		}
		if hi-lo > 1 {
			markInnerRuns(part[lo:hi], ends, inner)
		}
		lo = hi
	}
}

// markInnerRuns marks the inner edges of one key's edges: sorted by their
// ends, each run of one segment is inside when it runs both ways. (Edges
// of one key are usually two; comparing every two took minutes for the
// same square drawn 100,000 times over, in bad data.)
func markInnerRuns(group []edgeKey, ends func(int32) (orb.Point, orb.Point), inner [][]uint64) {
	byEnds := func(x, y edgeKey) int {
		ax, bx := ends(x.i)
		ay, by := ends(y.i)
		for _, c := range [4]int{cmp.Compare(ax[0], ay[0]), cmp.Compare(ax[1], ay[1]), cmp.Compare(bx[0], by[0]), cmp.Compare(bx[1], by[1])} {
			if c != 0 {
				return c
			}
		}
		return 0
	}
	slices.SortFunc(group, byEnds)
	for r := 0; r < len(group); {
		a, b := ends(group[r].i)
		s := r + 1
		for s < len(group) {
			// Equal as points are (-0 is 0; NaN equals nothing), which
			// the sort keeps together.
			if c, d := ends(group[s].i); c != a || d != b {
				break
			}
			s++
		}
		forth, back := false, false
		for _, e := range group[r:s] {
			forth, back = forth || e.fwd, back || !e.fwd
		}
		if forth && back {
			for _, e := range group[r:s] {
				word, bit := bitAt(inner, e.i)
				atomic.OrUint64(word, bit)
			}
		}
		r = s
	}
}

// edgeEnds orders an edge's two ends, lower x (then y) first, and says
// whether that is the edge's own direction.
func edgeEnds(a, b orb.Point) (orb.Point, orb.Point, bool) {
	if a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]) {
		return a, b, true
	}
	return b, a, false
}

// cellKey returns the Z-order index of the cell of a 4096 by 4096 lattice
// over the tree's extent holding a point (points beyond it clamp to the
// edge cells). -0 and 0 fall in one cell.
func cellKey(t *rtree) func(p orb.Point) uint64 {
	ext := t.extent()
	const side = 1 << (edgeCellBits / 2)
	sx, sy := 0.0, 0.0
	if w := ext.maxX - ext.minX; w > 0 && !math.IsInf(w, 0) {
		sx = side / w
	}
	if h := ext.maxY - ext.minY; h > 0 && !math.IsInf(h, 0) {
		sy = side / h
	}
	return func(p orb.Point) uint64 {
		x, y := cellOf(p[0], ext.minX, sx, side), cellOf(p[1], ext.minY, sy, side)
		return zOrder(uint16(x), uint16(y))
	}
}

// zOrder is the place of cell (x, y) along a Z-order curve: x's bits on
// the even bits, y's on the odd.
func zOrder(x, y uint16) uint64 {
	return interleave(x) | interleave(y)<<1
}

// interleave spreads the bits of v to the even bits.
func interleave(v uint16) uint64 {
	z := uint64(v)
	z = (z | z<<8) & 0x00ff00ff
	z = (z | z<<4) & 0x0f0f0f0f
	z = (z | z<<2) & 0x33333333
	z = (z | z<<1) & 0x55555555
	return z
}

// splitRange splits [0, n) into at most parts contiguous ranges.
func splitRange(n, parts int) [][2]int {
	parts = max(1, min(parts, n))
	out := make([][2]int, parts)
	for p := range parts {
		out[p] = [2]int{p * n / parts, (p + 1) * n / parts}
	}
	return out
}

// onEach runs f(0) ... f(n-1) at once and waits for them.
func onEach(n int, f func(int)) {
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w)
		}()
	}
	wg.Wait()
}
