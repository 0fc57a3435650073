package gridmap

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Groups the indicators can be computed by.
const (
	StatsByGrid       = "grid"       // a level of the layer (Level; by default its finest grid-tier level)
	StatsByStreet     = "street"     // the layer's coarsest street-tier level (街镇)
	StatsByDistrict   = "district"   // the layer's coarsest district-tier level (区)
	StatsByDepartment = "department" // each department of the report's assignment
)

// StatsQuery selects the reports the indicators are computed over and how
// they are grouped.
type StatsQuery struct {
	// Layer is the comprehensive layer whose grids group the reports;
	// required unless Group is StatsByDepartment (then it narrows to the
	// reports assigned in it).
	Layer string
	Group string
	// Level is any level of Layer, with Group StatsByGrid only.
	Level string
	// From and To bound reported_at: at or after From, before To (nil:
	// unbounded).
	From, To *time.Time
	// Category selects the category and its subcategories.
	Category string
}

// StatsFigures are the indicators of a set of reports: those reported in
// the window (and in the caller's jurisdiction), as their facts stand at
// Stats.AsOf.
//
// The counts:
//   - Received: every report of the window.
//   - Registered (立案): reports with a register event, that is not refused
//     at intake (a report still waiting to be registered is not counted).
//   - Closed (结案): reports with a close event; ClosedOnTime (按期结案):
//     closed at or before the due_at in force when they closed (an extension
//     counts, since it moved due_at).
//   - Due (应结案): registered reports whose time is up and not legitimately
//     deferred, that is those closed, and those still open past their
//     due_at while their clock runs (dispatch.ClockRuns: not suspended).
//     Equivalently: registered reports that are closed or past their first
//     deadline, minus the deferred ones, still open whose deadline an
//     extension moved past AsOf or whose clock a suspension (挂账) stopped.
//   - Resolved: reports with a resolve event; Reworked (返工): reports a
//     reject sent back after resolve.
//   - Extended (延期), Suspended: reports with an extend, suspend event.
//   - Overdue: reports open now, past due_at, with the clock running: the
//     rule of GET /v1/reports?overdue=true (registered or not).
//
// The rates, nil when their denominator is 0: RegisteredRate = Registered /
// Received; ClosureRate = Closed / Registered; OnTimeRate = ClosedOnTime /
// Due; ReworkRate = Reworked / Resolved; ExtensionRate = Extended /
// Registered. MedianHandlingS is the median of closed_at - reported_at in
// seconds over the closed reports (nil when none).
type StatsFigures struct {
	Received        int64    `json:"received"`
	Registered      int64    `json:"registered"`
	Closed          int64    `json:"closed"`
	ClosedOnTime    int64    `json:"closed_on_time"`
	Due             int64    `json:"due"`
	Resolved        int64    `json:"resolved"`
	Reworked        int64    `json:"reworked"`
	Extended        int64    `json:"extended"`
	Suspended       int64    `json:"suspended"`
	Overdue         int64    `json:"overdue"`
	RegisteredRate  *float64 `json:"registered_rate"`
	ClosureRate     *float64 `json:"closure_rate"`
	OnTimeRate      *float64 `json:"on_time_rate"`
	ReworkRate      *float64 `json:"rework_rate"`
	ExtensionRate   *float64 `json:"extension_rate"`
	MedianHandlingS *float64 `json:"median_handling_s"`
}

// SetRates computes the rates from the counts.
func (f *StatsFigures) SetRates() {
	rate := func(n, d int64) *float64 {
		if d == 0 {
			return nil
		}
		r := float64(n) / float64(d)
		return &r
	}
	f.RegisteredRate = rate(f.Registered, f.Received)
	f.ClosureRate = rate(f.Closed, f.Registered)
	f.OnTimeRate = rate(f.ClosedOnTime, f.Due)
	f.ReworkRate = rate(f.Reworked, f.Resolved)
	f.ExtensionRate = rate(f.Extended, f.Registered)
}

// CategoryStats are a group's figures for one category.
type CategoryStats struct {
	Category string `json:"category"`
	StatsFigures
}

// StatsRow is one group's figures: a grid (Key its code) or a department.
type StatsRow struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	// Rank orders the groups by OnTimeRate, then ClosureRate, highest first
	// (nil rates last); equal rates share a rank (1, 1, 3).
	Rank int `json:"rank"`
	StatsFigures
	ByCategory []CategoryStats `json:"by_category"`
}

// Stats are the indicators of a query: one row per group, ranked, and the
// total over every report selected. A report outside coverage (no grid at
// the level) counts in Total but in no row; with StatsByDepartment a report
// counts in a row for each of its departments, once in Total.
type Stats struct {
	Layer string     `json:"layer,omitempty"`
	Group string     `json:"group"`
	Level string     `json:"level,omitempty"`
	From  *time.Time `json:"from,omitempty"`
	To    *time.Time `json:"to,omitempty"`
	// AsOf is the time overdue and due figures were computed at.
	AsOf  time.Time  `json:"as_of"`
	Rows  []StatsRow `json:"rows"`
	Total StatsRow   `json:"total"`
}

// StatsService computes indicators.
type StatsService interface {
	// Stats computes the indicators of q for the caller in ctx (a scoped
	// caller's figures cover only reports in its subtree). Returns
	// EINVALID for an unknown group or category, a level not of the layer,
	// From after To, a missing or unknown layer.
	Stats(ctx context.Context, q StatsQuery) (*Stats, error)
}

// CheckStatsQuery checks what does not need the layer. Returns EINVALID.
func CheckStatsQuery(q StatsQuery) error {
	switch q.Group {
	case StatsByGrid, StatsByStreet, StatsByDistrict, StatsByDepartment:
	default:
		return Errorf(EINVALID, "group %q must be grid, street, district or department", q.Group)
	}
	if q.From != nil && q.To != nil && q.From.After(*q.To) {
		return Errorf(EINVALID, "from %s is after to %s; from must come first", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if q.Level != "" && q.Group != StatsByGrid {
		return Errorf(EINVALID, "level picks a level with group=grid only; group=%s has its level from the layer's tiers", q.Group)
	}
	if q.Layer == "" && q.Group != StatsByDepartment {
		return Errorf(EINVALID, "layer is required with group=%s: the layer whose grids group the reports (GET /v1/layers)", q.Group)
	}
	return nil
}

// StatsLevel is the level of layer l that group (a grid group) counts
// reports by: level itself with StatsByGrid when given, else the finest
// level of the grid tier (the finest level when none is); with
// StatsByStreet and StatsByDistrict the coarsest level of that tier.
// Returns EINVALID for a level not of the layer or a tier it lacks.
func StatsLevel(l *Layer, group, level string) (string, error) {
	tiers := DefaultTiers(l.Levels)
	for lv, t := range l.Tiers {
		tiers[lv] = t
	}
	switch group {
	case StatsByGrid:
		if level != "" {
			if l.LevelIndex(level) < 0 {
				return "", Errorf(EINVALID, "level %q is not a level of layer %s; its levels are %v", level, l.ID, l.Levels)
			}
			return level, nil
		}
		for _, lv := range slices.Backward(l.Levels) {
			if tiers[lv] == TierGrid {
				return lv, nil
			}
		}
		return l.Levels[len(l.Levels)-1], nil
	case StatsByStreet, StatsByDistrict:
		for _, lv := range l.Levels {
			if tiers[lv] == group {
				return lv, nil
			}
		}
		return "", Errorf(EINVALID, "layer %s has no %s-tier level (levels %v); use group=grid&level=...", l.ID, group, l.Levels)
	}
	return "", Errorf(EINVALID, "group %q does not group by a level", group)
}

// RankStats sorts rows by OnTimeRate, then ClosureRate, highest first (nil
// rates last, then by key) and sets their Rank; rows with equal rates share
// a rank.
func RankStats(rows []StatsRow) {
	cmpRate := func(a, b *float64) int {
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return 1
		case b == nil:
			return -1
		}
		return cmp.Compare(*b, *a)
	}
	order := func(a, b *StatsRow) int {
		return cmp.Or(cmpRate(a.OnTimeRate, b.OnTimeRate), cmpRate(a.ClosureRate, b.ClosureRate))
	}
	slices.SortStableFunc(rows, func(a, b StatsRow) int { return cmp.Or(order(&a, &b), cmp.Compare(a.Key, b.Key)) })
	for i := range rows {
		if i > 0 && order(&rows[i-1], &rows[i]) == 0 {
			rows[i].Rank = rows[i-1].Rank
		} else {
			rows[i].Rank = i + 1
		}
	}
}
