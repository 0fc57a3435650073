package demo

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/paulmach/orb"
	"golang.org/x/sync/errgroup"
)

// A generated province is n districts side by side, each made by the same
// generator as the demo district from a seed of its own. They are n roots
// of the one comprehensive layer (levels district > street > community >
// grid > microgrid, as with one district) and of the police layer; the
// first district is the demo district, grid for grid.

// MaxDistricts is how many districts a province can hold: the county
// codes 33ppcc with prefecture pp and county cc from 01 to 99, from 330106.
const MaxDistricts = 99*99 - 5

// Where the districts go: on a grid of columns westwards and rows
// southwards from the demo district. An outline reaches at most 0.112
// degrees east or west of its centre and 0.094 north or south (radii 0.09
// and 0.075, stretched by at most 1.245), so neighbours stay apart by a
// gap of about two kilometres.
// The grid has districtColumns columns whatever the number of districts,
// so that district k is in the same place in every province: a province
// grows by running the generator again with more districts.
const (
	districtStepX   = 0.25
	districtStepY   = 0.21
	districtColumns = 20
)

// DistrictCode returns the GB/T 2260-style county code of district k
// (0-based) of a province: 330106 for the first, then 330107 to 330199,
// 330201 and so on.
func DistrictCode(k int) string {
	n := k + 5 // 330106 is the sixth code of prefecture 01
	return fmt.Sprintf("33%02d%02d", 1+n/99, 1+n%99)
}

// DistrictSeed returns the seed district k of the province of seed is
// generated from: seed itself for the first, a SplitMix64 step from seed
// and k for the others.
func DistrictSeed(seed uint64, k int) uint64 {
	if k == 0 {
		return seed
	}
	z := seed + uint64(k)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Layers returns the demo layers of a province of n districts: for one,
// the demo district's own; for more, layers named for the province whose
// code patterns accept every district's codes.
func Layers(n int) []*gridmap.Layer {
	comp := &gridmap.Layer{ID: LayerID, Name: "西湖区（演示）综合网格", Kind: gridmap.KindComprehensive,
		Levels:      []string{"district", "street", "community", "grid", "microgrid"},
		CodePattern: `^` + CountyCode + `(\d{3}(\d{3}(\d{3}(\d{2})?)?)?)?$`}
	police := &gridmap.Layer{ID: PoliceLayerID, Name: "西湖区（演示）警务网格", Kind: gridmap.KindDepartmental,
		Levels: []string{"station", "beat"}, CodePattern: `^PS\d{2}(-\d{2})?$`}
	if n > 1 {
		comp.Name, comp.CodePattern = "浙江省（演示）综合网格", `^33\d{4}(\d{3}(\d{3}(\d{3}(\d{2})?)?)?)?$`
		police.Name, police.CodePattern = "浙江省（演示）警务网格", `^PS\d{2,5}(-\d{2})?$`
	}
	return []*gridmap.Layer{comp, police}
}

// provinceDistrict is where district k of a province of n goes and what it
// is called. Names other than the first's are two-character place names
// dealt from a shuffle of seed, so that no two districts share one.
func provinceDistrict(seed uint64, k, n int) districtSpec {
	if k == 0 {
		return firstDistrict()
	}
	first := firstDistrict()
	cols := districtColumns
	s := districtSpec{code: DistrictCode(k), firstStation: k*PoliceStations + 1,
		centre: orb.Point{round7(first.centre[0] - districtStepX*float64(k%cols)), round7(first.centre[1] - districtStepY*float64(k/cols))}}
	var places []string
	for _, a := range nameFirst {
		for _, b := range nameSecond {
			if p := string(a) + string(b); p != "西湖" { // the first district's
				places = append(places, p)
			}
		}
	}
	rand.New(rand.NewPCG(seed, 0xd157)).Shuffle(len(places), func(i, j int) { places[i], places[j] = places[j], places[i] })
	place := places[(k-1)%len(places)]
	s.name = place + "区（演示）"
	if round := (k-1)/len(places) + 1; round > 1 {
		s.name = fmt.Sprintf("%s%d区（演示）", place, round)
	}
	return s
}

// GenerateProvince builds the n districts of the province of seed,
// workers at a time, and hands them to fn in order (k from 0), each with
// the province's layers. A district is dropped once fn returns, and at
// most workers are held at once, so a province of any size generates in
// the memory of a few districts. workers 0 means one per two CPUs: the
// GEOS geometry a district leaves is freed by Go's cleanups, which fell
// behind a worker per CPU and let memory grow. It stops at the first
// error of a district or of fn; a number of districts outside 1 to
// MaxDistricts is EINVALID.
func GenerateProvince(ctx context.Context, seed uint64, n, workers int, fn func(k int, d *District) error) error {
	if n < 1 || n > MaxDistricts {
		return gridmap.Errorf(gridmap.EINVALID, "a province has 1 to %d districts, not %d", MaxDistricts, n)
	}
	if workers <= 0 {
		workers = max(1, runtime.GOMAXPROCS(0)/2)
	}
	layers := Layers(n)
	done := make([]chan *District, n)
	for k := range done {
		done[k] = make(chan *District, 1)
	}
	tokens := make(chan struct{}, workers) // districts generated and not yet handed over
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		for k := range n {
			select {
			case d := <-done[k]:
				err := fn(k, d)
				<-tokens
				if err != nil {
					return err
				}
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	next := make(chan int)
	g.Go(func() error {
		defer close(next)
		for k := range n {
			select {
			case tokens <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			select {
			case next <- k:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			// GEOS allocates with C malloc, which keeps what is freed in
			// an arena per calling thread, and its geometry is freed only
			// by the cleanups of a Go collection. A worker that wandered
			// over the scheduler's threads, never collected or trimmed,
			// grew the process by some 30 MB a district (1.3 GB for 40).
			// So: one thread a worker, and a collection and a trim after
			// each district.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			sub := geo.NewSubdivider()
			for k := range next {
				d, err := generate(DistrictSeed(seed, k), provinceDistrict(seed, k, n), layers, sub)
				if err != nil {
					return fmt.Errorf("district %d (%s): %w", k+1, DistrictCode(k), err)
				}
				runtime.GC()
				geo.TrimCHeap()
				done[k] <- d
			}
			return nil
		})
	}
	return g.Wait()
}

// LoadProvince defines the demo layers of a province of n districts and
// imports them: the comprehensive layer streamed as GenerateProvince makes
// the districts, then the police layer. Loading the same province again
// changes nothing. The District returned holds the layers, the police
// grids and only the micro-grids of the comprehensive layer (where
// LoadReports and LoadHistory place reports), not their parents.
func LoadProvince(ctx context.Context, layers gridmap.LayerService, imp gridmap.Importer, seed uint64, n, workers int) (*District, []*gridmap.ImportResult, error) {
	kept := &District{Layers: Layers(n), Grids: map[string][]*gridmap.Feature{}}
	for _, l := range kept.Layers {
		def := *l
		if _, err := layers.PutLayer(ctx, &def); err != nil {
			return nil, nil, fmt.Errorf("defining layer %s: %w", l.ID, err)
		}
	}
	genCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	src := &streamSource{features: make(chan *gridmap.Feature, 1024)}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		src.err = GenerateProvince(genCtx, seed, n, workers, func(_ int, d *District) error {
			kept.Grids[PoliceLayerID] = append(kept.Grids[PoliceLayerID], d.Grids[PoliceLayerID]...)
			for _, f := range d.Grids[LayerID] {
				select {
				case src.features <- f:
				case <-genCtx.Done():
					return genCtx.Err()
				}
				if f.Level == "microgrid" {
					kept.Grids[LayerID] = append(kept.Grids[LayerID], f)
				}
			}
			return nil
		})
		close(src.features) // after src.err: Next reads it once it sees the close
	}()
	opts := gridmap.ImportOptions{Author: "gridmap demo", Reason: "demo district"}
	comp, err := imp.Import(ctx, LayerID, src, opts)
	cancel() // a failed import leaves the generator waiting to send
	<-stopped
	if err != nil {
		return nil, nil, fmt.Errorf("importing layer %s: %w", LayerID, err)
	}
	for i, f := range kept.Grids[PoliceLayerID] {
		f.Index = i
	}
	police, err := imp.Import(ctx, PoliceLayerID, &sliceSource{features: kept.Grids[PoliceLayerID]}, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("importing layer %s: %w", PoliceLayerID, err)
	}
	return kept, []*gridmap.ImportResult{comp, police}, nil
}

// streamSource hands the importer features as they arrive, numbering
// them across districts.
type streamSource struct {
	features chan *gridmap.Feature
	err      error // why the generator stopped, set before features is closed
	next     int
}

func (s *streamSource) Next() (*gridmap.Feature, error) {
	f, ok := <-s.features
	if !ok && s.err != nil {
		return nil, s.err // the import stops and writes nothing
	} else if !ok {
		return nil, io.EOF
	}
	f.Index = s.next
	s.next++
	return f, nil
}
