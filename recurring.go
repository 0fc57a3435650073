package gridmap

import (
	"context"
	"time"

	"github.com/paulmach/orb/geojson"
)

// Recurring problems (类事): reports of one category that keep coming back
// at one place over weeks, found by density clustering.

// Recurring query defaults and bounds.
const (
	DefaultRecurringWithinM = 30.0
	DefaultRecurringMin     = 10
	DefaultRecurringWindow  = 90 * 24 * time.Hour
	MaxRecurringWithinM     = 1000.0
	MaxRecurringWindow      = 366 * 24 * time.Hour
)

// RecurringQuery selects the reports clustered into recurring problems.
type RecurringQuery struct {
	// Layer keeps the reports assigned in that layer ("": every layer).
	Layer string
	// Category keeps that category and its subcategories ("": every
	// category); clusters never mix categories.
	Category string
	// From and To bound reported_at: From <= reported_at < To.
	From, To time.Time
	// WithinM is the clustering distance in metres (DBSCAN's eps): a
	// report with at least Min reports of its category within WithinM
	// (itself included) is a core of a problem, and the reports within
	// WithinM of a core belong to it.
	WithinM float64
	Min     int
}

// RecurringProblem is one cluster: its members (report ids, earliest
// first), the grids they were assigned to, where and when.
type RecurringProblem struct {
	Category string            `json:"category"`
	Center   *geojson.Geometry `json:"center"` // a Point, WGS84
	// RadiusM is the distance from Center to the farthest member.
	RadiusM float64   `json:"radius_m"`
	Count   int       `json:"count"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	Members []int64   `json:"members"`
	Grids   []string  `json:"grids"`
}

// RecurringFinder finds recurring problems.
type RecurringFinder interface {
	// Recurring returns the problems among the reports q selects that the
	// context's caller may read (a scoped caller: those in its subtree),
	// the largest first. Returns EINVALID for a query that cannot be run
	// (an unknown category, bounds out of range), saying what to fix.
	Recurring(ctx context.Context, q RecurringQuery) ([]*RecurringProblem, error)
}
