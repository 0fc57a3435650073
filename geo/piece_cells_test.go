package geo

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestPieceCellsFindWhatTheTreeFinds asks the lattice and the tree the
// same queries (points, boxes of a few metres, boxes spanning several
// cells, boxes off the set) over New York's tracts and the inner grids, and
// over made sets that strain it: a huge piece among small ones, pieces far
// apart, pieces of no width. Every query the lattice answers must give the
// pieces the tree gives, each once.
func TestPieceCellsFindWhatTheTreeFinds(t *testing.T) {
	l, _ := nycLayer(t)
	rnd := rand.New(rand.NewPCG(11, 12))
	sets := map[string]*rtree{"nyc tracts": l.leaves.tree, "nyc boroughs and neighbourhoods": nycInner(t)}
	// The tracts' pieces as the index keeps them; the made sets' from
	// their trees.
	refsOfSet := map[string][]pieceRef{"nyc tracts": l.leaves.pieces}
	made := func(boxes ...box) *rtree { return packWide(boxes) }
	var small []box
	for range 2000 {
		x, y := rnd.Float64(), rnd.Float64()
		small = append(small, box{x, y, x + 0.01 + rnd.Float64()*0.02, y + 0.01 + rnd.Float64()*0.02})
	}
	sets["a huge piece among small ones"] = made(append(slices.Clone(small), box{-0.5, -0.5, 1.5, 1.5})...)
	var apart []box
	for i := range 500 {
		x := float64(i%2) * 1 // two towns 100 km apart
		x0, y0 := x+rnd.Float64()*0.1, rnd.Float64()*0.1
		apart = append(apart, box{x0, y0, x0 + 0.005 + rnd.Float64()*0.005, y0 + 0.005 + rnd.Float64()*0.005})
	}
	sets["pieces far apart"] = made(apart...)
	var points []box
	for range 300 {
		// Single-precision values: rounded outwards, the boxes keep no
		// width.
		x, y := float64(float32(rnd.Float64())), float64(float32(rnd.Float64()))
		points = append(points, box{x, y, x, y}, box{x, y, x, float64(float32(y + 0.01))}) // a point, a vertical sliver
	}
	sets["pieces of no width"] = made(points...)
	for _, b := range sets["pieces of no width"].boxes[:600] {
		if b.minX != b.maxX {
			t.Fatalf("a piece of no width became %+v", b)
		}
	}
	sets["a dense town among country pieces"] = denseTown(rnd)
	sets["a few large pieces among small ones"] = made(append(slices.Clone(small), largeAmongSmall(rnd)...)...)

	for name, tree := range sets {
		c, refs := newPieceCells(tree), refsOfSet[name]
		if refs == nil {
			refs = refsOf(tree)
		}
		if c == nil {
			t.Fatalf("%s: no lattice for %d pieces", name, tree.n)
		}
		ext := emptyBox()
		for _, b := range tree.boxes[:tree.n] {
			ext.extend(b)
		}
		w, h := ext.maxX-ext.minX, ext.maxY-ext.minY
		answered := 0
		var fromCells, fromTree []int32
		for i := range 20000 {
			x := ext.minX - 0.05*w + rnd.Float64()*1.1*w
			y := ext.minY - 0.05*h + rnd.Float64()*1.1*h
			var q box
			switch i % 4 {
			case 0: // a point
				q = box{x, y, x, y}
			case 1: // a query of a few metres
				q = box{x - 3e-5, y - 3e-5, x + 3e-5, y + 3e-5}
			case 2: // about a cell: often two to four of them
				q = box{x, y, x + 1/c.ix, y + 1/c.iy}
			default: // a point on a piece's corner, where boxes only touch
				b := tree.boxes[rnd.IntN(tree.n)]
				q = box{b.maxX, b.maxY, b.maxX, b.maxY}
				if i%8 == 7 {
					q = box{b.minX, b.minY, b.minX, b.minY}
				}
			}
			var ok bool
			fromCells, ok = c.search(refs, q, fromCells[:0])
			if !ok {
				continue
			}
			answered++
			fromTree = tree.search(q, fromTree[:0])
			slices.Sort(fromCells)
			slices.Sort(fromTree)
			if !slices.Equal(fromCells, fromTree) {
				t.Fatalf("%s: query %+v: lattice %v, tree %v", name, q, fromCells, fromTree)
			}
		}
		if answered < 10000 {
			t.Errorf("%s: the lattice answered %d of 20000 queries; most span a cell or less", name, answered)
		}
	}
}

// denseTown is 40,000 country pieces of 0.01 degrees over 2 by 2 degrees
// and a town of 2,000 pieces of 0.0002 degrees in 0.005 degrees among them:
// the cells are sized for the country, and the town's cells list all of
// it.
func denseTown(rnd *rand.Rand) *rtree {
	var boxes []box
	for i := range 200 {
		for j := range 200 {
			x, y := float64(i)*0.01, float64(j)*0.01
			boxes = append(boxes, box{x, y, x + 0.01, y + 0.01})
		}
	}
	for range 2000 {
		x, y := 1+rnd.Float64()*0.005, 1+rnd.Float64()*0.005
		boxes = append(boxes, box{x, y, x + 0.0002, y + 0.0002})
	}
	tree := packWide(boxes)
	return tree
}

// largeAmongSmall is 100 pieces twenty-five times the small ones' size:
// listed in the cells the small ones would have, they would cost too many
// listings, so the cells grow.
func largeAmongSmall(rnd *rand.Rand) []box {
	var out []box
	for range 100 {
		x, y := rnd.Float64(), rnd.Float64()
		out = append(out, box{x, y, x + 0.5, y + 0.5})
	}
	return out
}

// TestPieceCellsLeaveCrowdedCellsToTheTree: a point in the dense town is
// answered by the tree, not by reading the town's list in its one cell; a
// point in the country by the lattice. And the cells of a set with a few
// large pieces among small ones grow beyond the small ones' size.
func TestPieceCellsLeaveCrowdedCellsToTheTree(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	tree := denseTown(rnd)
	c := newPieceCells(tree)
	if c == nil {
		t.Fatal("no lattice for the country and its town")
	}
	if _, ok := c.search(refsOf(tree), box{1.0025, 1.0025, 1.0025, 1.0025}, nil); ok {
		t.Error("a point in the town was answered from a crowded cell")
	}
	if got, ok := c.search(refsOf(tree), box{0.505, 0.505, 0.505, 0.505}, nil); !ok || len(got) != 1 {
		t.Errorf("a point in the country: %v, answered from the lattice %v; want one piece, from the lattice", got, ok)
	}

	var small []box
	for range 2000 {
		x, y := rnd.Float64(), rnd.Float64()
		small = append(small, box{x, y, x + 0.02, y + 0.02})
	}
	grown := packWide(append(small, largeAmongSmall(rnd)...))
	if c := newPieceCells(grown); c == nil {
		t.Error("a few large pieces among small ones: no lattice")
	} else if 1/c.ix < 0.03 {
		t.Errorf("a few large pieces among small ones: cells of %g degrees, want them grown past the small pieces' 0.02", 1/c.ix)
	}
}

// TestPieceCellsBounded checks that a set the lattice does not suit keeps
// its tree: pieces each spanning most of a lattice made for the many
// small ones would list every piece in thousands of cells.
func TestPieceCellsBounded(t *testing.T) {
	var boxes []box
	for i := range 1500 {
		x := float64(i) * 0.001
		boxes = append(boxes, box{x, 0, x + 0.0005, 0.0005})
	}
	for i := range 500 {
		boxes = append(boxes, box{0, float64(i) * 1e-6, 1, 1})
	}
	tree := packWide(boxes)
	if c := newPieceCells(tree); c != nil {
		t.Fatalf("a lattice of %d listings for %d pieces", len(c.items), len(boxes))
	}
}

// nycInner returns the tree of the pieces of New York's boroughs and
// neighbourhoods: pieces of every size, nested two deep.
func nycInner(t *testing.T) *rtree {
	var boxes []box
	for file, code := range map[string]string{"L1_boroughs.geojson": "borocode", "L2_nta2010.geojson": "ntacode"} {
		f, err := os.Open(filepath.Join("..", "..", "shared", "data", "nyc", file))
		if err != nil {
			t.Skipf("NYC data not found (%v)", err)
		}
		r := NewFeatureReader(f, FieldMap{Code: code, DefaultLevel: "x"})
		for n := 0; ; n++ {
			feat, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: feature %d: %v", file, n, err)
			}
			mp, err := Polygonal(feat.Geometry)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range subdividePolygon(mp, DefaultMaxPieceVertices) {
				boxes = append(boxes, p.bound)
			}
		}
		f.Close()
	}
	if len(boxes) < 5+195 {
		t.Fatalf("read %d pieces of boroughs and neighbourhoods", len(boxes))
	}
	tree := packWide(boxes)
	return tree
}

// TestPieceSetBoxesAreTheTrees: a piece set's pieces carry, by position,
// the boxes of its tree exactly; the lattice lists pieces by the tree's
// boxes and reports each once by its own, so the two must be the same.
// Over New York's tracts, every tenth of them under a parent of its own
// shape, so that both sets have pieces.
func TestPieceSetBoxesAreTheTrees(t *testing.T) {
	in := nycTracts(t)
	for i := range len(in.Grids) / 10 {
		g := &in.Grids[i*10]
		g.Parent = "P" + g.Code
		in.Grids = append(in.Grids, GridInput{Code: g.Parent, Level: "tract", Geometry: g.Geometry, VersionID: int64(len(in.Grids) + 1)})
	}
	l, err := BuildLayerIndex(in, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*pieceSet{"leaves": &l.leaves, "inner": &l.inner} {
		if len(s.pieces) != s.tree.n || s.tree.n == 0 {
			t.Fatalf("%s: %d pieces, a tree of %d", name, len(s.pieces), s.tree.n)
		}
		for i, p := range s.pieces {
			if p.b.wide() != s.tree.boxes[i] {
				t.Fatalf("%s: piece %d has box %+v, its tree %+v", name, i, p.b.wide(), s.tree.boxes[i])
			}
		}
	}
}

// packWide packs boxes as a piece set does: each rounded outwards to single
// precision first, so the tree's boxes are the pieces' own.
func packWide(boxes []box) *rtree {
	wide := make([]box, len(boxes))
	for i, b := range boxes {
		wide[i] = outward(b).wide()
	}
	tree, _ := packRTree(wide)
	return tree
}

// refsOf is the pieces of tree, by position, as the lattice reads them: a
// box each.
func refsOf(tree *rtree) []pieceRef {
	refs := make([]pieceRef, tree.n)
	for i, b := range tree.boxes[:tree.n] {
		refs[i].b = outward(b)
	}
	return refs
}
