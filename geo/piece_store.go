package geo

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/paulmach/orb"
)

// A PieceStore holds the pieces of one layer's grids as the layer's index
// reads them: their points, whether each edge is on its grid's boundary,
// and their chains. Grids are cut into it as they are read and the index
// is built over it in place, so a load never holds a grid's pieces twice
// (cut, then copied into the index's arrays): a province's load peaked at
// the index's size again on top of it.
//
// Points go in slabs that never move once written, so the store grows
// without copying what it holds. A point's position is its slab and its
// place in the slab (slab<<slabBits | place); a ring's points lie in one
// slab, so a chain's points are one run. Chains go in blocks the same way
// (block<<chainBits | place), a piece's chains in one block: one growing
// array of them was copied as it grew, twice a province's chains for a
// moment near the end of a load.
//
// A layer's next build extends the store its index holds (extend): the
// slabs and blocks written so far are shared, never written again, and
// what the build cuts goes into new ones. An edit's rebuild then reads
// and writes only the grids it changed, where copying every grid's points
// was a third of a province's rebuild and held them twice.
type PieceStore struct {
	mu     sync.Mutex
	slabs  [][]orb.Point
	chains [][]chain
	points int
	// edges is how many edges the chains hold, with those of pieces no
	// index uses any longer (grids an edit replaced).
	edges int
	// nextSlab and nextBlock are the sizes of the next slab and chain
	// block: they double.
	nextSlab, nextBlock int
	taken               bool // an index holds it, or a build failed or copied it
	spoiled             bool // a build failed or copied it: its pieces serve no index
	// base is the store this one extends until an index takes it: the
	// pieces of base's index are here, where they were.
	base *PieceStore
}

// Slabs start small, for the many small layers, and double up to
// 1<<slabBits points (16 MB).
const (
	slabBits  = 20
	slabMax   = 1 << slabBits
	slabFirst = 1 << 12
	slabPlace = slabMax - 1
)

// Chain blocks start small too and double up to 1<<chainBits chains
// (2.5 MB). A piece of more chains than that (thousands of small rings
// piled in one place, which no cut parts) gets a block of its own,
// numbered as the blocks it would fill, the ones after it left empty.
const (
	chainBits  = 16
	chainMax   = 1 << chainBits
	chainFirst = 1 << 8
	chainPlace = chainMax - 1
)

// errStoreHeld refuses pieces for a store an index holds (or a failed
// build wrote to): a store serves one build.
var errStoreHeld = errors.New("the store's pieces went into an index; cut them again into a new store")

// maxSlabs and maxChainBlocks keep positions and chain numbers within
// int32.
const (
	maxSlabs       = 1 << (31 - slabBits)
	maxChainBlocks = 1 << (31 - chainBits)
)

// NewPieceStore returns an empty store for one layer's pieces.
func NewPieceStore() *PieceStore { return &PieceStore{} }

// Pieces is a grid's geometry cut as the index keeps it, in a store. An
// index built over the store takes every piece in it: pieces serve one
// build.
type Pieces struct {
	store  *PieceStore
	pieces []storedPiece
}

// storedPiece is one piece in a store: its box and its chains [c0, c1).
type storedPiece struct {
	bound  box
	c0, c1 int32
}

// Cut cuts a grid's geometry into the pieces BuildLayerIndex keeps when
// built with the default maxVertices, and writes them into the store. It
// may be called from many goroutines at once.
func (st *PieceStore) Cut(mp orb.MultiPolygon) (*Pieces, error) {
	sp, err := st.add(subdividePolygon(mp, DefaultMaxPieceVertices))
	if err != nil {
		return nil, err
	}
	return &Pieces{store: st, pieces: sp}, nil
}

// add writes pieces into the store and returns where they are.
func (st *PieceStore) add(pp []piecePolygon) ([]storedPiece, error) {
	out := make([]storedPiece, len(pp))
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, p := range pp {
		n := 0
		for _, r := range p.rings {
			n += chainsOfRing(len(r.pts))
		}
		c0, err := st.roomForChains(n)
		if err != nil {
			return nil, err
		}
		for _, r := range p.rings {
			if err := st.addRing(c0, len(r.pts), func(i int) (orb.Point, bool) { return r.pts[i], i < len(r.real) && r.real[i] }); err != nil {
				return nil, err
			}
		}
		out[k] = storedPiece{bound: p.bound, c0: c0, c1: st.chainsEnd(c0)}
	}
	return out, nil
}

// chainsOfRing is how many chains a ring of n points is kept in.
func chainsOfRing(n int) int { return (max(n-1, 0) + edgesPerChain - 1) / edgesPerChain }

// roomForChains makes room for a piece's n chains in one block, opening
// a new block when the last has no room left, and returns the number the
// first will have. The caller holds the lock.
func (st *PieceStore) roomForChains(n int) (int32, error) {
	if st.taken {
		return 0, errStoreHeld
	}
	last := len(st.chains) - 1
	if last >= 0 && len(st.chains[last]) < chainMax && len(st.chains[last])+n <= cap(st.chains[last]) {
		return int32(last<<chainBits | len(st.chains[last])), nil
	}
	spans := max(1, (n+chainMax-1)/chainMax)
	if len(st.chains)+spans >= maxChainBlocks {
		return 0, fmt.Errorf("a layer of more than %d blocks of %d chains", maxChainBlocks, chainMax)
	}
	if st.nextBlock == 0 {
		st.nextBlock = chainFirst
	}
	first := len(st.chains)
	st.chains = append(st.chains, make([]chain, 0, max(st.nextBlock, n)))
	for range spans - 1 {
		st.chains = append(st.chains, nil)
	}
	st.nextBlock = min(2*st.nextBlock, chainMax)
	return int32(first << chainBits), nil
}

// chainsEnd is the number after the last chain written to the block of
// chain c0.
func (st *PieceStore) chainsEnd(c0 int32) int32 {
	return c0&^chainPlace + int32(len(st.chains[c0>>chainBits]))
}

// addRing writes a ring of n points, point i and whether the edge from it
// is real given by at, and its chains, in the room roomForChains made for
// its piece, whose first chain is c0. The caller holds the lock; every
// write of points goes through here.
func (st *PieceStore) addRing(c0 int32, n int, at func(i int) (orb.Point, bool)) error {
	if st.taken {
		return errStoreHeld
	}
	if n > slabMax {
		return fmt.Errorf("a ring of %d points after cutting; at most %d fit", n, slabMax)
	}
	block := int(c0 >> chainBits)
	if k := chainsOfRing(n); block >= len(st.chains) || len(st.chains[block])+k > cap(st.chains[block]) {
		return fmt.Errorf("no room made for a ring's %d chains", k)
	}
	last := len(st.slabs) - 1
	if last < 0 || len(st.slabs[last])+n > cap(st.slabs[last]) {
		if last+1 >= maxSlabs {
			return fmt.Errorf("a layer of more than %d slabs of %d points", maxSlabs, slabMax)
		}
		if st.nextSlab == 0 {
			st.nextSlab = slabFirst
		}
		size := max(st.nextSlab, n)
		st.nextSlab = min(2*st.nextSlab, slabMax)
		st.slabs = append(st.slabs, make([]orb.Point, 0, size))
		last++
	}
	slab := st.slabs[last]
	place := len(slab)
	base := int32(last<<slabBits | place)
	// Each chain is written as its last point is: edges [e0, i), with
	// the bits of those on the boundary.
	var real uint16
	for i := range n {
		p, r := at(i)
		slab = append(slab, p)
		if i > 0 && (i%edgesPerChain == 0 || i == n-1) {
			e0 := (i - 1) / edgesPerChain * edgesPerChain
			b := emptyBox()
			for _, q := range slab[place+e0 : place+i+1] {
				b.extend(box{q[0], q[1], q[0], q[1]})
			}
			st.chains[block] = append(st.chains[block], chain{start: base + int32(e0), n: uint16(i - e0), real: real, b: outward(b)})
			real = 0
		}
		if r && i < n-1 {
			real |= 1 << uint(i%edgesPerChain)
		}
	}
	st.slabs[last] = slab
	st.points += n
	st.edges += max(n-1, 0)
	return nil
}

// copyPiece writes piece p of store from into st: its rings, read back from
// its chains (consecutive chains continue a ring; a gap in positions starts
// the next one).
func (st *PieceStore) copyPiece(from *PieceStore, p storedPiece) (storedPiece, error) {
	c0, err := st.roomForChains(int(p.c1 - p.c0))
	if err != nil {
		return storedPiece{}, err
	}
	out := storedPiece{bound: p.bound, c0: c0}
	chains := from.chainsOf(p.c0, p.c1)
	for k := 0; k < len(chains); {
		// A ring's chains follow each other, edgesPerChain edges each
		// but its last.
		ring := k
		start, end := chains[k].start, chains[k].end()
		for k++; k < len(chains) && chains[k].start == end; k++ {
			end = chains[k].end()
		}
		pts := from.run(start, end-start)
		if err := st.addRing(c0, len(pts), func(i int) (orb.Point, bool) {
			return pts[i], i < len(pts)-1 && chains[ring+i/edgesPerChain].isReal(int32(i%edgesPerChain))
		}); err != nil {
			return storedPiece{}, err
		}
	}
	out.c1 = st.chainsEnd(c0)
	return out, nil
}

// copyPieces writes pieces of store from into st.
func (st *PieceStore) copyPieces(from *PieceStore, pp []storedPiece) ([]storedPiece, error) {
	out := make([]storedPiece, len(pp))
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, p := range pp {
		var err error
		if out[k], err = st.copyPiece(from, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// extend returns a store for the layer's next build holding st's pieces
// where they are. st's slabs and chain blocks are shared, capped at what
// they hold so that nothing is written into them again (an index built
// over st keeps reading them meanwhile); what the next build cuts goes
// into new ones, small at first as in a new store. st must be held by an
// index.
func (st *PieceStore) extend() (*PieceStore, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.taken || st.spoiled {
		return nil, errors.New("only a store an index holds can be extended")
	}
	next := &PieceStore{slabs: make([][]orb.Point, len(st.slabs)),
		chains: make([][]chain, len(st.chains)), points: st.points, edges: st.edges, base: st}
	for i, s := range st.slabs {
		next.slabs[i] = s[:len(s):len(s)]
	}
	for i, c := range st.chains {
		next.chains[i] = c[:len(c):len(c)]
	}
	return next, nil
}

// liveEdges counts the edges of pieces.
func (st *PieceStore) liveEdges(pieces [][]storedPiece) int {
	n := 0
	for _, pp := range pieces {
		for _, p := range pp {
			for _, c := range st.chainsOf(p.c0, p.c1) {
				n += int(c.n)
			}
		}
	}
	return n
}

// wasteful reports whether an extended store holding live edges for its
// index should be copied afresh instead: when the edges of pieces no
// longer used pass 1/replacedShare of those in use, or half the slabs or
// chain blocks positions can number are taken (each extension opens its
// own).
func (st *PieceStore) wasteful(live int) bool {
	return st.edges-live > live/replacedShare || len(st.slabs) > maxSlabs/2 || len(st.chains) > maxChainBlocks/2
}

// spoil marks the store as used up by a build that failed (its pieces are
// incomplete) or that copied what it used out of it.
func (st *PieceStore) spoil() {
	st.mu.Lock()
	st.taken, st.spoiled, st.base = true, true, nil
	st.mu.Unlock()
}

// take marks the store as held by an index: nothing more is written to
// it, so the room its last slab and chain block were made with is given
// back.
func (st *PieceStore) take() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.taken {
		return errStoreHeld
	}
	st.taken = true
	// The base's pieces used here are in st now: let the base go with its
	// index.
	st.base = nil
	if last := len(st.slabs) - 1; last >= 0 && cap(st.slabs[last])-len(st.slabs[last]) > cap(st.slabs[last])/4 {
		st.slabs[last] = slices.Clone(st.slabs[last])
	}
	if last := len(st.chains) - 1; last >= 0 && cap(st.chains[last])-len(st.chains[last]) > cap(st.chains[last])/8 {
		st.chains[last] = slices.Clone(st.chains[last])
	}
	return nil
}

// chainCount is how many chains the store holds.
func (st *PieceStore) chainCount() int {
	n := 0
	for _, b := range st.chains {
		n += len(b)
	}
	return n
}

// chainsOf is the chains [c0, c1) of one piece.
func (st *PieceStore) chainsOf(c0, c1 int32) []chain {
	o := c0 & chainPlace
	return st.chains[c0>>chainBits][o : o+c1-c0]
}

// at is the point at position i.
func (st *PieceStore) at(i int32) orb.Point { return st.slabs[i>>slabBits][i&slabPlace] }

// run is the n+1 points from position i: n edges of one ring.
func (st *PieceStore) run(i, n int32) []orb.Point {
	o := i & slabPlace
	return st.slabs[i>>slabBits][o : o+n+1]
}

// chainPoints is the points of chain c.
func (st *PieceStore) chainPoints(c chain) []orb.Point { return st.run(c.start, int32(c.n)) }

// bitAt is the word and bit of position i in bits kept by slab, a bit a
// point.
func bitAt(bits [][]uint64, i int32) (*uint64, uint64) {
	o := i & slabPlace
	return &bits[i>>slabBits][o>>6], 1 << uint(o&63)
}
