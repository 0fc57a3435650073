package geo

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/paulmach/orb"
)

// editedLattice is a layer of 12 by 12 square grids of 0.01 degrees near
// Beijing, in blocks of 3 by 3 under a parent each, that edits change by
// moving the edge between two neighbours of one block.
type editedLattice struct {
	cols   [latticeN][latticeN + 1]float64 // by row, the x of each vertical edge
	ids    [latticeN][latticeN]int64       // version ids
	nextID int64
}

// latticeN is the grids a side, latticeN/3 the blocks.
const latticeN = 12

const latticeX0, latticeY0, latticeD = 116.0, 39.0, 0.01

func newEditedLattice() *editedLattice {
	e := &editedLattice{nextID: 1}
	for r := range latticeN {
		for c := range latticeN + 1 {
			e.cols[r][c] = latticeX0 + float64(c)*latticeD
		}
		for c := range latticeN {
			e.ids[r][c] = e.nextID
			e.nextID++
		}
	}
	return e
}

func (e *editedLattice) square(r, c int) orb.MultiPolygon {
	x0, x1, y0 := e.cols[r][c], e.cols[r][c+1], latticeY0+float64(r)*latticeD
	y1 := y0 + latticeD
	return orb.MultiPolygon{{{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}, {x0, y0}}}}
}

// move shifts the edge right of (r, c), which must not be a block's last
// column, by dx: the two grids beside it get new versions.
func (e *editedLattice) move(r, c int, dx float64) {
	x := e.cols[r][c+1] + dx
	if x < e.cols[r][c]+latticeD/5 || x > e.cols[r][c+2]-latticeD/5 {
		x = e.cols[r][c+1] - dx // keep both grids wide
	}
	e.cols[r][c+1] = x
	for _, k := range []int{c, c + 1} {
		e.ids[r][k] = e.nextID
		e.nextID++
	}
}

// input is the layer as it stands. With whole false, only grids whose
// version prev does not hold come with geometry, as the locator reads them.
func (e *editedLattice) input(prev *LayerIndex, store *PieceStore, whole bool) LayerInput {
	in := LayerInput{ID: "lattice", Levels: []string{"block", "grid"}, Store: store}
	held := map[int64]bool{}
	if prev != nil {
		for _, g := range prev.Grids {
			held[g.VersionID] = true
		}
	}
	for b := range latticeN * latticeN / 9 {
		br, bc := b/(latticeN/3)*3, b%(latticeN/3)*3
		x0, y0 := e.cols[br][bc], latticeY0+float64(br)*latticeD
		x1, y1 := e.cols[br][bc+3], y0+3*latticeD
		g := GridInput{Code: fmt.Sprintf("b%02d", b), Level: "block", VersionID: int64(-1 - b)}
		if whole || !held[g.VersionID] {
			g.Geometry = orb.MultiPolygon{{{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}, {x0, y0}}}}
		}
		in.Grids = append(in.Grids, g)
	}
	for r := range latticeN {
		for c := range latticeN {
			g := GridInput{Code: fmt.Sprintf("g%02d%02d", r, c), Level: "grid", Parent: fmt.Sprintf("b%02d", r/3*(latticeN/3)+c/3),
				VersionID: e.ids[r][c]}
			if whole || !held[g.VersionID] {
				g.Geometry = e.square(r, c)
			}
			in.Grids = append(in.Grids, g)
		}
	}
	return in
}

// latticePoints are points inside the lattice, on and near its edges and
// outside it.
func latticePoints(n int) [][2]float64 {
	rnd := rand.New(rand.NewPCG(5, 6))
	pts := make([][2]float64, n)
	for i := range pts {
		span := (latticeN + 10) * latticeD
		pts[i] = [2]float64{latticeX0 - 5*latticeD + rnd.Float64()*span, latticeY0 - 5*latticeD + rnd.Float64()*span}
		if i%4 == 0 { // on a row's edge
			pts[i][1] = latticeY0 + float64(rnd.IntN(latticeN+1))*latticeD
		}
	}
	return pts
}

func latticeHits(l *LayerIndex, pts [][2]float64) []Hit {
	out := make([]Hit, len(pts))
	for i, p := range pts {
		var h Hit
		l.Lookup(p[0], p[1], 20, 0, &h)
		out[i] = Hit{Owner: h.Owner, Nearest: h.Nearest, NearestM: h.NearestM, CoOwners: h.CoOwners}
	}
	return out
}

// whole is the lattice's layer built from all its geometry.
func (e *editedLattice) whole(t *testing.T) *LayerIndex {
	t.Helper()
	l, err := BuildLayerIndex(e.input(nil, nil, true), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// answersAlike fails unless l answers every point as want does.
func answersAlike(t *testing.T, l, want *LayerIndex, pts [][2]float64) {
	t.Helper()
	got, w := latticeHits(l, pts), latticeHits(want, pts)
	for i, p := range pts {
		sameHits(t, l, p[0], p[1], &got[i], &w[i])
	}
}

func firstSlab(st *PieceStore) *orb.Point { return unsafe.SliceData(st.slabs[0]) }

// TestRebuildExtendsTheStore rebuilds a layer edit after edit over the
// store its index holds: unchanged grids keep their pieces where they are
// (the points are not copied), only the changed ones are cut, into slabs
// of their own and small, and every index answers as one built afresh
// from the whole layer. Once the replaced pieces pass a quarter of those in
// use, a rebuild copies what is used into a new store.
func TestRebuildExtendsTheStore(t *testing.T) {
	e := newEditedLattice()
	first := e.whole(t)
	pts := latticePoints(1500)
	cur, fresh, compacted := first, 0, 0
	rnd := rand.New(rand.NewPCG(7, 8))
	for edit := range 100 {
		r, c := rnd.IntN(latticeN), rnd.IntN(latticeN/3)*3+rnd.IntN(2)
		e.move(r, c, (rnd.Float64()-0.5)*latticeD/2)
		before := cur.Stats().Vertices
		next, err := BuildLayerIndex(e.input(cur, cur.NextStore(2), false), 0, cur)
		if err != nil {
			t.Fatal(err)
		}
		whole := e.whole(t)
		answersAlike(t, next, whole, pts)
		st := next.leaves.st
		if next.inner.st != st || st.base != nil {
			t.Fatal("the index's pieces are not in one store, or its store still refers to the one it extended")
		}
		if firstSlab(st) == firstSlab(cur.leaves.st) {
			// Two squares of 5 points were cut, in a slab of their own.
			if v := next.Stats().Vertices; v != before+10 {
				t.Fatalf("edit %d: the store holds %d vertices after %d, want the two changed squares' 10 more", edit, v, before)
			}
			if last := st.slabs[len(st.slabs)-1]; len(last) != 10 || cap(last) > slabFirst {
				t.Fatalf("edit %d: the changed grids went into a slab of %d points, room for %d", edit, len(last), cap(last))
			}
			fresh++
		} else {
			if v, w := next.Stats().Vertices, whole.Stats().Vertices; v != w {
				t.Fatalf("edit %d: a store copied afresh holds %d vertices, a whole build %d", edit, v, w)
			}
			compacted++
		}
		cur = next
	}
	if fresh < 80 || compacted < 2 {
		t.Fatalf("%d rebuilds kept the store, %d copied it afresh: want most kept and some copied", fresh, compacted)
	}
	// The first index still answers as it did: nothing it reads was written.
	answersAlike(t, first, newEditedLattice().whole(t), pts)
}

// TestRebuildsBesideLookups rebuilds a layer over its index's store, edit
// after edit, while eight goroutines look points up in the first index,
// whose store every later one extends, and in the newest: the first keeps
// its answers, and (under -race) nothing a lookup reads is written.
func TestRebuildsBesideLookups(t *testing.T) {
	e := newEditedLattice()
	first := e.whole(t)
	pts := latticePoints(2000)
	want := latticeHits(first, pts)
	var newest atomic.Pointer[LayerIndex]
	newest.Store(first)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lookups atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h Hit
			for i := w; ; i = (i + 7) % len(pts) {
				select {
				case <-stop:
					return
				default:
				}
				p := pts[i]
				first.Lookup(p[0], p[1], 20, 0, &h)
				if h.Owner != want[i].Owner || h.Nearest != want[i].Nearest || h.NearestM != want[i].NearestM || len(h.CoOwners) != len(want[i].CoOwners) {
					t.Errorf("point %v: the first index answered %+v during rebuilds, %+v before", p, h, want[i])
					return
				}
				newest.Load().Lookup(p[0], p[1], 20, 0, &h)
				lookups.Add(2)
			}
		}()
	}
	rnd := rand.New(rand.NewPCG(9, 10))
	cur, copied := first, 0
	for range 40 { // past a quarter replaced: some rebuilds copy the store afresh
		e.move(rnd.IntN(latticeN), rnd.IntN(latticeN/3)*3+rnd.IntN(2), (rnd.Float64()-0.5)*latticeD/2)
		next, err := BuildLayerIndex(e.input(cur, cur.NextStore(2), false), 0, cur)
		if err != nil {
			t.Fatal(err)
		}
		if firstSlab(next.leaves.st) != firstSlab(cur.leaves.st) {
			copied++
		}
		newest.Store(next)
		cur = next
	}
	// Two builds extending one store at once, each with edits of its own.
	var twins [2]*editedLattice
	var built [2]*LayerIndex
	var twinWG sync.WaitGroup
	for k := range twins {
		twins[k] = e.clone()
		twins[k].move(k, 0, latticeD/(3+float64(k)))
		twinWG.Add(1)
		go func() {
			defer twinWG.Done()
			l, err := BuildLayerIndex(twins[k].input(cur, cur.NextStore(2), false), 0, cur)
			if err != nil {
				t.Error(err)
				return
			}
			built[k] = l
			newest.Store(l)
		}()
	}
	twinWG.Wait()
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	if lookups.Load() == 0 || copied == 0 {
		t.Fatalf("%d lookups ran beside the rebuilds, %d of which copied the store: want some of each", lookups.Load(), copied)
	}
	for k, l := range append(built[:], cur) {
		state := e
		if k < 2 {
			state = twins[k]
		}
		answersAlike(t, l, state.whole(t), pts)
	}
}

// clone is a copy of the lattice that edits apart from it.
func (e *editedLattice) clone() *editedLattice {
	c := *e
	return &c
}

// TestRebuildStartsANewStore: a rebuild replacing more than a quarter of
// the index's grids starts from a new store, into which the unchanged grids'
// pieces are copied; so does one extending a store whose slabs have
// reached half of what positions can number, though nothing it holds was
// replaced.
func TestRebuildStartsANewStore(t *testing.T) {
	e := newEditedLattice()
	first := e.whole(t)
	changed := 0
	for r := range latticeN {
		for b := range latticeN / 3 {
			e.move(r, b*3, latticeD/4)
			changed += 2
		}
	}
	if st := first.NextStore(changed); st.base != nil || len(st.slabs) != 0 {
		t.Fatalf("a store for %d changed grids of %d extends the old one", changed, len(first.Grids))
	}
	next, err := BuildLayerIndex(e.input(first, first.NextStore(changed), false), 0, first)
	if err != nil {
		t.Fatal(err)
	}
	whole := e.whole(t)
	if v, w := next.Stats().Vertices, whole.Stats().Vertices; v != w {
		t.Fatalf("the rebuild's new store holds %d vertices, a whole build %d", v, w)
	}
	pts := latticePoints(1000)
	answersAlike(t, next, whole, pts)

	// Slabs past half the limit, as a thousand extensions leave them.
	st := next.NextStore(0)
	for len(st.slabs) <= maxSlabs/2 {
		st.slabs = append(st.slabs, nil)
	}
	again, err := BuildLayerIndex(e.input(next, st, false), 0, next)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(again.leaves.st.slabs); n != len(next.leaves.st.slabs) || firstSlab(again.leaves.st) == firstSlab(next.leaves.st) {
		t.Fatalf("a store of %d slabs was extended, not copied afresh: %d slabs after", maxSlabs/2+1, n)
	}
	if _, err := st.Cut(cell(0, 0, 1)); err == nil {
		t.Error("the store a rebuild copied afresh took more pieces")
	}
	answersAlike(t, again, whole, pts)
}

// TestParentCyclesCutAlikeInAnyOrder: a cycle of parents in bad data is
// cut at its grid of the lowest code whatever order the grids come in (a
// reload lists them otherwise than a load), a grid hanging from the cycle
// keeps its parent, and the code cut away is kept for a later rebuild.
func TestParentCyclesCutAlikeInAnyOrder(t *testing.T) {
	grids := []GridInput{
		{Code: "A", Level: "grid", Parent: "B", VersionID: 1, Geometry: cell(0, 0, 1)},
		{Code: "B", Level: "grid", Parent: "C", VersionID: 2, Geometry: cell(1, 0, 1)},
		{Code: "C", Level: "grid", Parent: "A", VersionID: 3, Geometry: cell(2, 0, 1)},
		{Code: "D", Level: "grid", Parent: "A", VersionID: 4, Geometry: cell(3, 0, 1)},
		{Code: "E", Level: "grid", VersionID: 5, Geometry: cell(4, 0, 1)},
	}
	want := map[string]string{"A": "A", "B": "A>C>B", "C": "A>C", "D": "A>D", "E": "E"}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 24 {
		in := LayerInput{ID: "cycle", Levels: []string{"grid"}, Grids: slices.Clone(grids)}
		rnd.Shuffle(len(in.Grids), func(i, j int) { in.Grids[i], in.Grids[j] = in.Grids[j], in.Grids[i] })
		order := make([]string, len(in.Grids))
		for i, g := range in.Grids {
			order[i] = g.Code
		}
		l, err := BuildLayerIndex(in, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		for code, chain := range want {
			var names []string
			for _, g := range l.Chain(l.GridByCode(code), nil) {
				names = append(names, l.Grids[g].Code)
			}
			if got := strings.Join(names, ">"); got != chain {
				t.Fatalf("grids in the order %v: %s's chain %s, want %s", order, code, got, chain)
			}
		}
		if p := l.ParentCode(l.GridByCode("A")); p != "B" {
			t.Fatalf("grids in the order %v: A's parent code kept as %q, want B", order, p)
		}
	}
}

// TestRebuildReusesAnEmptyGrid: a version cut to no pieces (an empty
// geometry) has none to reuse, and a rebuild given it without geometry
// keeps it all the same.
func TestRebuildReusesAnEmptyGrid(t *testing.T) {
	in := LayerInput{ID: "empty", Levels: []string{"grid"}, Grids: []GridInput{
		{Code: "A", Level: "grid", VersionID: 1, Geometry: cell(0, 0, 1)},
		{Code: "Z", Level: "grid", VersionID: 2, Geometry: orb.MultiPolygon{}},
	}}
	first, err := BuildLayerIndex(in, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	again := LayerInput{ID: "empty", Levels: []string{"grid"}, Store: first.NextStore(0), Grids: []GridInput{
		{Code: "A", Level: "grid", VersionID: 1}, {Code: "Z", Level: "grid", VersionID: 2}}}
	next, err := BuildLayerIndex(again, 0, first)
	if err != nil {
		t.Fatalf("a rebuild keeping an empty grid: %v", err)
	}
	if next.GridByCode("Z") < 0 {
		t.Fatal("the empty grid was dropped")
	}
	var h Hit
	next.Lookup(0.5, 0.5, 0, 0, &h)
	if h.Owner != next.GridByCode("A") {
		t.Fatalf("(0.5, 0.5): owner %d, want A", h.Owner)
	}
}
