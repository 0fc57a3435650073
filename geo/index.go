package geo

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/hugepage"
	"github.com/paulmach/orb"
)

// OnBoundaryM is how close to a grid's boundary a point must be to count as
// on it: a point within 1 mm of an edge is covered by the grid (as PostGIS
// ST_Covers counts boundary points in), and a point on an edge two grids
// share belongs to both: the lower code owns it, the other is a co-owner
// with reason on_boundary. A millimetre is far below any positioning error
// and far above floating-point noise in the coordinates.
const OnBoundaryM = 0.001

// GridInput is one current grid handed to the index builder.
type GridInput struct {
	Code, Name, Level, Parent string
	Version                   int
	VersionID                 int64 // the stored version's id, pinned by assignments
	Geometry                  orb.MultiPolygon
	// Pieces is Geometry already cut into the layer's store (see
	// PieceStore.Cut), given instead of it.
	Pieces *Pieces
	People []gridmap.Person
}

// LayerInput is one layer handed to the index builder.
type LayerInput struct {
	ID          string
	Kind        string
	Levels      []string
	ToleranceM  float64
	DataVersion int64
	// PeopleVersion is the version of the layer's people the grids'
	// People were read at (see migration 00034), kept by the index.
	PeopleVersion int64
	Grids         []GridInput
	// Store holds the grids' Pieces, when they were cut beforehand; the
	// index takes it. Nil: the builder makes one.
	Store *PieceStore
}

// IndexGrid is what the index knows of a grid besides its shape (its
// level and people through LayerIndex.Level and People). It is 64 bytes,
// one cache line for a lookup to read for its grid and each ancestor, where
// it was 104 with its level's name and its people's slice in it: 47 MB of a
// province's 1,306 MB index.
type IndexGrid struct {
	Code, Name string
	VersionID  int64
	Version    int32
	Parent     int32 // position in LayerIndex.Grids, -1 at the top
	// people points at the first of the grid's nPeople, where the load
	// put them.
	people  *gridmap.Person
	nPeople int32
	level   uint16 // position in LayerIndex.levelNames
	Leaf    bool   // no grid names it as parent
}

// collectAfterInputs is the fewest grids for which a build collects its
// inputs once it has let them go: a city's layer and larger, for which the
// collection is a small part of the build.
const collectAfterInputs = 100_000

// maxLevelNames bounds the level names of a layer's grids (IndexGrid.level).
const maxLevelNames = 1 << 16

// LayerIndex answers point lookups for one layer from memory. It is
// immutable once built: a changed layer is rebuilt beside it and swapped.
type LayerIndex struct {
	ID          string
	Kind        string
	Levels      []string
	ToleranceM  float64
	DataVersion int64
	// PeopleVersion is LayerInput's: the version of the layer's people
	// its grids' people were read at.
	PeopleVersion int64
	Grids         []IndexGrid
	// levelNames are the layer's Levels, then any level its grids name
	// that Levels lacks.
	levelNames []string
	byCode     map[string]int32
	// leaves holds the grids with no children: each point of the layer's
	// coverage is in one of them. inner holds the rest, asked only for
	// points in a gap between siblings. Their pieces are in one store,
	// the layer's.
	leaves, inner pieceSet
	// edges holds the leaves' boundary edges in runs of a few, for the
	// nearest grid to a point outside every grid.
	edges edgeSet
	// up[g] is where grid g's ancestors are in ups: ups[up[g]] counts
	// them, root first after it. Siblings share their parent's list. A
	// lookup's chain is then two reads and its grids, read at once,
	// where walking the parents was a cache miss for each in turn: 2 to
	// 8% of a lookup with co-owners in a province.
	up, ups []int32
	// lostParents is the parent code a grid was given where it names no
	// grid of the layer (or the grid itself, or closes a cycle), so that a
	// later build reusing the grid without reading it gives it back.
	lostParents map[int32]string
	// huge is how much of lookupMemory the build moved into huge pages.
	huge hugepage.Result
}

// hugePagesFrom is the least a layer's index reads in lookups (its
// lookupMemory) for which the build moves that into huge pages: 32 MB,
// four times what the CPU's TLB reaches in 4 KB pages. In a province's
// index (968 MiB of it), most of a lookup's cache misses were TLB misses
// too. Go asks the kernel for no huge pages for its heap, and this
// machine gives them only to memory that asks (transparent_hugepage
// "madvise", as many do). Over 400
// districts, a lookup with co-owners took 0.80 and 0.82 of its time with
// them, alternating round by round in one process with an index built
// without (30 rounds of 100,000, each first once); moving them took 2.7
// to 3.2 s of builds of 16 to 20 s, and 0.6 s of a rebuild after an
// edit, whose points are in huge pages already (2026-12-03).
const hugePagesFrom = 32 << 20

// edgeSet is the real (boundary) edges of a piece set in short runs, each
// run's box in an R-tree.
type edgeSet struct {
	tree   *rtree
	chunks []edgeChunk
	near   *nearCells // nil when the layer has no lattice: walk the tree
}

// edgeChunk is the edges from the points at positions start ... start+n-1
// of the layer's store to the next ones.
type edgeChunk struct {
	grid, start, n int32
}

// edgesPerChunk keeps a chunk's box tight and its scan short.
const edgesPerChunk = 16

// pieceSet is a set of polygon pieces in an R-tree, with a lattice for
// point queries. The pieces' points and chains are in the layer's store.
type pieceSet struct {
	tree   *rtree
	cells  *pieceCells // nil: ask the tree
	pieces []pieceRef
	st     *PieceStore
}

// pieceRef is one piece: its grid, its chains [c0, c1) in the store and
// its box (the tree's, which is the piece's box rounded outwards to single
// precision). A lookup reads the box and then the piece from one place.
type pieceRef struct {
	grid, c0, c1 int32
	b            box32
}

// chain is a run of up to edgesPerChain consecutive edges of one ring, the
// points at positions start ... start+n of the store, with their box. A
// scan skips whole chains by their box: one that does not span the point's
// latitude cannot cross the ray, one farther than the search radius cannot
// be near.
type chain struct {
	start int32
	n     uint16 // edges
	// real has bit e set when edge e is on its grid's boundary, not a
	// line the grid was cut along: read with the chain, where a bit kept
	// by position was one more cache miss for each chain a lookup
	// measures.
	real uint16
	b    box32
}

// The real edges of a chain fit chain.real.
const _ = uint16(1<<edgesPerChain - 1)

// end is the position of the chain's last point.
func (c chain) end() int32 { return c.start + int32(c.n) }

// isReal reports whether the chain's edge e is on its grid's boundary.
func (c chain) isReal(e int32) bool { return c.real>>uint(e)&1 != 0 }

// edgesPerChain: short enough that most of a piece is skipped chain by
// chain, long enough that the boxes stay a small part of the memory.
const edgesPerChain = 16

// BuildLayerIndex builds the index of one layer, subdividing every grid into
// pieces of at most maxVertices vertices (DefaultMaxPieceVertices when 0).
// Grids whose parent is not in the layer are treated as top-level.
//
// When rebuilding after a change, prev is the layer's current index: a grid
// given without Geometry whose VersionID prev holds keeps its pieces from
// prev instead of being read and cut again. With in.Store from
// prev.NextStore, those pieces stay where they are, shared with prev, and
// only the changed grids are cut; with any other store they are copied
// into it. The index takes in.Store: its pieces serve this build only. It
// lets go of in.Grids once read: a caller that keeps no copy of them lets a
// big layer's inputs be freed mid-build.
func BuildLayerIndex(in LayerInput, maxVertices int, prev *LayerIndex) (*LayerIndex, error) {
	if maxVertices <= 0 {
		maxVertices = DefaultMaxPieceVertices
	}
	if maxVertices < 8 {
		return nil, fmt.Errorf("pieces need at least 8 vertices, got %d", maxVertices)
	}
	l := &LayerIndex{ID: in.ID, Kind: in.Kind, Levels: in.Levels, ToleranceM: in.ToleranceM,
		DataVersion: in.DataVersion, PeopleVersion: in.PeopleVersion, Grids: make([]IndexGrid, len(in.Grids)),
		byCode: make(map[string]int32, len(in.Grids))}
	if len(in.Levels) > maxLevelNames {
		return nil, fmt.Errorf("layer %s: %d levels, at most %d", in.ID, len(in.Levels), maxLevelNames)
	}
	l.levelNames = slices.Clone(in.Levels)
	level := make(map[string]int, len(in.Levels))
	for i, lv := range in.Levels {
		level[lv] = i
	}
	for i, g := range in.Grids {
		if _, dup := l.byCode[g.Code]; dup {
			return nil, fmt.Errorf("layer %s: grid %s is listed twice", in.ID, g.Code)
		}
		l.byCode[g.Code] = int32(i)
		lv, ok := level[g.Level]
		if !ok {
			if len(l.levelNames) >= maxLevelNames {
				return nil, fmt.Errorf("layer %s: its grids name more than %d levels", in.ID, maxLevelNames)
			}
			lv = len(l.levelNames)
			level[g.Level] = lv
			l.levelNames = append(l.levelNames, g.Level)
		}
		if g.Version > math.MaxInt32 {
			return nil, fmt.Errorf("layer %s: grid %s: version %d is past %d", in.ID, g.Code, g.Version, math.MaxInt32)
		}
		l.Grids[i] = IndexGrid{Code: g.Code, Name: g.Name, Version: int32(g.Version), VersionID: g.VersionID,
			Parent: -1, level: uint16(lv), Leaf: true}
		if len(g.People) > 0 {
			l.Grids[i].people, l.Grids[i].nPeople = &g.People[0], int32(len(g.People))
		}
	}
	for i, g := range in.Grids {
		if p, ok := l.byCode[g.Parent]; ok && g.Parent != "" && p != int32(i) {
			l.Grids[i].Parent = p
			l.Grids[p].Leaf = false
		}
	}
	// A parent cycle in bad data would make chains endless: each is cut
	// at its grid of the lowest code, whatever order the grids come in (a
	// reload lists them in another order than a load, and must answer
	// alike), and grids hanging from it keep their parents.
	seen := make([]uint8, len(l.Grids)) // 1: on the walk under way, 2: walked
	var walk []int32
	for i := range l.Grids {
		walk = walk[:0]
		g := int32(i)
		for g >= 0 && seen[g] == 0 {
			seen[g] = 1
			walk = append(walk, g)
			g = l.Grids[g].Parent
		}
		if g >= 0 && seen[g] == 1 {
			cycle := walk[slices.Index(walk, g):]
			low := g
			for _, c := range cycle {
				if l.Grids[c].Code < l.Grids[low].Code {
					low = c
				}
			}
			l.Grids[low].Parent = -1
		}
		for _, c := range walk {
			seen[c] = 2
		}
	}
	l.listAncestors()
	for i, g := range in.Grids {
		if g.Parent != "" && l.Grids[i].Parent < 0 {
			if l.lostParents == nil {
				l.lostParents = map[int32]string{}
			}
			l.lostParents[int32(i)] = g.Parent
		}
	}

	st := in.Store
	if st == nil {
		st = NewPieceStore()
	}
	pieces := make([][]storedPiece, len(in.Grids))
	var reuse map[int64][]storedPiece
	for _, g := range in.Grids {
		if g.Pieces != nil && g.Pieces.store != st {
			return nil, fmt.Errorf("layer %s: grid %s was cut into another store than the layer's", in.ID, g.Code)
		}
		if g.Pieces != nil && maxVertices != DefaultMaxPieceVertices {
			return nil, fmt.Errorf("layer %s: grid %s was cut into pieces of %d vertices, not %d", in.ID, g.Code, DefaultMaxPieceVertices, maxVertices)
		}
		if g.Geometry == nil && g.Pieces == nil {
			if reuse == nil {
				reuse = prev.piecesByVersion()
			}
			// A version cut to no pieces at all (an empty geometry) has
			// none to reuse, but prev holds it all the same.
			if _, ok := reuse[g.VersionID]; !ok && !prev.holds(g.Code, g.VersionID) {
				return nil, fmt.Errorf("layer %s: grid %s has no geometry and no earlier index holds version id %d", in.ID, g.Code, g.VersionID)
			}
		}
	}
	// A store extending prev's holds prev's pieces where they are: an
	// unchanged grid keeps them. Any other store gets a copy.
	shared := prev != nil && st.base != nil && st.base == prev.leaves.st
	err := eachGrid(len(in.Grids), func(i int) error {
		var err error
		g := &in.Grids[i]
		switch {
		case g.Pieces != nil:
			pieces[i] = g.Pieces.pieces
		case g.Geometry == nil && shared:
			pieces[i] = reuse[g.VersionID]
		case g.Geometry == nil:
			pieces[i], err = st.copyPieces(prev.leaves.st, reuse[g.VersionID])
		default:
			pieces[i], err = st.add(subdividePolygon(g.Geometry, maxVertices))
		}
		if err != nil {
			return fmt.Errorf("layer %s: grid %s: %w", in.ID, g.Code, err)
		}
		return nil
	})
	if err == nil && st.base != nil && st.wasteful(st.liveEdges(pieces)) {
		// The pieces of grids edits replaced, or the slabs and blocks of
		// many extensions, have piled up (or the store extends another
		// index's than prev's): start a store afresh with a copy of the
		// pieces in use.
		from := st
		st = NewPieceStore()
		err = eachGrid(len(pieces), func(i int) error {
			var err error
			if pieces[i], err = st.copyPieces(from, pieces[i]); err != nil {
				return fmt.Errorf("layer %s: grid %s: %w", in.ID, in.Grids[i].Code, err)
			}
			return nil
		})
		// What was cut into it served this build: no other.
		from.spoil()
	}
	if err != nil {
		// Its pieces are incomplete: the store serves no other build.
		st.spoil()
		return nil, err
	}
	// What is left of the inputs is in l.Grids and pieces: let the rest go
	// (a province's inputs are hundreds of megabytes, and the edges below
	// are the build's peak). For a big layer, and unless a memory limit
	// already has the collector watch the total, collect them now: the
	// collector's last goal was twice what was live with them (and with
	// the load's people and rows), and the trees and edges below piled up
	// to it before it collected again. A province's build peaked at 1,994
	// to 2,019 MiB without this collection and 1,662 to 1,835 with it, in
	// as long; its rebuild after an edit, when two indexes are live, at
	// 2,204 and 2,206 MiB without and 2,012 and 2,019 with, for 8.2 and
	// 9.6 s against 7.2 and 7.9 (2026-12-03, alternating).
	in.Grids = nil
	if len(l.Grids) >= collectAfterInputs && debug.SetMemoryLimit(-1) == math.MaxInt64 {
		runtime.GC()
	}
	if err := st.take(); err != nil {
		return nil, fmt.Errorf("layer %s: %w", in.ID, err)
	}

	var leafGrids, innerGrids []int32
	for i := range l.Grids {
		if l.Grids[i].Leaf {
			leafGrids = append(leafGrids, int32(i))
		} else {
			innerGrids = append(innerGrids, int32(i))
		}
	}
	l.leaves = buildPieceSet(leafGrids, pieces, st)
	l.inner = buildPieceSet(innerGrids, pieces, st)
	l.edges = buildEdgeSet(&l.leaves)
	l.huge = hugepage.Collapse(l.lookupMemory(), hugePagesFrom)
	return l, nil
}

// eachGrid calls do(0) ... do(n-1) on every core, and returns the first
// error, after which no more calls are made.
func eachGrid(n int, do func(i int) error) error {
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := do(i); err != nil {
					// Its own variable: taking err's address would put it
					// on the heap for every grid.
					e := err
					failed.CompareAndSwap(nil, &e)
				}
			}
		}()
	}
	for i := range n {
		if failed.Load() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// buildPieceSet puts the pieces of grids in a tree; they stay where they
// are in the store.
func buildPieceSet(grids []int32, pieces [][]storedPiece, st *PieceStore) pieceSet {
	n := 0
	for _, g := range grids {
		n += len(pieces[g])
	}
	refs := make([]pieceRef, 0, n)
	boxes := make([]box, 0, n)
	for _, g := range grids {
		for _, p := range pieces[g] {
			b := outward(p.bound)
			refs = append(refs, pieceRef{grid: g, c0: p.c0, c1: p.c1, b: b})
			boxes = append(boxes, b.wide())
		}
	}
	tree, order := packRTree(boxes)
	s := pieceSet{tree: tree, cells: newPieceCells(tree), pieces: make([]pieceRef, len(order)), st: st}
	for i, o := range order {
		s.pieces[i] = refs[o]
	}
	return s
}

// lookupMemory is where the arrays a lookup reads lie: the grids and
// their ancestors, the pieces, trees and lattices, the edges, and the
// store's points and chains.
func (l *LayerIndex) lookupMemory() []hugepage.Range {
	rs := []hugepage.Range{hugepage.Of(l.Grids), hugepage.Of(l.up), hugepage.Of(l.ups), hugepage.Of(l.edges.chunks)}
	if l.edges.tree != nil {
		rs = append(rs, hugepage.Of(l.edges.tree.boxes))
	}
	for _, s := range []*pieceSet{&l.leaves, &l.inner} {
		rs = append(rs, hugepage.Of(s.pieces))
		if s.tree != nil {
			rs = append(rs, hugepage.Of(s.tree.boxes))
		}
		if s.cells != nil {
			rs = append(rs, hugepage.Of(s.cells.start), hugepage.Of(s.cells.items))
		}
	}
	for _, s := range l.leaves.st.slabs {
		rs = append(rs, hugepage.Of(s))
	}
	for _, c := range l.leaves.st.chains {
		rs = append(rs, hugepage.Of(c))
	}
	return rs
}

// holds reports whether l indexes version id of the grid code.
func (l *LayerIndex) holds(code string, id int64) bool {
	if l == nil {
		return false
	}
	g, ok := l.byCode[code]
	return ok && l.Grids[g].VersionID == id
}

// Staffed counts the layer's grids with people.
func (l *LayerIndex) Staffed() int {
	n := 0
	for i := range l.Grids {
		if l.Grids[i].nPeople > 0 {
			n++
		}
	}
	return n
}

// Level is grid g's level.
func (l *LayerIndex) Level(g int32) string { return l.levelNames[l.Grids[g].level] }

// depth is the position of grid g's level in the layer's Levels, or
// len(Levels) for a level they lack.
func (l *LayerIndex) depth(g int32) int { return min(int(l.Grids[g].level), len(l.Levels)) }

// People are grid g's people, as the load gave them; they are shared, not
// to be changed.
func (l *LayerIndex) People(g int32) []gridmap.Person {
	x := &l.Grids[g]
	if x.nPeople == 0 {
		return nil
	}
	return unsafe.Slice(x.people, x.nPeople)
}

// ParentCode is the parent code grid g was built with, whether or not it
// names a grid of the layer.
func (l *LayerIndex) ParentCode(g int32) string {
	if p := l.Grids[g].Parent; p >= 0 {
		return l.Grids[p].Code
	}
	return l.lostParents[g]
}

// replacedShare: a layer's store is copied afresh once the pieces of
// versions edits replaced pass 1/replacedShare of those in use, and a
// build in which more than 1/replacedShare of the index's grids are
// replaced or closed starts from a new store.
const replacedShare = 4

// NextStore returns the store for the layer's next build, in which
// replaced of the index's grids are no longer current (a new version or
// none): one extending the index's own, which keeps its pieces where they
// are for the grids the build leaves unchanged (see BuildLayerIndex). When
// l is nil, or replaced is more than a quarter of the index's grids, it is
// a new store instead, into which the build copies the unchanged grids'
// pieces: extended, the store would soon be copied afresh anyway, with the
// replaced grids' pieces in it meanwhile. Grids only added leave nothing
// behind, however many.
func (l *LayerIndex) NextStore(replaced int) *PieceStore {
	if l == nil || replaced > len(l.Grids)/replacedShare {
		return NewPieceStore()
	}
	next, err := l.leaves.st.extend()
	if err != nil {
		// An index always holds its store; a new one only costs a copy.
		return NewPieceStore()
	}
	return next
}

// piecesByVersion returns where the pieces of every grid of the index are
// in its store, by version id.
func (l *LayerIndex) piecesByVersion() map[int64][]storedPiece {
	out := map[int64][]storedPiece{}
	if l == nil {
		return out
	}
	for _, s := range []*pieceSet{&l.leaves, &l.inner} {
		for pi, p := range s.pieces {
			v := l.Grids[p.grid].VersionID
			out[v] = append(out[v], storedPiece{bound: s.tree.boxes[pi], c0: p.c0, c1: p.c1})
		}
	}
	return out
}

// edgeHash mixes the bits of an edge's two ends, each word multiplied in
// and folded down so that its high bits reach the low ones too. -0 hashes
// as 0, which it equals.
func edgeHash(a, b orb.Point) uint64 {
	var h uint64
	for _, v := range [4]float64{a[0], a[1], b[0], b[1]} {
		if v == 0 {
			v = 0
		}
		h = (h ^ math.Float64bits(v)) * 0x9e3779b97f4a7c15
		h ^= h >> 29
	}
	return h
}

// buildEdgeSet collects the edges of the pieces that lie on the boundary
// of the layer's coverage, in runs along their chains. An edge two grids
// share (one runs a -> b, the other b -> a) is inside the coverage and can
// never be nearest to a point outside it, so it is left out: found by
// sorting every real edge once, which halves what a nearest search walks.
func buildEdgeSet(s *pieceSet) edgeSet {
	st := s.st
	inner, edges := innerEdges(s, edgeRoundBudget)
	outer := func(c chain, i int32) bool {
		word, bit := bitAt(inner, i)
		return c.isReal(i-c.start) && *word&bit == 0
	}

	var es edgeSet
	var boxes []box
	for _, p := range s.pieces {
		for _, c := range st.chainsOf(p.c0, p.c1) {
			end := c.end()
			for i := c.start; i < end; {
				if !outer(c, i) {
					i++
					continue
				}
				ch := edgeChunk{grid: p.grid, start: i}
				a := st.at(i)
				b := box{a[0], a[1], a[0], a[1]}
				for i < end && outer(c, i) && ch.n < edgesPerChunk {
					q := st.at(i + 1)
					b.extend(box{q[0], q[1], q[0], q[1]})
					ch.n++
					i++
				}
				es.chunks = append(es.chunks, ch)
				boxes = append(boxes, b)
			}
		}
	}
	tree, order := packRTree(boxes)
	sorted := make([]edgeChunk, len(order))
	for i, o := range order {
		sorted[i] = es.chunks[o]
	}
	es.tree, es.chunks = tree, sorted
	es.near = newNearCells(tree, int64(edges)*16) // about a point an edge
	return es
}

// touch reads, for the first touchedCandidates of the candidate pieces,
// what a lookup reads of them next and last: the first chain and its first
// point, where a scan begins, and the grid's record and list of ancestors,
// which the answer's chain needs for its owner. In a province's index each
// of these is a cache miss, and a lookup made them one after another (the
// cell's list, then a piece, its chains, their points, its grid, its
// ancestors); read here for every candidate at once, before the first
// scan, they are in flight together. Alternating round by round in one
// process over 400 districts (30 rounds of 100,000 lookups with
// co-owners, either order first), a lookup took 0.75 and 0.76 of its time
// without it. It returns a sum of what it read, for the caller to keep:
// reads whose values go nowhere would be dropped by the compiler.
func (s *pieceSet) touch(l *LayerIndex, cand []int32) int32 {
	var t int32
	st := s.st
	for _, pi := range cand[:min(len(cand), touchedCandidates)] {
		p := &s.pieces[pi]
		t += l.Grids[p.grid].Parent
		if a := l.up[p.grid]; a >= 0 {
			t += l.ups[a]
		}
		if p.c1 > p.c0 {
			c := st.chains[p.c0>>chainBits][p.c0&chainPlace]
			t += int32(math.Float64bits(st.at(c.start)[0]))
		}
	}
	return t
}

// touchedCandidates bounds what touch reads: a point has a few candidate
// pieces, and a wide accuracy_m, with hundreds, spends its time scanning
// them, not waiting for the first.
const touchedCandidates = 8

// search appends to dst the pieces whose boxes meet q, from the lattice
// when q spans a few of its cells and none of them is crowded, else from
// the tree.
func (s *pieceSet) search(q box, dst []int32) []int32 {
	if s.cells != nil {
		if out, ok := s.cells.search(s.pieces, q, dst); ok {
			return out
		}
	}
	return s.tree.search(q, dst)
}

// Near is a grid near a looked-up point.
type Near struct {
	Grid   int32 // position in LayerIndex.Grids
	DistM  float64
	Reason string // gridmap.ReasonOnBoundary, ReasonWithinTolerance or ReasonWithinAccuracy
}

// Hit is the answer of LayerIndex.Lookup. It is reused between lookups so
// the hot path allocates nothing; its slices are overwritten by the next
// lookup into it.
type Hit struct {
	// Owner is the finest grid covering the point, or -1 when none does.
	Owner int32
	// CoOwners are the other leaf grids within the tolerance or accuracy
	// (or, for a point outside every grid, other than Nearest), nearest
	// first, ties by code.
	CoOwners []Near
	// Nearest is the leaf grid closest to a point outside every grid (-1
	// when the layer has none), with its distance.
	Nearest  int32
	NearestM float64

	cand    []int32
	grids   []gridDist
	touched int32 // what touch read, kept so that it reads
	heap    nodeHeap
}

type gridDist struct {
	grid   int32
	inside bool
	d      float64
}

func (h *Hit) note(g int32, inside bool, d float64) {
	for i := range h.grids {
		if h.grids[i].grid == g {
			h.grids[i].inside = h.grids[i].inside || inside
			h.grids[i].d = math.Min(h.grids[i].d, d)
			return
		}
	}
	h.grids = append(h.grids, gridDist{g, inside, d})
}

// MetresPerDegree returns the metres per degree of longitude and latitude
// at latitude lat on the WGS84 ellipsoid. Distances computed with them near
// the point are within 0.1% of the geodesic at city scale.
func MetresPerDegree(lat float64) (kx, ky float64) {
	const a, e2 = 6378137.0, 0.00669437999014
	phi := lat * math.Pi / 180
	s := math.Sin(phi)
	w := 1 - e2*s*s
	n := a / math.Sqrt(w)
	m := a * (1 - e2) / (w * math.Sqrt(w))
	return n * math.Cos(phi) * math.Pi / 180, m * math.Pi / 180
}

// Lookup finds the grids at (x, y) (longitude, latitude, WGS84): the finest
// grid covering the point, the other leaf grids within toleranceM or within
// accuracyM (0: none given) and, for a point outside every grid, the
// nearest grid. Boundary points follow OnBoundaryM. With h reused between
// calls it allocates nothing.
func (l *LayerIndex) Lookup(x, y, toleranceM, accuracyM float64, h *Hit) {
	h.Owner, h.Nearest, h.NearestM = -1, -1, 0
	h.CoOwners, h.grids = h.CoOwners[:0], h.grids[:0]
	kx, ky := MetresPerDegree(y)
	radius := math.Max(math.Max(toleranceM, accuracyM), OnBoundaryM)
	q := box{x - radius/kx, y - radius/ky, x + radius/kx, y + radius/ky}
	h.cand = l.leaves.search(q, h.cand[:0])
	h.touched = l.leaves.touch(l, h.cand)
	for _, pi := range h.cand {
		inside, d := l.leaves.scan(pi, x, y, kx, ky, radius)
		h.note(l.leaves.pieces[pi].grid, inside, d)
	}
	for _, g := range h.grids {
		if (g.inside || g.d <= OnBoundaryM) && (h.Owner < 0 || l.Grids[g.grid].Code < l.Grids[h.Owner].Code) {
			h.Owner = g.grid
		}
	}
	if h.Owner < 0 {
		h.Owner = l.innerOwner(x, y, kx, ky)
	}
	if h.Owner < 0 {
		l.nearest(x, y, kx, ky, radius, h)
	}
	for _, g := range h.grids {
		if g.grid == h.Owner || g.grid == h.Nearest || g.d > radius {
			continue
		}
		d := g.d
		if g.inside {
			d = 0
		}
		reason, d, ok := CoOwnerReason(d, accuracyM, toleranceM)
		if !ok {
			continue
		}
		h.CoOwners = append(h.CoOwners, Near{g.grid, d, reason})
	}
	// Insertion sort: a handful of co-owners, and sort.Slice would allocate.
	c := h.CoOwners
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && l.nearLess(c[j], c[j-1]); j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
}

func (l *LayerIndex) nearLess(a, b Near) bool {
	if a.DistM != b.DistM {
		return a.DistM < b.DistM
	}
	return l.Grids[a.Grid].Code < l.Grids[b.Grid].Code
}

// innerOwner finds the finest non-leaf grid covering the point (a point in
// a gap between children), preferring the lower code on a shared edge.
func (l *LayerIndex) innerOwner(x, y, kx, ky float64) int32 {
	if l.inner.tree.n == 0 {
		return -1
	}
	rx, ry := OnBoundaryM/kx, OnBoundaryM/ky
	var buf [64]int32
	owner := int32(-1)
	for _, pi := range l.inner.search(box{x - rx, y - ry, x + rx, y + ry}, buf[:0]) {
		inside, d := l.inner.scan(pi, x, y, kx, ky, OnBoundaryM)
		if !inside && d > OnBoundaryM {
			continue
		}
		g := l.inner.pieces[pi].grid
		if owner < 0 || l.depth(g) > l.depth(owner) ||
			(l.depth(g) == l.depth(owner) && l.Grids[g].Code < l.Grids[owner].Code) {
			owner = g
		}
	}
	return owner
}

// nearest sets h.Nearest for a point outside every grid: from the grids
// already measured when one is within the search radius, else from the
// chunks its lattice cell lists or, beyond the lattice, by walking the tree
// outwards.
func (l *LayerIndex) nearest(x, y, kx, ky, radius float64, h *Hit) {
	for _, g := range h.grids {
		if g.d <= radius && (h.Nearest < 0 || g.d < h.NearestM ||
			(g.d == h.NearestM && l.Grids[g.grid].Code < l.Grids[h.Nearest].Code)) {
			h.Nearest, h.NearestM = g.grid, g.d
		}
	}
	if h.Nearest >= 0 {
		return
	}
	t := l.edges.tree
	if t.n == 0 {
		return
	}
	best2, best := math.Inf(1), int32(-1)
	visit := func(chunk int32) {
		c := l.edges.chunks[chunk]
		pts := l.leaves.st.run(c.start, c.n)
		ax, ay := (pts[0][0]-x)*kx, (pts[0][1]-y)*ky
		for _, q := range pts[1:] {
			bx, by := (q[0]-x)*kx, (q[1]-y)*ky
			// An edge whose box is farther than the best edge cannot be
			// nearer: skip measuring it (with slack, relative and of a
			// square millimetre, so rounding never skips an edge as near
			// as the best).
			if gx, gy := spanGap(ax, bx), spanGap(ay, by); gx*gx+gy*gy <= best2*(1+1e-9)+1e-6 {
				d2 := segmentDist2(ax, ay, bx, by)
				if d2 < best2 || (d2 == best2 && l.Grids[c.grid].Code < l.Grids[best].Code) {
					best2, best = d2, c.grid
				}
			}
			ax, ay = bx, by
		}
	}
	defer func() { h.Nearest, h.NearestM = best, math.Sqrt(best2) }()
	// Within the lattice, the cell's chunks hold the nearest edge.
	if near := l.edges.near; near != nil {
		if i, ok := near.cell(x, y); ok {
			if list, ok := l.edges.candidates(i, l.leaves.st); ok {
				for _, c := range list {
					if float64(c.gap2) > best2 {
						break
					}
					if t.boxes[c.chunk].distM2(x, y, kx, ky) <= best2 {
						visit(c.chunk)
					}
				}
				return
			}
		}
	}
	// Beyond it, walk the boundary edges nearest first; stop when no box
	// left can hold anything closer than the best edge so far.
	visit(t.greedyLeaf(x, y, kx, ky))
	q := h.heap[:0]
	t.pushChildren(&q, -1, 0, x, y, kx, ky, best2)
	for len(q) > 0 {
		nd := q.pop()
		if nd.d2 > best2 {
			break
		}
		if nd.level > 0 {
			t.pushChildren(&q, nd.level, nd.node, x, y, kx, ky, best2)
			continue
		}
		visit(nd.node)
	}
	h.heap = q
}

// scan ray-casts the point against one piece and measures its distance in
// metres to the piece's real edges, skipping edges farther than radius in
// either axis. inside is meaningful only when the piece's box holds the
// point; the distance is +Inf when no real edge is within radius.
func (s *pieceSet) scan(pi int32, x, y, kx, ky, radius float64) (inside bool, distM float64) {
	p := s.pieces[pi]
	testInside := p.b.containsXY(x, y)
	rx, ry := radius/kx, radius/ky
	near := box{x - rx, y - ry, x + rx, y + ry}
	best := math.Inf(1)
	st := s.st
	for _, c := range st.chainsOf(p.c0, p.c1) {
		// An edge crosses the ray only if min(y1,y2) <= y < max(y1,y2)
		// and the crossing lies right of x, so never beyond the chain's
		// box; a point within a millimetre of the box edge is decided by
		// distance anyway.
		ray := testInside && float64(c.b.minY) <= y && y < float64(c.b.maxY) && x < float64(c.b.maxX)
		close := c.b.intersects(near)
		if !ray && !close {
			continue
		}
		pts := st.chainPoints(c)
		for i := 0; i+1 < len(pts); i++ {
			x1, y1, x2, y2 := pts[i][0], pts[i][1], pts[i+1][0], pts[i+1][1]
			if ray && (y1 > y) != (y2 > y) && x < x1+(y-y1)*(x2-x1)/(y2-y1) {
				inside = !inside
			}
			if !close || (y1 > near.maxY && y2 > near.maxY) || (y1 < near.minY && y2 < near.minY) ||
				(x1 > near.maxX && x2 > near.maxX) || (x1 < near.minX && x2 < near.minX) {
				continue
			}
			if !c.isReal(int32(i)) {
				continue
			}
			if d := segmentDist2((x1-x)*kx, (y1-y)*ky, (x2-x)*kx, (y2-y)*ky); d < best {
				best = d
			}
		}
	}
	return inside, math.Sqrt(best)
}

// spanGap is the distance from 0 to the span between a and b.
func spanGap(a, b float64) float64 {
	switch {
	case a > 0 && b > 0:
		return min(a, b)
	case a < 0 && b < 0:
		return -max(a, b)
	}
	return 0
}

// segmentDist2 is the squared distance from the origin to the segment a-b.
func segmentDist2(ax, ay, bx, by float64) float64 {
	dx, dy := bx-ax, by-ay
	l2 := dx*dx + dy*dy
	t := 0.0
	if l2 > 0 {
		// Clamped by hand: math.Min and math.Max are calls on amd64,
		// and this runs for every edge a lookup measures.
		t = -(ax*dx + ay*dy) / l2
		if t < 0 {
			t = 0
		} else if t > 1 {
			t = 1
		}
	}
	px, py := ax+t*dx, ay+t*dy
	return px*px + py*py
}

// Chain appends to dst the grid g (a position in Grids, not -1) and its
// ancestors, root first.
func (l *LayerIndex) Chain(g int32, dst []int32) []int32 {
	if a := l.up[g]; a >= 0 {
		n := l.ups[a]
		return append(append(dst, l.ups[a+1:a+1+n]...), g)
	}
	n := len(dst)
	for ; g >= 0; g = l.Grids[g].Parent {
		dst = append(dst, g)
	}
	slices.Reverse(dst[n:])
	return dst
}

// maxListedDepth bounds the ancestors listed for a grid: a deeper one
// (a grid nested in hundreds, which only bad data makes) has its chain
// walked, so the lists stay a few entries a grid.
const maxListedDepth = 32

// listAncestors fills up and ups from the grids' parents, which hold no
// cycle.
func (l *LayerIndex) listAncestors() {
	l.up = make([]int32, len(l.Grids))
	l.ups = []int32{0} // the roots' list, empty
	// at[p] is 1 + where p's chain (its children's ancestors) is in ups,
	// 0 before it is listed, -1 when it is too deep to list.
	at := make([]int32, len(l.Grids))
	var walk []int32
	for g := range l.Grids {
		p := l.Grids[g].Parent
		if p < 0 {
			continue
		}
		if at[p] == 0 {
			walk = walk[:0]
			for a := p; a >= 0 && len(walk) <= maxListedDepth; a = l.Grids[a].Parent {
				walk = append(walk, a)
			}
			if len(walk) > maxListedDepth {
				at[p] = -1
			} else {
				at[p] = int32(len(l.ups)) + 1
				l.ups = append(l.ups, int32(len(walk)))
				for i := len(walk) - 1; i >= 0; i-- {
					l.ups = append(l.ups, walk[i])
				}
			}
		}
		l.up[g] = max(at[p]-1, -1)
	}
	l.ups = slices.Clip(l.ups)
}

// GridByCode returns a grid's position, or -1.
func (l *LayerIndex) GridByCode(code string) int32 {
	if i, ok := l.byCode[code]; ok {
		return i
	}
	return -1
}

// Stats describes an index's size.
type Stats struct {
	Grids, Pieces, Vertices int
	// NearCells is how many lattice cells have their list of chunks
	// near them, in NearBytes with the lattice itself.
	NearCells int
	NearBytes int64
	// HugePageBytes is how many bytes of the arrays lookups read the
	// layer's build moved into huge pages; HugePagesShort and
	// HugePagesRefused count the huge pages it could not move for want of
	// memory and because the kernel would not (see hugepage.Result).
	HugePageBytes                    int64
	HugePagesShort, HugePagesRefused int
}

// Stats counts the grids, pieces and stored vertices of the layer, and
// what its lattice for points outside every grid holds so far.
func (l *LayerIndex) Stats() Stats {
	st := Stats{Grids: len(l.Grids), Pieces: len(l.leaves.pieces) + len(l.inner.pieces),
		Vertices: l.leaves.st.points, NearBytes: l.edges.near.bytes(),
		HugePageBytes: l.huge.Bytes, HugePagesShort: l.huge.Short, HugePagesRefused: l.huge.Refused}
	if l.edges.near != nil {
		st.NearCells = int(l.edges.near.filled.Load())
	}
	return st
}

// Index is the lookup index of every layer. It is immutable: With and
// Without return a new Index sharing the unchanged layers, so a reader
// holding one never sees a half-built state.
type Index struct {
	layers []*LayerIndex // by id
}

// NewIndex returns an index of the given layers.
func NewIndex(layers ...*LayerIndex) *Index {
	ix := &Index{layers: append([]*LayerIndex(nil), layers...)}
	sort.Slice(ix.layers, func(i, j int) bool { return ix.layers[i].ID < ix.layers[j].ID })
	return ix
}

// Layers returns the layers, ordered by id. The slice must not be changed.
func (ix *Index) Layers() []*LayerIndex { return ix.layers }

// Layer returns one layer's index, or nil.
func (ix *Index) Layer(id string) *LayerIndex {
	i := sort.Search(len(ix.layers), func(i int) bool { return ix.layers[i].ID >= id })
	if i < len(ix.layers) && ix.layers[i].ID == id {
		return ix.layers[i]
	}
	return nil
}

// With returns a copy of the index with l added or replacing the layer of
// the same id.
func (ix *Index) With(l *LayerIndex) *Index {
	out := make([]*LayerIndex, 0, len(ix.layers)+1)
	for _, o := range ix.layers {
		if o.ID != l.ID {
			out = append(out, o)
		}
	}
	return NewIndex(append(out, l)...)
}

// Without returns a copy of the index without the layer id.
func (ix *Index) Without(id string) *Index {
	out := make([]*LayerIndex, 0, len(ix.layers))
	for _, o := range ix.layers {
		if o.ID != id {
			out = append(out, o)
		}
	}
	return NewIndex(out...)
}
