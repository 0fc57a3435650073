package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/paulmach/orb"
)

// walking is l with no lattice: the nearest grid by walking the tree, as
// every lookup outside the lattice finds it.
func walking(l *LayerIndex) *LayerIndex {
	w := *l
	w.edges.near = nil
	return &w
}

// sameHits fails unless the two lookups answered alike, to the bit.
func sameHits(t *testing.T, l *LayerIndex, x, y float64, got, want *Hit) {
	t.Helper()
	if got.Owner != want.Owner || got.Nearest != want.Nearest || got.NearestM != want.NearestM ||
		!reflect.DeepEqual(got.CoOwners, want.CoOwners) {
		t.Fatalf("point (%.9f %.9f): from the lattice owner %d nearest %d at %v m, co-owners %v; walking %d, %d at %v m, %v",
			x, y, got.Owner, got.Nearest, got.NearestM, got.CoOwners, want.Owner, want.Nearest, want.NearestM, want.CoOwners)
	}
}

// TestNearestFromCellsMatchesTheWalk looks up points over New York, its
// lattice's margin and beyond it, and points on cell edges and corners,
// from the lattice and by walking the tree: every answer is the same to
// the bit, and the lattice answered most points outside the city.
func TestNearestFromCellsMatchesTheWalk(t *testing.T) {
	l, _ := nycLayer(t)
	near := l.edges.near
	if near == nil {
		t.Fatal("the NYC tracts have no lattice")
	}
	walk := walking(l)
	w, h := near.sx*float64(near.nx), near.sy*float64(near.ny)
	rnd := rand.New(rand.NewPCG(11, 12))
	var pts [][2]float64
	for range 20_000 {
		// A tenth past the lattice on every side.
		pts = append(pts, [2]float64{near.x0 - w/10 + rnd.Float64()*w*1.2, near.y0 - h/10 + rnd.Float64()*h*1.2})
	}
	for range 2_000 {
		cx, cy := rnd.IntN(near.nx+1), rnd.IntN(near.ny+1)
		x, y := near.x0+float64(cx)*near.sx, near.y0+float64(cy)*near.sy
		pts = append(pts, [2]float64{x, y}, [2]float64{x, near.y0 + rnd.Float64()*h}, [2]float64{near.x0 + rnd.Float64()*w, y},
			[2]float64{math.Nextafter(x, math.Inf(-1)), math.Nextafter(y, math.Inf(-1))})
	}
	var got, want Hit
	fromCells := 0
	for _, p := range pts {
		l.Lookup(p[0], p[1], 30, 0, &got)
		walk.Lookup(p[0], p[1], 30, 0, &want)
		sameHits(t, l, p[0], p[1], &got, &want)
		if _, in := near.cell(p[0], p[1]); in && got.Owner < 0 && got.NearestM > 30 {
			fromCells++
		}
	}
	if fromCells < 5_000 {
		t.Fatalf("only %d of %d points were answered from the lattice", fromCells, len(pts))
	}
}

// scattered is a layer of n triangles of random sizes scattered over w by
// h degrees from (x, y), the codes G00 on.
func scattered(t *testing.T, seed uint64, n int, x, y, w, h, size float64) (*LayerIndex, LayerInput) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, seed+1))
	in := LayerInput{ID: "s", Levels: []string{"grid"}}
	for i := range n {
		gx, gy := x+rnd.Float64()*w, y+rnd.Float64()*h
		s := size * (0.1 + rnd.Float64())
		in.Grids = append(in.Grids, GridInput{Code: fmt.Sprintf("G%02d", i), Level: "grid",
			Geometry: orb.MultiPolygon{{{{gx, gy}, {gx + s, gy + s/3}, {gx + s/2, gy + s}, {gx, gy}}}}})
	}
	l, err := BuildLayerIndex(in, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.edges.near == nil {
		t.Fatal("no lattice")
	}
	return l, in
}

// nearestByEveryEdge is the nearest grid of in to (x, y) and its distance,
// from every edge of every grid, ties to the lower code.
func nearestByEveryEdge(in LayerInput, x, y float64) (string, float64) {
	best, bestD := "", math.Inf(1)
	for _, g := range in.Grids {
		if d := ringDistM(g.Geometry, x, y); d < bestD || (d == bestD && g.Code < best) {
			best, bestD = g.Code, d
		}
	}
	return best, bestD
}

// TestNearestFromCellsAgainstEveryEdge builds small layers of scattered
// triangles, about the equator (cells straddling it), far north, far
// south and near the date line, with fine cells and with cells degrees
// wide over thirty degrees of latitude (where the metres in a degree of
// longitude change across a cell), and checks the nearest grid of points
// around them against the tree walk, to the bit, and against every edge
// of every grid.
func TestNearestFromCellsAgainstEveryEdge(t *testing.T) {
	for _, c := range []struct {
		name             string
		x, y, w, h, size float64
		n                int
	}{
		{"equator", 0, -0.05, 0.5, 0.1, 0.01, 60},
		{"north", 20, 79.5, 0.5, 0.1, 0.01, 60},
		{"south", -60, -62, 0.5, 0.1, 0.01, 60},
		{"date line", 179.4, -45, 0.5, 0.1, 0.01, 60},
		{"wide", 100, 30, 40, 30, 1, 12},
		{"wide across the equator", -30, -15, 40, 30, 1, 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, in := scattered(t, uint64(len(c.name)), c.n, c.x, c.y, c.w, c.h, c.size)
			walk := walking(l)
			rnd := rand.New(rand.NewPCG(5, uint64(len(c.name))))
			var got, want Hit
			fromCells := 0
			for range 3_000 {
				x, y := c.x-c.w/5+rnd.Float64()*c.w*1.4, c.y-c.h/5+rnd.Float64()*c.h*1.4
				l.Lookup(x, y, 0, 0, &got)
				walk.Lookup(x, y, 0, 0, &want)
				sameHits(t, l, x, y, &got, &want)
				if got.Owner >= 0 {
					continue
				}
				if _, in := l.edges.near.cell(x, y); in {
					fromCells++
				}
				best, bestD := nearestByEveryEdge(in, x, y)
				if l.Grids[got.Nearest].Code != best || math.Abs(got.NearestM-bestD) > 1e-6*max(1, bestD) {
					t.Fatalf("point (%.7f %.7f): nearest %s at %.4f m, want %s at %.4f m",
						x, y, l.Grids[got.Nearest].Code, got.NearestM, best, bestD)
				}
			}
			if fromCells < 1_000 {
				t.Fatalf("only %d points were answered from the lattice", fromCells)
			}
		})
	}
}

// TestNearestFromCellsNearAPole: a layer reaching within a degree of the
// north pole has lattice cells past it, where a degree of longitude has
// no length; their points get the walk's answers.
func TestNearestFromCellsNearAPole(t *testing.T) {
	l, _ := scattered(t, 3, 40, 0, 80, 120, 9, 1)
	near := l.edges.near
	if top := near.y0 + float64(near.ny)*near.sy; top <= 90 {
		t.Fatalf("the lattice ends at %.2f, not past the pole", top)
	}
	walk := walking(l)
	rnd := rand.New(rand.NewPCG(8, 9))
	var got, want Hit
	for range 20_000 {
		x, y := -10+rnd.Float64()*140, 88+rnd.Float64()*2
		l.Lookup(x, y, 0, 0, &got)
		walk.Lookup(x, y, 0, 0, &want)
		sameHits(t, l, x, y, &got, &want)
	}
}

// TestNearestFromCellsTies: two squares mirrored about a meridian; points
// on it are as near to both, to the bit, and get the lower code, from
// the lattice as from the walk.
func TestNearestFromCellsTies(t *testing.T) {
	in := LayerInput{ID: "t", Levels: []string{"grid"}, Grids: []GridInput{
		{Code: "B", Level: "grid", Geometry: orb.MultiPolygon{{sq(10.5, 10, 0.25)}}},
		{Code: "A", Level: "grid", Geometry: orb.MultiPolygon{{sq(9.25, 10, 0.25)}}},
	}}
	l, err := BuildLayerIndex(in, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	walk := walking(l)
	var got, want Hit
	for k := range 200 {
		y := 9.5 + float64(k)*0.0065
		l.Lookup(10, y, 0, 0, &got)
		walk.Lookup(10, y, 0, 0, &want)
		sameHits(t, l, 10, y, &got, &want)
		if l.Grids[got.Nearest].Code != "A" {
			t.Fatalf("point (10 %.4f): nearest %s, want A (a tie goes to the lower code)", y, l.Grids[got.Nearest].Code)
		}
	}
}

// TestMetresPerDegreeOverBoundsEveryLatitude: between any two latitudes,
// the metres in a degree at every latitude lie within the bounds.
func TestMetresPerDegreeOverBoundsEveryLatitude(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 2_000 {
		y0 := -90 + rnd.Float64()*180
		y1 := min(90, y0+rnd.Float64()*rnd.Float64()*60)
		kxLo, kyLo, kxHi, kyHi := metresPerDegreeOver(y0, y1)
		for k := range 50 {
			y := min(y1, y0+(y1-y0)*float64(k)/49)
			kx, ky := MetresPerDegree(y)
			if kx < kxLo || kx > kxHi || ky < kyLo || ky > kyHi {
				t.Fatalf("between %.4f and %.4f: at %.4f kx %.3f ky %.3f, bounds kx %.3f-%.3f ky %.3f-%.3f",
					y0, y1, y, kx, ky, kxLo, kxHi, kyLo, kyHi)
			}
		}
	}
}

// TestNearestCellsWithinTheirBound: a lattice with room for a few lists
// keeps no more, and the cells without one are answered by the walk, to
// the bit.
func TestNearestCellsWithinTheirBound(t *testing.T) {
	l, _ := scattered(t, 11, 60, 0, -0.05, 0.5, 0.1, 0.01)
	l.edges.near.left.Store(2_000)
	walk := walking(l)
	rnd := rand.New(rand.NewPCG(3, 3))
	var got, want Hit
	for range 5_000 {
		x, y := -0.1+rnd.Float64()*0.7, -0.07+rnd.Float64()*0.14
		l.Lookup(x, y, 0, 0, &got)
		walk.Lookup(x, y, 0, 0, &want)
		sameHits(t, l, x, y, &got, &want)
	}
	st := l.Stats()
	if st.NearCells == 0 || l.edges.near.held.Load() > 2_000 || l.edges.near.left.Load() < 0 {
		t.Fatalf("%d cells hold %d bytes of lists, %d left of 2,000", st.NearCells, l.edges.near.held.Load(), l.edges.near.left.Load())
	}
}

// TestNearestCellsFilledConcurrently has eight goroutines look up the same
// points outside a fresh layer, so that cells are filled while others
// read them: every answer matches the tree walk's.
func TestNearestCellsFilledConcurrently(t *testing.T) {
	l, _ := scattered(t, 21, 200, 120, 30, 1, 1, 0.02)
	walk := walking(l)
	near := l.edges.near
	rnd := rand.New(rand.NewPCG(21, 22))
	pts := make([][2]float64, 4_000)
	want := make([]Hit, len(pts))
	for i := range pts {
		pts[i] = [2]float64{near.x0 + rnd.Float64()*near.sx*float64(near.nx), near.y0 + rnd.Float64()*near.sy*float64(near.ny)}
		walk.Lookup(pts[i][0], pts[i][1], 30, 0, &want[i])
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h Hit
			for k := range pts {
				i := (k + g*len(pts)/8) % len(pts)
				l.Lookup(pts[i][0], pts[i][1], 30, 0, &h)
				if h.Owner != want[i].Owner || h.Nearest != want[i].Nearest || h.NearestM != want[i].NearestM {
					errs <- fmt.Sprintf("point %d: nearest %d at %v m, walking %d at %v m", i, h.Nearest, h.NearestM, want[i].Nearest, want[i].NearestM)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if st := l.Stats(); st.NearCells == 0 || int64(st.NearCells) > int64(len(near.cells)) {
		t.Errorf("%d cells filled of %d", st.NearCells, len(near.cells))
	}
}
