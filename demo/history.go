package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"golang.org/x/sync/errgroup"
)

// History is a year of demo reports, for trying the service at scale: N
// reports spread evenly over the 365 days before End, of which about one in
// ten of those older than a month has been moved on through the workflow.
//
// Report i follows from Seed and i alone (its own random stream), so a
// history is the same whoever files it in whatever order, and the first M
// reports of a history of N > M are the history of M.
type History struct {
	Seed uint64
	N    int
	// End is when the year ends; zero for the start of the current day
	// (UTC), so that filing again the same day finds the same reports.
	End time.Time
	// Workers is how many reports are filed at once; 0 for 8. Each holds
	// one database connection at a time.
	Workers int
	// Progress, when set, is called with the number of reports done after
	// every ProgressEvery of them, from the goroutine that did the last one.
	Progress func(done int)
}

// ProgressEvery is how many reports History.Progress is called after.
const ProgressEvery = 10_000

// HistoryResult counts what LoadHistory did.
type HistoryResult struct {
	Filed    int // reports created
	Existing int // reports already there (same external id)
	Moved    int // reports moved on through the workflow
	Moves    int // workflow events added
}

// HistoryExternalID is the external id of report i of seed's history:
// "demo-<seed>-y<i>" (i in six digits or more), apart from LoadReports'
// "demo-NNNN".
func HistoryExternalID(seed uint64, i int) string { return fmt.Sprintf("demo-%d-y%06d", seed, i) }

// Categories are not equally common: litter and street trading fill a
// dispatcher's day, burst gas mains do not. Keyed by subcategory code.
var categoryWeights = map[string]int{
	"0101": 20, "0102": 8, "0103": 12, "0201": 12, "0202": 5, "0301": 8, "0302": 5,
	"0401": 8, "0402": 12, "0403": 6, "0501": 1, "0502": 2, "0503": 1,
}

// sourceWeights weighs sources, in the order of sources.
var sourceWeights = []int{25, 35, 25, 5, 10}

// How far a moved-on report of the history has got, with the weight of
// each path. Bounded so that a large history costs a few workflow moves
// per moved report.
var historyPaths = []struct {
	weight  int
	actions []string
}{
	{4, []string{dispatch.ActionRegister}},
	{2, []string{dispatch.ActionRegister, dispatch.ActionDispatch}},
	{2, []string{dispatch.ActionRegister, dispatch.ActionDispatch, dispatch.ActionStart}},
	{3, []string{dispatch.ActionRegister, dispatch.ActionDispatch, dispatch.ActionStart, dispatch.ActionResolve, dispatch.ActionVerify, dispatch.ActionClose}},
	{1, []string{dispatch.ActionReject}},
}

// Which reports of the history are moved on: a share of those older than
// movedAfter.
const (
	movedAfter = 30 * 24 * time.Hour
	movedShare = 0.11
)

// HistoryReport returns report i of the history of seed over the year
// before end, placed in one of cells (from the district's micro-grids),
// and the workflow actions it has been moved on by (none for most).
func HistoryReport(cells []orb.MultiPolygon, seed uint64, i int, end time.Time) (*gridmap.Report, []string) {
	rnd := rand.New(rand.NewPCG(seed, 0x5eed0000_00000000|uint64(i)))
	p := placeReport(cells, rnd)
	subs := subcategories()
	weights := make([]int, len(subs))
	for k, c := range subs {
		weights[k] = categoryWeights[c.Code]
	}
	cat := subs[pick(rnd, weights)]
	age := time.Duration(rnd.Float64() * float64(365*24*time.Hour))
	r := &gridmap.Report{ExternalID: HistoryExternalID(seed, i), Category: cat.Code, Description: cat.Name,
		Location: geojson.NewGeometry(p), AccuracyM: float64(5 + rnd.IntN(20)), Source: sources[pick(rnd, sourceWeights)],
		// Emergencies are urgent by nature; of the rest, one in twenty.
		Urgent:     cat.Parent == "05" || rnd.IntN(20) == 0,
		ReportedAt: end.Add(-age).Truncate(time.Second)}
	moved := rnd.Float64() < movedShare
	weights = weights[:0]
	for _, p := range historyPaths {
		weights = append(weights, p.weight)
	}
	path := historyPaths[pick(rnd, weights)].actions
	if !moved || age < movedAfter {
		return r, nil
	}
	return r, path
}

// pick draws an index with the given weights.
func pick(rnd *rand.Rand, weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := rnd.IntN(total)
	for k, w := range weights {
		if n < w {
			return k
		}
		n -= w
	}
	return len(weights) - 1
}

// LoadHistory files reports 0 to h.N-1 of the history of h.Seed through
// reports, h.Workers at a time, and moves the ones it creates on through
// the workflow (actor "demo"). It is idempotent: a report whose external
// id exists is left as it is, whether filed the same day (same content) or
// another (reported_at differs, which CreateReport answers ECONFLICT), so
// a run again, or after an interruption, files only what is missing, and
// a larger N adds the reports beyond the ones there. The responsibility
// list must be loaded (LoadResponsibility) and reports' locator must hold
// the demo layers.
func LoadHistory(ctx context.Context, reports gridmap.ReportService, d *District, h History) (HistoryResult, error) {
	cells, err := microgrids(d)
	if err != nil {
		return HistoryResult{}, err
	}
	end := h.End
	if end.IsZero() {
		end = time.Now().Truncate(24 * time.Hour)
	}
	workers := h.Workers
	if workers <= 0 {
		workers = 8
	}
	var next, done, filed, existing, moved, moves atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= h.N {
					return nil
				}
				r, path := HistoryReport(cells, h.Seed, i, end)
				created, err := reports.CreateReport(gctx, r)
				switch {
				case gridmap.ErrorCode(err) == gridmap.ECONFLICT:
					existing.Add(1)
				case err != nil:
					return fmt.Errorf("demo report %s: %w", r.ExternalID, err)
				case !created:
					existing.Add(1)
				default:
					filed.Add(1)
					if len(path) > 0 {
						moved.Add(1)
					}
					for _, action := range path {
						if _, err := reports.AddEvent(gctx, r.ID, &gridmap.ReportEvent{Action: action, Actor: "demo", Note: "demo"}); err != nil {
							return fmt.Errorf("demo report %s, %s: %w", r.ExternalID, action, err)
						}
						moves.Add(1)
					}
				}
				if n := done.Add(1); n%ProgressEvery == 0 && h.Progress != nil {
					h.Progress(int(n))
				}
			}
		})
	}
	err = g.Wait()
	return HistoryResult{Filed: int(filed.Load()), Existing: int(existing.Load()), Moved: int(moved.Load()), Moves: int(moves.Load())}, err
}
