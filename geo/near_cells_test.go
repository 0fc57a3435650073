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

// TestNearestFromCellsAgainstEveryEdge builds small layers of scattered
// squares at the equator (cells straddling it), far north and on both
// sides of the antimeridian's neighbourhood, and checks the nearest grid
// of points around them against every edge of every grid.
func TestNearestFromCellsAgainstEveryEdge(t *testing.T) {
	for _, at := range [][2]float64{{0, -0.05}, {20, 79.5}, {179.4, -45}, {-60, -0.3}} {
		t.Run(fmt.Sprintf("%.1f,%.1f", at[0], at[1]), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(uint64(at[0]*10+1000), uint64(at[1]*10+1000)))
			in := LayerInput{ID: "s", Levels: []string{"grid"}}
			for i := range 60 {
				x, y := at[0]+rnd.Float64()*0.5, at[1]+rnd.Float64()*0.1
				s := 0.001 + rnd.Float64()*0.01
				in.Grids = append(in.Grids, GridInput{Code: fmt.Sprintf("G%02d", i), Level: "grid",
					Geometry: orb.MultiPolygon{{{{x, y}, {x + s, y + s/3}, {x + s/2, y + s}, {x, y}}}}})
			}
			l, err := BuildLayerIndex(in, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if l.edges.near == nil {
				t.Fatal("no lattice")
			}
			walk := walking(l)
			var got, want Hit
			fromCells := 0
			for range 3_000 {
				x, y := at[0]-0.1+rnd.Float64()*0.7, at[1]-0.05+rnd.Float64()*0.2
				l.Lookup(x, y, 0, 0, &got)
				walk.Lookup(x, y, 0, 0, &want)
				sameHits(t, l, x, y, &got, &want)
				if got.Owner >= 0 {
					continue
				}
				if _, in := l.edges.near.cell(x, y); in {
					fromCells++
				}
				best, bestD := "", math.Inf(1)
				for _, g := range in.Grids {
					if d := ringDistM(g.Geometry, x, y); d < bestD || (d == bestD && g.Code < best) {
						best, bestD = g.Code, d
					}
				}
				if l.Grids[got.Nearest].Code != best || math.Abs(got.NearestM-bestD) > 1e-6 {
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

// TestNearestCellsFilledConcurrently has eight goroutines look up the same
// points outside New York's tracts on a fresh index, so that cells are
// filled while others read them: every answer matches the tree walk's.
func TestNearestCellsFilledConcurrently(t *testing.T) {
	_, in := nycLayer(t)
	l, err := BuildLayerIndex(in, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	walk := walking(l)
	near := l.edges.near
	rnd := rand.New(rand.NewPCG(21, 22))
	pts := make([][2]float64, 2_000)
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
}
