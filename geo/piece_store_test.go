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
	// check reads a ring back from chains[c0:] of a piece's chains.
	check := func(name string, st *PieceStore, chains []chain, c0 int, want ring) {
		t.Helper()
		var got []orb.Point
		var real []bool
		for k := c0; len(got) < len(want.pts); k++ {
			c := chains[k]
			if k > c0 && c.start != chains[k-1].end() {
				t.Fatalf("%s: ring at chain %d: chain %d does not continue it", name, c0, k)
			}
			run := st.chainPoints(c)
			if len(got) > 0 {
				run = run[1:] // the chain before ended on its first point
			}
			got = append(got, run...)
			for e := range int32(c.n) {
				real = append(real, c.isReal(e))
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
		chains := st.chainsOf(at.c0, at.c1)
		c := 0
		for _, r := range rings {
			check(name, st, chains, c, r)
			c += (len(r.pts) - 1 + edgesPerChain - 1) / edgesPerChain
		}
		if c != len(chains) {
			t.Fatalf("%s: the piece has %d chains, its rings %d", name, len(chains), c)
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
	if err := NewPieceStore().addRing(0, slabMax+1, func(int) (orb.Point, bool) { return orb.Point{}, false }); err == nil {
		t.Error("a ring larger than a slab was written")
	}
}

// TestPieceStoreTakesAPieceBeyondAChainBlock: a piece's chains lie in one
// block, so a piece of more chains than a block holds (thousands of small
// rings in one place) gets a block of its own; the pieces before and after
// it keep theirs, and copying it into another store gives the same rings.
func TestPieceStoreTakesAPieceBeyondAChainBlock(t *testing.T) {
	square := func(x, y float64) cutRing {
		return cutRing{pts: []orb.Point{{x, y}, {x + 1, y}, {x + 1, y + 1}, {x, y + 1}, {x, y}}, real: []bool{true, true, true, false}}
	}
	piece := func(n int, at float64) piecePolygon {
		var rings []cutRing
		for i := range n {
			rings = append(rings, square(at+float64(i%300)*2, float64(i/300)*2))
		}
		return piecePolygon{rings: rings, bound: ringsBound(rings)}
	}
	st := NewPieceStore()
	pp := []piecePolygon{piece(10, 0), piece(2*chainMax+5, 1000), piece(3, 5000)}
	sp, err := st.add(pp)
	if err != nil {
		t.Fatal(err)
	}
	copied := NewPieceStore()
	cp, err := copied.copyPieces(st, sp)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		name string
		st   *PieceStore
		at   []storedPiece
	}{{"written", st, sp}, {"copied", copied, cp}} {
		for k, p := range pp {
			chains := s.st.chainsOf(s.at[k].c0, s.at[k].c1)
			if len(chains) != len(p.rings) {
				t.Fatalf("%s piece %d: %d chains, want %d", s.name, k, len(chains), len(p.rings))
			}
			for i, c := range chains {
				run := s.st.chainPoints(c)
				for j, q := range p.rings[i].pts {
					if run[j] != q {
						t.Fatalf("%s piece %d, ring %d, point %d: %v, want %v", s.name, k, i, j, run[j], q)
					}
				}
			}
		}
		// Each piece's chain numbers lie beyond the one before's.
		if !(s.at[0].c1 <= s.at[1].c0 && s.at[1].c1 <= s.at[2].c0) {
			t.Fatalf("%s: chain numbers overlap: %+v", s.name, s.at)
		}
	}
	if st.chainCount() != 10+2*chainMax+5+3 {
		t.Fatalf("%d chains, want %d", st.chainCount(), 10+2*chainMax+5+3)
	}

	// A grid of that many squares piled in one place (bad data, which no
	// cut parts) is one piece in a block of its own, and a lookup finds
	// it there (an odd number of squares: inside).
	var mp orb.MultiPolygon
	for range 2*chainMax + 5 {
		mp = append(mp, orb.Polygon{{{0, 0}, {0.001, 0}, {0.001, 0.001}, {0, 0.001}, {0, 0}}})
	}
	l, err := BuildLayerIndex(LayerInput{ID: "squares", Levels: []string{"grid"},
		Grids: []GridInput{{Code: "many", Level: "grid", Geometry: mp}, {Code: "one", Level: "grid", Geometry: cell(1, 1, 0.001)}}}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	most := 0
	for _, p := range l.leaves.pieces {
		if l.Grids[p.grid].Code == "many" {
			most = max(most, len(l.leaves.st.chainsOf(p.c0, p.c1)))
		}
	}
	if most <= chainMax {
		t.Fatalf("the piled squares' largest piece has %d chains, not more than a block's %d", most, chainMax)
	}
	var h Hit
	l.Lookup(0.0005, 0.0005, 0, 0, &h)
	if h.Owner < 0 || l.Grids[h.Owner].Code != "many" {
		t.Fatalf("a lookup in the piled squares: owner %d, want their grid", h.Owner)
	}
}

// TestPieceStoreRefusesChainsBeyondInt32: chain numbers are block<<16 |
// place in an int32, so a store whose next block would pass that refuses
// a piece that needs one, writes nothing of it, and still takes a piece
// that fits the room left in its last block.
func TestPieceStoreRefusesChainsBeyondInt32(t *testing.T) {
	ring := func(n int) []cutRing {
		r := cutRing{pts: make([]orb.Point, n), real: make([]bool, n-1)}
		for i := range r.pts {
			r.pts[i] = orb.Point{float64(i), float64(i % 2)}
		}
		r.pts[n-1] = r.pts[0]
		return []cutRing{r}
	}
	st := NewPieceStore()
	// Every block but one taken; the last has room for 8 chains.
	st.chains = make([][]chain, maxChainBlocks-1)
	st.chains[len(st.chains)-1] = make([]chain, 0, 8)
	big := ring(10*edgesPerChain + 1) // 10 chains
	if _, err := st.add([]piecePolygon{{rings: big, bound: ringsBound(big)}}); err == nil || !strings.Contains(err.Error(), "blocks of") {
		t.Fatalf("a piece needing a block past the limit: err %v, want it refused", err)
	}
	if st.points != 0 || st.chainCount() != 0 || len(st.chains) != maxChainBlocks-1 {
		t.Fatalf("the refused piece left %d points, %d chains, %d blocks", st.points, st.chainCount(), len(st.chains))
	}
	small := ring(3*edgesPerChain + 1) // 3 chains
	sp, err := st.add([]piecePolygon{{rings: small, bound: ringsBound(small)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.chainsOf(sp[0].c0, sp[0].c1); len(got) != 3 || sp[0].c0 < 0 || sp[0].c1 < sp[0].c0 {
		t.Fatalf("the next piece: chains [%d, %d), %d of them; want 3", sp[0].c0, sp[0].c1, len(got))
	}
}
