package gridmap

import (
	"context"
	"time"
)

// Assessment (述职评议考核) puts together, over a window, what the people in
// the field did: each grid worker's reports filed and patrols, each grid's
// reports handled, patrol coverage and leaders' visits, and each leader's
// visits and on-site cases. Each figure is the one its own part of the
// service counts (indicators, patrol coverage, leaders' figures); the
// assessment only lays them side by side.

// MaxAssessmentDays bounds an assessment's window.
const MaxAssessmentDays = 366

// AssessmentQuery is a window of an assessment: reports filed and handled
// and check-ins made in [From, To), patrols of the days over in it.
type AssessmentQuery struct {
	Layer string
	// Level is the grid level assessed ("" PatrolLevel).
	Level    string
	From, To time.Time
}

// Assessment is the figures of an AssessmentQuery, for the caller's
// scope. Patrol figures are of the days (in the service's time zone)
// wholly inside the window and over, FirstDay to LastDay (Days of them,
// none when the window holds no whole day over).
type Assessment struct {
	Layer    string    `json:"layer"`
	Level    string    `json:"level"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	FirstDay string    `json:"first_day,omitempty"`
	LastDay  string    `json:"last_day,omitempty"`
	Days     int       `json:"days"`
	// MeasuredDays are those of the Days whose coverage is kept: fewer
	// when some lie before the retention, or are still being measured
	// (ask again shortly).
	MeasuredDays int                `json:"measured_days"`
	Workers      []WorkerAssessment `json:"workers"`
	Grids        []GridAssessment   `json:"grids"`
	Leaders      []LeaderRow        `json:"leaders"`
}

// WorkerAssessment is one grid worker's figures: an account linked to a
// grid of the level or one below it.
type WorkerAssessment struct {
	Worker   string `json:"worker"` // the account's username
	Name     string `json:"name"`
	Grid     string `json:"grid"` // the worker's grid at the level
	GridName string `json:"grid_name"`
	// Filed are the reports the worker filed (problems found and
	// reported); FiledClosed of them closed, FiledClosedOnTime closed on
	// time (StatsFigures.ClosedOnTime).
	Filed             int `json:"filed"`
	FiledClosed       int `json:"filed_closed"`
	FiledClosedOnTime int `json:"filed_closed_on_time"`
	// PatrolDays are the days the worker recorded points, Points how
	// many.
	PatrolDays int `json:"patrol_days"`
	Points     int `json:"points"`
	// GridCoverage is the mean daily patrol coverage of the worker's grid
	// (GridAssessment.Coverage).
	GridCoverage *float64 `json:"grid_coverage"`
	// CheckIns are the worker's check-ins, Visits those that were visits.
	CheckIns int `json:"checkins"`
	Visits   int `json:"visits"`
}

// GridAssessment is one grid's figures.
type GridAssessment struct {
	Code    string `json:"code"`
	Name    string `json:"name"`
	Workers int    `json:"workers"`
	// Filed are the reports its workers filed.
	Filed int `json:"filed"`
	// Reports are the indicators of the reports it owns (GET /v1/stats).
	Reports StatsFigures `json:"reports"`
	// MeasuredDays are the days of the window whose coverage is kept,
	// PatrolledDays those with coverage above 0, Coverage the mean over
	// them (nil: none).
	MeasuredDays  int      `json:"measured_days"`
	PatrolledDays int      `json:"patrolled_days"`
	Coverage      *float64 `json:"coverage"`
	// LeaderVisits are leaders' visits of the grid (distinct leader-days).
	LeaderVisits int `json:"leader_visits"`
}

// PatrolFigures are the figures of an assessment the patrol service
// counts: its grids (Reports left empty) and workers, and the days.
type PatrolFigures struct {
	Level             string
	FirstDay, LastDay string
	Days              int
	MeasuredDays      int
	Workers           []WorkerAssessment
	Grids             []GridAssessment
}

// AssessmentSources are the services an assessment reads.
type AssessmentSources struct {
	Patrols interface {
		PatrolFigures(ctx context.Context, q AssessmentQuery) (*PatrolFigures, error)
	}
	Stats   StatsService
	Leaders LeaderService
}

// Assess puts together the assessment of q for the caller in ctx. Returns
// EINVALID for an empty or too long window, and as the sources do.
func Assess(ctx context.Context, src AssessmentSources, q AssessmentQuery) (*Assessment, error) {
	switch {
	case !q.To.After(q.From):
		return nil, Errorf(EINVALID, "the window is empty: to (%s) must be after from (%s)", q.To.Format(time.RFC3339), q.From.Format(time.RFC3339))
	case q.To.Sub(q.From) > MaxAssessmentDays*24*time.Hour:
		return nil, Errorf(EINVALID, "the window is longer than %d days; assess a year at most at a time", MaxAssessmentDays)
	}
	p, err := src.Patrols.PatrolFigures(ctx, q)
	if err != nil {
		return nil, err
	}
	st, err := src.Stats.Stats(ctx, StatsQuery{Layer: q.Layer, Group: StatsByGrid, Level: p.Level, From: &q.From, To: &q.To})
	if err != nil {
		return nil, err
	}
	byCode := make(map[string]StatsFigures, len(st.Rows))
	for _, r := range st.Rows {
		byCode[r.Key] = r.StatsFigures
	}
	for i := range p.Grids {
		if f, ok := byCode[p.Grids[i].Code]; ok {
			p.Grids[i].Reports = f
		}
	}
	leaders, err := src.Leaders.LeaderStats(ctx, q.Layer, q.From, q.To)
	if err != nil {
		return nil, err
	}
	return &Assessment{Layer: q.Layer, Level: p.Level, From: q.From, To: q.To, FirstDay: p.FirstDay, LastDay: p.LastDay, Days: p.Days,
		MeasuredDays: p.MeasuredDays, Workers: p.Workers, Grids: p.Grids, Leaders: leaders.Rows}, nil
}
