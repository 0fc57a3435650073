package geo

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/paulmach/orb"
)

// TestPieceStoreKeepsRingsWhole writes pieces of one to three rings of many
// sizes (one longer than the first slab) from several goroutines, enough to
// fill slabs of every size, and reads each back through its chains: the
// same points and boundary flags, every ring in one slab, a copy into
// another store (which finds the rings again from the chains) the same
// again, and the room grown ahead of need given back when an index takes
// the store.
func TestPieceStoreKeepsRingsWhole(t *testing.T) {
	type ring struct {
		pts  []orb.Point
		real []bool
	}
	type written struct {
		at    storedPiece
		rings []ring
	}
	st := NewPieceStore()
	var mu sync.Mutex
	var pieces []written
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 9))
			for k := range 2000 {
				// One to three rings a piece; the first ring written is
				// longer than the first slab.
				var rings []ring
				for range 1 + rnd.IntN(3) {
					n := 4 + rnd.IntN(600)
					if w == 0 && k == 0 {
						n = slabFirst + 100
					}
					r := ring{pts: make([]orb.Point, n), real: make([]bool, n-1)}
					for i := range r.pts {
						r.pts[i] = orb.Point{rnd.Float64(), rnd.Float64()}
					}
					r.pts[n-1] = r.pts[0]
					for i := range r.real {
						r.real[i] = rnd.IntN(3) > 0
					}
					rings = append(rings, r)
				}
				var cut []cutRing
				for _, r := range rings {
					cut = append(cut, cutRing{r.pts, r.real})
				}
				sp, err := st.add([]piecePolygon{{rings: cut, bound: ringsBound(cut)}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				pieces = append(pieces, written{sp[0], rings})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(st.slabs) < 10 || len(st.chains) < 9 {
		t.Fatalf("%d slabs, %d chain blocks: the rings should have filled them of every size", len(st.slabs), len(st.chains))
	}
	check := func(name string, st *PieceStore, c0 int32, want ring) {
		t.Helper()
		var got []orb.Point
		var real []bool
		for k := c0; len(got) < len(want.pts); k++ {
			c := st.chainsOf(k, k+1)[0]
			if k > c0 && c.start != st.chainsOf(k-1, k)[0].start+st.chainsOf(k-1, k)[0].n {
				t.Fatalf("%s: ring at chain %d: chain %d does not continue it", name, c0, k)
			}
			run := st.run(c.start, c.n)
			if len(got) > 0 {
				run = run[1:] // the chain before ended on its first point
			}
			got = append(got, run...)
			for i := c.start; i < c.start+c.n; i++ {
				real = append(real, st.isReal(i))
			}
		}
		for i := range want.pts {
			if got[i] != want.pts[i] {
				t.Fatalf("%s: ring at chain %d, point %d: %v, want %v", name, c0, i, got[i], want.pts[i])
			}
		}
		for i := range want.real {
			if real[i] != want.real[i] {
				t.Fatalf("%s: ring at chain %d, edge %d: real %v, want %v", name, c0, i, real[i], want.real[i])
			}
		}
	}
	// checkPiece reads a piece's rings back, ring after ring from its
	// first chain.
	checkPiece := func(name string, st *PieceStore, at storedPiece, rings []ring) {
		t.Helper()
		c := at.c0
		for _, r := range rings {
			check(name, st, c, r)
			c += int32((len(r.pts) - 1 + edgesPerChain - 1) / edgesPerChain)
		}
		if c != at.c1 {
			t.Fatalf("%s: the piece's chains end at %d, its rings at %d", name, at.c1, c)
		}
	}
	copied := NewPieceStore()
	for _, p := range pieces {
		checkPiece("written", st, p.at, p.rings)
		sp, err := copied.copyPieces(st, []storedPiece{p.at})
		if err != nil {
			t.Fatal(err)
		}
		checkPiece("copied", copied, sp[0], p.rings)
	}
	if err := st.take(); err != nil {
		t.Fatal(err)
	}
	last, chains := st.slabs[len(st.slabs)-1], st.chains[len(st.chains)-1]
	if cap(last)-len(last) > cap(last)/4 || cap(chains)-len(chains) > cap(chains)/8 {
		t.Errorf("taken: the last slab holds %d of %d points, the last chain block %d of %d", len(last), cap(last), len(chains), cap(chains))
	}
	for _, p := range pieces {
		checkPiece("taken", st, p.at, p.rings)
	}
	if err := st.take(); err == nil {
		t.Error("a store taken twice")
	}
	if err := NewPieceStore().addRing(slabMax+1, func(int) (orb.Point, bool) { return orb.Point{}, false }); err == nil {
		t.Error("a ring larger than a slab was written")
	}
}

// TestPieceStoreRefusesAPieceBeyondAChainBlock: a piece's chains lie in one
// block, so a piece of more chains than a block holds is refused, before
// anything of it is written; the store takes the next piece as before.
func TestPieceStoreRefusesAPieceBeyondAChainBlock(t *testing.T) {
	ring := func(n int) cutRing {
		r := cutRing{pts: make([]orb.Point, n), real: make([]bool, n-1)}
		for i := range r.pts {
			r.pts[i] = orb.Point{float64(i), float64(i % 2)}
		}
		r.pts[n-1] = r.pts[0]
		return r
	}
	st := NewPieceStore()
	// Two rings of 600,000 points: 75,000 chains.
	big := []cutRing{ring(600_000), ring(600_000)}
	_, err := st.add([]piecePolygon{{rings: big, bound: ringsBound(big)}})
	if err == nil || !strings.Contains(err.Error(), "chains of edges") {
		t.Fatalf("a piece of %d chains: err %v, want it refused", 2*chainsOfRing(600_000), err)
	}
	if st.points != 0 || st.nChain != 0 {
		t.Fatalf("the refused piece left %d points and %d chains", st.points, st.nChain)
	}
	small := []cutRing{ring(40)}
	sp, err := st.add([]piecePolygon{{rings: small, bound: ringsBound(small)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := sp[0].c1 - sp[0].c0; got != 3 || st.points != 40 {
		t.Fatalf("the next piece: %d chains, %d points; want 3, 40", got, st.points)
	}
}
