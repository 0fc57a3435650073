package geo

import (
	"cmp"
	"math"
	"math/bits"
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

// innerEdges finds the real edges of the set's pieces that another edge
// runs along the other way, between the same two points: inside the
// coverage. It returns them as bits by position, in slabs as the store's
// boundary bits, and how many edges the set has. The work goes on every
// core: the edges in ranges of pieces, the sort and the comparisons in
// ranges of keys.
func innerEdges(s *pieceSet) (inner [][]uint64, edges int) {
	st := s.st
	inner = make([][]uint64, len(st.real))
	for k := range inner {
		inner[k] = make([]uint64, len(st.real[k]))
	}
	workers := runtime.GOMAXPROCS(0)
	parts := splitRange(len(s.pieces), workers)
	counts := make([]int, len(parts))
	edgeCounts := make([]int, len(parts))
	onEach(len(parts), func(w int) {
		for _, p := range s.pieces[parts[w][0]:parts[w][1]] {
			for _, c := range st.chains[p.c0:p.c1] {
				edgeCounts[w] += int(c.n)
				for i := c.start; i < c.start+c.n; i++ {
					if st.isReal(i) {
						counts[w]++
					}
				}
			}
		}
	})
	offsets := make([]int, len(parts)+1)
	for w := range parts {
		offsets[w+1] = offsets[w] + counts[w]
		edges += edgeCounts[w]
	}
	keys := make([]edgeKey, offsets[len(parts)])

	cell := cellKey(s.tree)
	onEach(len(parts), func(w int) {
		k := offsets[w]
		for _, p := range s.pieces[parts[w][0]:parts[w][1]] {
			for _, c := range st.chains[p.c0:p.c1] {
				pts := st.run(c.start, c.n)
				for e := range c.n {
					i := c.start + e
					if !st.isReal(i) {
						continue
					}
					a, b, fwd := edgeEnds(pts[e], pts[e+1])
					keys[k] = edgeKey{cell(a)<<(64-edgeCellBits) | edgeHash(a, b)>>edgeCellBits, i, fwd}
					k++
				}
			}
		}
	})

	// Split the keys by their top bits into a bucket for each worker (keys
	// equal stay in one bucket), then sort and compare each bucket apart.
	buckets := bucketByTopBits(keys, workers)
	ends := func(i int32) (a, b orb.Point) {
		a, b, _ = edgeEnds(st.at(i), st.at(i+1))
		return a, b
	}
	onEach(len(buckets), func(w int) {
		part := buckets[w]
		slices.SortFunc(part, func(x, y edgeKey) int { return cmp.Compare(x.key, y.key) })
		for lo := 0; lo < len(part); {
			hi := lo + 1
			for hi < len(part) && part[hi].key == part[lo].key {
				hi++
			}
			for x := lo; x < hi; x++ {
				ax, bx := ends(part[x].i)
				for y := lo; y < hi; y++ {
					if part[y].fwd == part[x].fwd {
						continue
					}
					if ay, by := ends(part[y].i); ay == ax && by == bx {
						word, bit := bitAt(inner, part[x].i)
						atomic.OrUint64(word, bit)
						break
					}
				}
			}
			lo = hi
		}
	})
	return inner, edges
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
		return interleave(uint64(x)) | interleave(uint64(y))<<1
	}
}

// interleave spreads the low 16 bits of v to the even bits.
func interleave(v uint64) uint64 {
	v &= 0xffff
	v = (v | v<<8) & 0x00ff00ff
	v = (v | v<<4) & 0x0f0f0f0f
	v = (v | v<<2) & 0x33333333
	v = (v | v<<1) & 0x55555555
	return v
}

// bucketByTopBits orders keys in place by their top bits into at least n
// buckets (a power of two) and returns them.
func bucketByTopBits(keys []edgeKey, n int) [][]edgeKey {
	shift := bits.Len(uint(max(n, 1) - 1))
	if shift == 0 {
		return [][]edgeKey{keys}
	}
	buckets := 1 << shift
	bucket := func(k edgeKey) int { return int(k.key >> (64 - shift)) }
	counts := make([]int, buckets)
	for _, k := range keys {
		counts[bucket(k)]++
	}
	start := make([]int, buckets+1)
	for b := range buckets {
		start[b+1] = start[b] + counts[b]
	}
	// Place each key in its bucket by swapping (each swap settles one).
	next := slices.Clone(start[:buckets])
	for b := range buckets {
		for next[b] < start[b+1] {
			k := keys[next[b]]
			if d := bucket(k); d != b {
				keys[next[b]], keys[next[d]] = keys[next[d]], k
				next[d]++
				continue
			}
			next[b]++
		}
	}
	out := make([][]edgeKey, buckets)
	for b := range buckets {
		out[b] = keys[start[b]:start[b+1]]
	}
	return out
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
