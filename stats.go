package gridmap

import (
	"cmp"
	"context"
	"math"
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
// seconds over the closed reports (nil when none), estimated from their
// counts in bins of 25% (MedianHandling): from 5 minutes to 100 days within
// 25% of the exact median, usually within a few per cent.
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

// Handling times are counted in HandlingBins bins (migration 00021's
// report_handling_bin): bin 0 holds [0, 5 min), bin k >= 1 holds
// [300 * 1.25^(k-1), 300 * 1.25^k) seconds, and the last bin everything
// from about 100 days on (300 * 1.25^46 s). The indicators keep these counts per day and
// grid, not every handling time, so that a year costs the same as a day.
const (
	HandlingBins      = 48
	handlingBinFirst  = 300.0
	handlingBinGrowth = 1.25
)

// HandlingBin returns the bounds of bin k in seconds; the last bin's upper
// bound is taken one step further, as if it were closed.
func HandlingBin(k int) (lo, hi float64) {
	if k == 0 {
		return 0, handlingBinFirst
	}
	lo = handlingBinFirst * math.Pow(handlingBinGrowth, float64(k-1))
	return lo, lo * handlingBinGrowth
}

// MedianHandling estimates the median handling time in seconds from the
// counts of each bin (len HandlingBins), nil when they are all 0. As
// percentile_cont(0.5) does, it is the middle value, or the mean of the two
// middle ones; a value is placed within its bin as if the bin's values were
// spread evenly over it on a log scale (linearly in bin 0). For medians
// from 5 minutes to 100 days the estimate is within a bin of the exact
// one, off by less than 25% and usually by a few per cent; a median under 5
// minutes is placed within [0, 5 min), and one past 100 days within the
// last bin (up to about 125 days).
func MedianHandling(bins []int64) *float64 {
	var n int64
	for _, c := range bins {
		n += c
	}
	if n == 0 {
		return nil
	}
	// value is the estimate of the i-th smallest handling time (0-based).
	value := func(i int64) float64 {
		for k, c := range bins {
			if i >= c {
				i -= c
				continue
			}
			lo, hi := HandlingBin(k)
			at := (float64(i) + 0.5) / float64(c)
			if k == 0 {
				return lo + (hi-lo)*at
			}
			return lo * math.Pow(hi/lo, at)
		}
		return 0 // not reached: i < n
	}
	m := value((n - 1) / 2)
	if n%2 == 0 {
		m = (m + value(n/2)) / 2
	}
	return &m
}
