package geo

import (
	"errors"
	"fmt"
	"math"
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
// slab, so a chain's points are one run.
type PieceStore struct {
	mu     sync.Mutex
	slabs  [][]orb.Point
	real   [][]uint64 // by slab, bit i: the edge slab[i] -> slab[i+1] is on the grid's boundary
	chains []chain
	points int
	taken  bool // an index holds it
}

// Slabs start small, for the many small layers, and double up to
// 1<<slabBits points (16 MB).
const (
	slabBits  = 20
	slabMax   = 1 << slabBits
	slabFirst = 1 << 12
	slabPlace = slabMax - 1
)

// errStoreHeld refuses pieces for a store an index holds (or a failed
// build wrote to): a store serves one build.
var errStoreHeld = errors.New("the store's pieces went into an index; cut them again into a new store")

// maxSlabs keeps positions within int32.
const maxSlabs = 1 << (31 - slabBits)

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
		out[k] = storedPiece{bound: p.bound, c0: int32(len(st.chains))}
		for _, r := range p.rings {
			if err := st.addRing(len(r.pts), func(i int) (orb.Point, bool) { return r.pts[i], i < len(r.real) && r.real[i] }); err != nil {
				return nil, err
			}
		}
		out[k].c1 = int32(len(st.chains))
	}
	return out, nil
}

// addRing writes a ring of n points, point i and whether the edge from it
// is real given by at, and its chains. The caller holds the lock; every
// write to the store goes through here.
func (st *PieceStore) addRing(n int, at func(i int) (orb.Point, bool)) error {
	if st.taken {
		return errStoreHeld
	}
	if n > slabMax {
		return fmt.Errorf("a ring of %d points after cutting; at most %d fit", n, slabMax)
	}
	if len(st.chains)+n > math.MaxInt32 {
		return fmt.Errorf("a layer of more than %d chains of edges", math.MaxInt32)
	}
	last := len(st.slabs) - 1
	if last < 0 || len(st.slabs[last])+n > cap(st.slabs[last]) {
		if last+1 >= maxSlabs {
			return fmt.Errorf("a layer of more than %d slabs of %d points", maxSlabs, slabMax)
		}
		size := slabFirst
		if last >= 0 {
			size = min(2*cap(st.slabs[last]), slabMax)
		}
		size = max(size, n)
		st.slabs = append(st.slabs, make([]orb.Point, 0, size))
		st.real = append(st.real, make([]uint64, (size+63)/64))
		last++
	}
	slab := st.slabs[last]
	place := len(slab)
	base := int32(last<<slabBits | place)
	for i := range n {
		p, real := at(i)
		slab = append(slab, p)
		if real {
			word, bit := bitAt(st.real, base+int32(i))
			*word |= bit
		}
	}
	st.slabs[last] = slab
	st.points += n
	edges := int32(n - 1)
	for e := int32(0); e < edges; e += edgesPerChain {
		c := chain{start: base + e, n: min(edgesPerChain, edges-e), b: emptyBox()}
		for _, q := range slab[place+int(e) : place+int(e+c.n)+1] {
			c.b.extend(box{q[0], q[1], q[0], q[1]})
		}
		st.chains = append(st.chains, c)
	}
	return nil
}

// copyPiece writes piece p of store from into st: its rings, read back from
// its chains (consecutive chains continue a ring; a gap in positions starts
// the next one).
func (st *PieceStore) copyPiece(from *PieceStore, p storedPiece) (storedPiece, error) {
	out := storedPiece{bound: p.bound, c0: int32(len(st.chains))}
	for k := p.c0; k < p.c1; {
		start := from.chains[k].start
		end := start + from.chains[k].n
		for k++; k < p.c1 && from.chains[k].start == end; k++ {
			end += from.chains[k].n
		}
		pts := from.run(start, end-start)
		if err := st.addRing(len(pts), func(i int) (orb.Point, bool) {
			return pts[i], i < len(pts)-1 && from.isReal(start+int32(i))
		}); err != nil {
			return storedPiece{}, err
		}
	}
	out.c1 = int32(len(st.chains))
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

// spoil marks the store as used up by a build that failed: its pieces are
// incomplete.
func (st *PieceStore) spoil() {
	st.mu.Lock()
	st.taken = true
	st.mu.Unlock()
}

// take marks the store as held by an index: nothing more is written to
// it, so the room its last slab and its chains were grown with is given
// back.
func (st *PieceStore) take() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.taken {
		return errStoreHeld
	}
	st.taken = true
	if last := len(st.slabs) - 1; last >= 0 && cap(st.slabs[last])-len(st.slabs[last]) > cap(st.slabs[last])/4 {
		n := len(st.slabs[last])
		st.slabs[last] = slices.Clone(st.slabs[last])
		st.real[last] = slices.Clone(st.real[last][:(n+63)/64])
	}
	if cap(st.chains)-len(st.chains) > cap(st.chains)/8 {
		st.chains = slices.Clone(st.chains)
	}
	return nil
}

// at is the point at position i.
func (st *PieceStore) at(i int32) orb.Point { return st.slabs[i>>slabBits][i&slabPlace] }

// run is the n+1 points from position i: n edges of one ring.
func (st *PieceStore) run(i, n int32) []orb.Point {
	o := i & slabPlace
	return st.slabs[i>>slabBits][o : o+n+1]
}

// isReal reports whether the edge from position i is on its grid's
// boundary (not a line the grid was cut along).
func (st *PieceStore) isReal(i int32) bool {
	word, bit := bitAt(st.real, i)
	return *word&bit != 0
}

// bitAt is the word and bit of position i in bits kept by slab as the
// store's boundary bits are.
func bitAt(bits [][]uint64, i int32) (*uint64, uint64) {
	o := i & slabPlace
	return &bits[i>>slabBits][o>>6], 1 << uint(o&63)
}
