package gridmap

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kinds of flag ("one grid, one project", 一网格一专项).
const (
	FlagThreshold = "threshold" // an indicator of the window past a configured limit
	FlagSurge     = "surge"     // a category's reports of the last week well above their baseline
)

// Indicators a flag names.
const (
	IndicatorOnTimeRate  = "on_time_rate"
	IndicatorClosureRate = "closure_rate"
	IndicatorReworkRate  = "rework_rate"
	IndicatorOverdue     = "overdue"
	IndicatorReceived    = "received"
)

// IndicatorRules are the limits flags are raised at, one set for the
// deployment (PUT /v1/stats/rules).
//
// A threshold flag is raised for a grid whose OnTimeRate is below
// MinOnTimeRate, ClosureRate below MinClosureRate, ReworkRate above
// MaxReworkRate (each only when the rate's denominator is at least MinDue,
// so that 0 of 1 flags nothing), or whose Overdue count is above
// MaxOverdue. A surge flag is raised for a grid and category whose count
// in the last week is above mean + SurgeSigma × max(sd, 1) of the
// SurgeWeeks weeks before it and at least SurgeMinCount (see SurgeOf).
type IndicatorRules struct {
	MinOnTimeRate  float64 `json:"min_on_time_rate"`
	MinClosureRate float64 `json:"min_closure_rate"`
	MaxReworkRate  float64 `json:"max_rework_rate"`
	MaxOverdue     int64   `json:"max_overdue"`
	MinDue         int64   `json:"min_due"`
	SurgeSigma     float64 `json:"surge_sigma"`
	SurgeWeeks     int     `json:"surge_weeks"`
	SurgeMinCount  int64   `json:"surge_min_count"`
}

// DefaultIndicatorRules are the rules until an admin sets others.
func DefaultIndicatorRules() IndicatorRules {
	return IndicatorRules{MinOnTimeRate: 0.8, MinClosureRate: 0.7, MaxReworkRate: 0.2, MaxOverdue: 10, MinDue: 5,
		SurgeSigma: 3, SurgeWeeks: 8, SurgeMinCount: 5}
}

// Check returns EINVALID naming the first field out of its range: rates
// in [0, 1], surge_sigma above 0, surge_weeks 2 to 52, counts at least 0.
func (r IndicatorRules) Check() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"min_on_time_rate", r.MinOnTimeRate}, {"min_closure_rate", r.MinClosureRate}, {"max_rework_rate", r.MaxReworkRate}} {
		if !(f.v >= 0 && f.v <= 1) {
			return Errorf(EINVALID, "%s %v must be a rate from 0 to 1", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"max_overdue", r.MaxOverdue}, {"min_due", r.MinDue}, {"surge_min_count", r.SurgeMinCount}} {
		if f.v < 0 {
			return Errorf(EINVALID, "%s %d must be a count of 0 or more", f.name, f.v)
		}
	}
	if !(r.SurgeSigma > 0) || math.IsInf(r.SurgeSigma, 0) {
		return Errorf(EINVALID, "surge_sigma %v must be a number above 0 (standard deviations above the mean)", r.SurgeSigma)
	}
	if r.SurgeWeeks < 2 || r.SurgeWeeks > 52 {
		return Errorf(EINVALID, "surge_weeks %d must be from 2 to 52 (the weeks of the baseline)", r.SurgeWeeks)
	}
	return nil
}

// FlagsQuery selects the grids flags are raised for.
type FlagsQuery struct {
	// Layer is the comprehensive layer; required.
	Layer string
	// Level is a level of Layer; by default its finest grid-tier level
	// (StatsLevel with StatsByGrid).
	Level string
	// From and To bound the threshold flags' window on reported_at (nil:
	// the 30 days before now; see FlagsWindow). The surge flags look at the
	// week before To and the SurgeWeeks weeks before that.
	From, To *time.Time
	// Category selects the category and its subcategories.
	Category string
}

// Flag is one grid found past a rule.
type Flag struct {
	Key       string `json:"key"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Indicator string `json:"indicator"`
	// Category is the surging category; "" for a threshold flag.
	Category string `json:"category"`
	// Value is the indicator's figure; Limit the rule's: the minimum or
	// maximum for a threshold flag, mean + sigma × max(sd, 1) for a surge.
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	// BaselineMean and BaselineSD (population standard deviation) of the
	// baseline weeks, surge flags only.
	BaselineMean *float64 `json:"baseline_mean,omitempty"`
	BaselineSD   *float64 `json:"baseline_sd,omitempty"`
	// Weeks are the weekly counts, oldest first, surge flags only: the
	// SurgeWeeks weeks of the baseline, then the last week (Value).
	Weeks []int64 `json:"weeks,omitempty"`
	// Reason says in a sentence why, with the figures.
	Reason string `json:"reason"`
}

// Flags are the flags of a query.
type Flags struct {
	Layer string         `json:"layer"`
	Level string         `json:"level"`
	From  time.Time      `json:"from"`
	To    time.Time      `json:"to"`
	AsOf  time.Time      `json:"as_of"`
	Rules IndicatorRules `json:"rules"`
	Flags []Flag         `json:"flags"`
}

// FlagsWindow is the window of q at now: From and To, by default the 30
// days before now (or before To). Returns EINVALID for From after To.
func FlagsWindow(from, to *time.Time, now time.Time) (time.Time, time.Time, error) {
	t := now
	if to != nil {
		t = *to
	}
	f := t.AddDate(0, 0, -30)
	if from != nil {
		f = *from
	}
	if f.After(t) {
		return f, t, Errorf(EINVALID, "from %s is after to %s; from must come first", f.Format(time.RFC3339), t.Format(time.RFC3339))
	}
	return f, t, nil
}

// ThresholdFlags are the threshold flags of the grids' figures (rows of
// Stats with group=grid) under rules r.
func ThresholdFlags(rows []StatsRow, r IndicatorRules) []Flag {
	var flags []Flag
	for _, row := range rows {
		flag := func(indicator string, value, limit float64, reason string) {
			flags = append(flags, Flag{Key: row.Key, Name: row.Name, Kind: FlagThreshold, Indicator: indicator,
				Value: value, Limit: limit, Reason: reason})
		}
		if row.OnTimeRate != nil && row.Due >= r.MinDue && *row.OnTimeRate < r.MinOnTimeRate {
			flag(IndicatorOnTimeRate, *row.OnTimeRate, r.MinOnTimeRate, fmt.Sprintf(
				"on-time closure rate %.3g (%d of %d due closed on time) is below the minimum %.3g",
				*row.OnTimeRate, row.ClosedOnTime, row.Due, r.MinOnTimeRate))
		}
		if row.ClosureRate != nil && row.Registered >= r.MinDue && *row.ClosureRate < r.MinClosureRate {
			flag(IndicatorClosureRate, *row.ClosureRate, r.MinClosureRate, fmt.Sprintf(
				"closure rate %.3g (%d of %d registered closed) is below the minimum %.3g",
				*row.ClosureRate, row.Closed, row.Registered, r.MinClosureRate))
		}
		if row.ReworkRate != nil && row.Resolved >= r.MinDue && *row.ReworkRate > r.MaxReworkRate {
			flag(IndicatorReworkRate, *row.ReworkRate, r.MaxReworkRate, fmt.Sprintf(
				"rework rate %.3g (%d of %d resolved sent back) is above the maximum %.3g",
				*row.ReworkRate, row.Reworked, row.Resolved, r.MaxReworkRate))
		}
		if row.Overdue > r.MaxOverdue {
			flag(IndicatorOverdue, float64(row.Overdue), float64(r.MaxOverdue), fmt.Sprintf(
				"%d reports are overdue, above the maximum %d", row.Overdue, r.MaxOverdue))
		}
	}
	return flags
}

// SurgeOf judges weeks, a grid's weekly counts of a category, oldest
// first: the SurgeWeeks weeks of the baseline (weeks without reports
// counting 0), then the last week. It returns the surge flag (Key, Name
// and Category left to the caller) and whether it is raised: the last
// count is above mean + SurgeSigma × max(sd, 1) of the baseline (sd the
// population standard deviation; its floor of 1 keeps a flat baseline from
// flagging one report more) and at least SurgeMinCount.
func SurgeOf(weeks []int64, r IndicatorRules) (Flag, bool) {
	if len(weeks) < 2 {
		return Flag{}, false
	}
	base, last := weeks[:len(weeks)-1], weeks[len(weeks)-1]
	var sum float64
	for _, n := range base {
		sum += float64(n)
	}
	mean := sum / float64(len(base))
	var ss float64
	for _, n := range base {
		ss += (float64(n) - mean) * (float64(n) - mean)
	}
	sd := math.Sqrt(ss / float64(len(base)))
	limit := mean + r.SurgeSigma*max(sd, 1)
	f := Flag{Kind: FlagSurge, Indicator: IndicatorReceived, Value: float64(last), Limit: limit,
		BaselineMean: &mean, BaselineSD: &sd, Weeks: slices.Clone(weeks),
		Reason: fmt.Sprintf("%d reports in the last week against a mean of %.3g (sd %.3g) a week over the %d weeks before: above the limit %.3g and at least %d",
			last, mean, sd, len(base), limit, r.SurgeMinCount)}
	return f, float64(last) > limit && last >= r.SurgeMinCount
}

// SortFlags orders flags by key, then kind (then indicator and category).
func SortFlags(flags []Flag) {
	slices.SortFunc(flags, func(a, b Flag) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Indicator, b.Indicator),
			cmp.Compare(a.Category, b.Category))
	})
}

// WorkloadQuery selects the grids whose load is compared (负载均衡).
type WorkloadQuery struct {
	// Layer is the comprehensive layer; required.
	Layer string
	// Level is a level of Layer; by default its finest grid-tier level.
	Level string
	// From and To bound reported_at (nil: the 30 days before now, as
	// FlagsWindow).
	From, To *time.Time
}

// WorkloadRow is one grid's load: its residents (attributes households and
// population, nil when missing or not a number), the reports of the window
// in it (Received) and those of them not closed now (Open), and the rates
// (nil without a positive denominator).
type WorkloadRow struct {
	Key              string   `json:"key"`
	Name             string   `json:"name"`
	Households       *float64 `json:"households"`
	Population       *float64 `json:"population"`
	Received         int64    `json:"received"`
	Open             int64    `json:"open"`
	Per1000Residents *float64 `json:"per_1000_residents"`
	Per100Households *float64 `json:"per_100_households"`
	// LoadIndex is Per1000Residents over the mean of the level's (nil when
	// either is nil or the mean is 0).
	LoadIndex *float64 `json:"load_index"`
}

// Workload are the loads of every grid of a level.
type Workload struct {
	Layer string        `json:"layer"`
	Level string        `json:"level"`
	From  time.Time     `json:"from"`
	To    time.Time     `json:"to"`
	Rows  []WorkloadRow `json:"rows"`
	// MeanPer1000Residents is the mean of the rows' Per1000Residents
	// (those that have one); nil when none has.
	MeanPer1000Residents *float64 `json:"mean_per_1000_residents"`
}

// SetLoads computes the rows' rates, the mean and the load indexes, and
// sorts the rows by LoadIndex, highest first (nil last, then by key).
func (w *Workload) SetLoads() {
	per := func(n int64, d *float64, unit float64) *float64 {
		if d == nil || *d <= 0 {
			return nil
		}
		v := float64(n) / *d * unit
		return &v
	}
	var sum float64
	var n int
	for i := range w.Rows {
		r := &w.Rows[i]
		r.Per1000Residents = per(r.Received, r.Population, 1000)
		r.Per100Households = per(r.Received, r.Households, 100)
		if r.Per1000Residents != nil {
			sum += *r.Per1000Residents
			n++
		}
	}
	w.MeanPer1000Residents = nil
	if n > 0 {
		m := sum / float64(n)
		w.MeanPer1000Residents = &m
	}
	for i := range w.Rows {
		r := &w.Rows[i]
		r.LoadIndex = nil
		if r.Per1000Residents != nil && w.MeanPer1000Residents != nil && *w.MeanPer1000Residents > 0 {
			v := *r.Per1000Residents / *w.MeanPer1000Residents
			r.LoadIndex = &v
		}
	}
	slices.SortStableFunc(w.Rows, func(a, b WorkloadRow) int {
		switch {
		case a.LoadIndex == nil && b.LoadIndex != nil:
			return 1
		case a.LoadIndex != nil && b.LoadIndex == nil:
			return -1
		case a.LoadIndex != nil && b.LoadIndex != nil && *a.LoadIndex != *b.LoadIndex:
			return cmp.Compare(*b.LoadIndex, *a.LoadIndex)
		}
		return cmp.Compare(a.Key, b.Key)
	})
}

// AttributeNumber reads a grid attribute that holds a count: a JSON number
// or a numeric string ("1,234" and spaces allowed); nil for anything else.
func AttributeNumber(v any) *float64 {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			return nil
		}
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.ReplaceAll(strings.TrimSpace(x), ",", ""), 64); err != nil {
			return nil
		}
	default:
		return nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// Buckets of a trend.
const (
	TrendByDay   = "day"
	TrendByWeek  = "week" // weeks start on Monday
	TrendByMonth = "month"
)

// MaxTrendBuckets is the most buckets a trend answers.
const MaxTrendBuckets = 400

// TrendQuery selects a grid's trend.
type TrendQuery struct {
	Layer string
	Code  string
	// From and To bound reported_at (nil: the 12 weeks before now).
	From, To *time.Time
	// Bucket is TrendByDay, TrendByWeek (the default) or TrendByMonth.
	Bucket   string
	Category string
}

// TrendPoint are the figures of the reports received in one bucket, as
// StatsFigures defines them, as they stand now.
type TrendPoint struct {
	// Start is the bucket's calendar start in the server's zone; the first
	// bucket may start before the window and the last end after it.
	Start        time.Time `json:"start"`
	Received     int64     `json:"received"`
	Registered   int64     `json:"registered"`
	Closed       int64     `json:"closed"`
	ClosedOnTime int64     `json:"closed_on_time"`
	Overdue      int64     `json:"overdue"`
}

// Trend is a grid's figures bucket by bucket, every bucket of the window
// present.
type Trend struct {
	Layer    string       `json:"layer"`
	Code     string       `json:"code"`
	Name     string       `json:"name"`
	Bucket   string       `json:"bucket"`
	TimeZone string       `json:"time_zone"`
	From     time.Time    `json:"from"`
	To       time.Time    `json:"to"`
	AsOf     time.Time    `json:"as_of"`
	Points   []TrendPoint `json:"points"`
}

// TrendWindow is the window of a trend at now: by default the 12 weeks
// before now (or before To). Returns EINVALID for From after To.
func TrendWindow(from, to *time.Time, now time.Time) (time.Time, time.Time, error) {
	t := now
	if to != nil {
		t = *to
	}
	f := t.AddDate(0, 0, -7*12)
	if from != nil {
		f = *from
	}
	if f.After(t) {
		return f, t, Errorf(EINVALID, "from %s is after to %s; from must come first", f.Format(time.RFC3339), t.Format(time.RFC3339))
	}
	return f, t, nil
}

// TrendBuckets are the starts of the buckets that cover [from, to) in loc:
// calendar days, weeks from Monday or months, the first one holding from.
// Returns EINVALID for an unknown bucket or more than MaxTrendBuckets.
func TrendBuckets(from, to time.Time, bucket string, loc *time.Location) ([]time.Time, error) {
	f := from.In(loc)
	start := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, loc)
	next := func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	switch bucket {
	case TrendByDay:
	case TrendByWeek:
		start = start.AddDate(0, 0, -(int(start.Weekday())+6)%7)
		next = func(t time.Time) time.Time { return t.AddDate(0, 0, 7) }
	case TrendByMonth:
		start = time.Date(f.Year(), f.Month(), 1, 0, 0, 0, 0, loc)
		next = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	default:
		return nil, Errorf(EINVALID, "bucket %q must be day, week or month", bucket)
	}
	starts := []time.Time{start}
	for t := next(start); t.Before(to); t = next(t) {
		if len(starts) == MaxTrendBuckets {
			return nil, Errorf(EINVALID, "the window from %s to %s holds more than %d %s buckets; narrow it or use a longer bucket",
				from.Format(time.RFC3339), to.Format(time.RFC3339), MaxTrendBuckets, bucket)
		}
		starts = append(starts, t)
	}
	return starts, nil
}

// IndicatorService raises flags, compares workloads and draws trends over
// the reports' facts, and keeps the flags' rules. A scoped caller in ctx
// sees only its subtree's grids.
type IndicatorService interface {
	// Flags raises the flags of q as of now. Returns EINVALID for a
	// missing or unknown layer, a level not of it, an unknown category,
	// From after To.
	Flags(ctx context.Context, q FlagsQuery) (*Flags, error)
	// Workload compares the grids of q's level. Returns EINVALID as Flags.
	Workload(ctx context.Context, q WorkloadQuery) (*Workload, error)
	// Trend draws grid q.Code's figures bucket by bucket. Returns ENOTFOUND
	// for a grid that does not exist now or lies outside a scoped caller's
	// area, EINVALID for an unknown bucket or category, From after To,
	// more than MaxTrendBuckets buckets.
	Trend(ctx context.Context, q TrendQuery) (*Trend, error)
	// IndicatorRules reads the rules (DefaultIndicatorRules until set).
	IndicatorRules(ctx context.Context) (IndicatorRules, error)
	// PutIndicatorRules replaces the rules and returns those before.
	// Returns EINVALID (changing nothing) for rules that fail Check.
	PutIndicatorRules(ctx context.Context, r IndicatorRules) (IndicatorRules, error)
}
