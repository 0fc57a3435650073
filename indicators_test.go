package gridmap

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestIndicatorRulesCheck(t *testing.T) {
	if err := DefaultIndicatorRules().Check(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		field string
		set   func(r *IndicatorRules)
	}{
		{"min_on_time_rate", func(r *IndicatorRules) { r.MinOnTimeRate = 1.01 }},
		{"min_closure_rate", func(r *IndicatorRules) { r.MinClosureRate = math.NaN() }},
		{"max_rework_rate", func(r *IndicatorRules) { r.MaxReworkRate = -0.5 }},
		{"max_overdue", func(r *IndicatorRules) { r.MaxOverdue = -1 }},
		{"min_due", func(r *IndicatorRules) { r.MinDue = -1 }},
		{"surge_min_count", func(r *IndicatorRules) { r.SurgeMinCount = -1 }},
		{"surge_sigma", func(r *IndicatorRules) { r.SurgeSigma = 0 }},
		{"surge_sigma", func(r *IndicatorRules) { r.SurgeSigma = math.Inf(1) }},
		{"surge_weeks", func(r *IndicatorRules) { r.SurgeWeeks = 1 }},
		{"surge_weeks", func(r *IndicatorRules) { r.SurgeWeeks = 53 }},
	} {
		t.Run(c.field+" out of range is refused", func(t *testing.T) {
			r := DefaultIndicatorRules()
			c.set(&r)
			if err := r.Check(); ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), c.field) {
				t.Errorf("%+v: %v", r, err)
			}
		})
	}
}

func TestSurgeOf(t *testing.T) {
	r := DefaultIndicatorRules()
	for _, c := range []struct {
		name  string
		weeks []int64
		want  bool
		limit float64
	}{
		{"a burst after quiet weeks is flagged", []int64{2, 3, 1, 2, 2, 3, 1, 2, 12}, true, 2 + 3*1},
		{"a flat baseline needs sd's floor of 1", []int64{2, 2, 2, 2, 2, 2, 2, 2, 5}, false, 5},
		{"above the limit but below surge_min_count", []int64{0, 0, 0, 0, 0, 0, 0, 0, 4}, false, 3},
		{"weeks without reports count as 0", []int64{0, 0, 0, 0, 0, 0, 0, 0, 5}, true, 3},
		{"a busy baseline is not a surge", []int64{10, 20, 10, 20, 10, 20, 10, 20, 25}, false, 15 + 3*5},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, ok := SurgeOf(c.weeks, r)
			if ok != c.want || math.Abs(f.Limit-c.limit) > 1e-9 || f.Value != float64(c.weeks[len(c.weeks)-1]) || len(f.Weeks) != 9 {
				t.Errorf("got %v limit %v value %v; want %v limit %v", ok, f.Limit, f.Value, c.want, c.limit)
			}
		})
	}
}

func TestThresholdFlags(t *testing.T) {
	row := StatsRow{Key: "g", StatsFigures: StatsFigures{Registered: 10, Closed: 6, ClosedOnTime: 3, Due: 6, Resolved: 4, Reworked: 1, Overdue: 11}}
	row.SetRates()
	few := StatsRow{Key: "h", StatsFigures: StatsFigures{Registered: 1, Due: 1, Resolved: 1, Reworked: 1}}
	few.SetRates()
	flags := ThresholdFlags([]StatsRow{few, row}, DefaultIndicatorRules())
	SortFlags(flags)
	var got []string
	for _, f := range flags {
		got = append(got, f.Key+"/"+f.Indicator)
	}
	// g: on time 3/6 < 0.8, closure 6/10 < 0.7, rework 1/4 > 0.2 (4 resolved
	// is below min_due 5: not judged), overdue 11 > 10; h: 0 of 1 judges nothing.
	if fmt.Sprint(got) != "[g/closure_rate g/on_time_rate g/overdue]" {
		t.Errorf("flags %v", got)
	}
}

func TestTrendBuckets(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	from := time.Date(2026, 1, 7, 15, 0, 0, 0, time.UTC) // Thursday 23:00 in Shanghai
	for _, c := range []struct {
		bucket string
		to     time.Time
		n      int
		first  time.Time
	}{
		{"day", from.Add(48 * time.Hour), 3, time.Date(2026, 1, 7, 0, 0, 0, 0, sh)},
		{"week", from.Add(7 * 24 * time.Hour), 2, time.Date(2026, 1, 5, 0, 0, 0, 0, sh)},
		{"month", time.Date(2026, 3, 1, 0, 0, 0, 0, sh), 2, time.Date(2026, 1, 1, 0, 0, 0, 0, sh)},
	} {
		t.Run(c.bucket, func(t *testing.T) {
			got, err := TrendBuckets(from, c.to, c.bucket, sh)
			if err != nil || len(got) != c.n || !got[0].Equal(c.first) {
				t.Errorf("%v %v; want %d from %v", got, err, c.n, c.first)
			}
		})
	}
	if _, err := TrendBuckets(from, from.AddDate(2, 0, 0), "day", sh); ErrorCode(err) != EINVALID {
		t.Errorf("two years by day: %v", err)
	}
	if got, err := TrendBuckets(from, from.AddDate(0, 0, 399), "day", sh); err != nil || len(got) != 400 {
		t.Errorf("400 days: %d %v", len(got), err)
	}
}

func TestWorkloadSetLoads(t *testing.T) {
	n := func(v float64) *float64 { return &v }
	w := Workload{Rows: []WorkloadRow{
		{Key: "a", Population: n(1000), Households: n(400), Received: 10},
		{Key: "b", Population: n(500), Received: 10},
		{Key: "c", Received: 3},
		{Key: "d", Population: n(0), Households: n(0), Received: 1},
	}}
	w.SetLoads()
	// per 1,000: a 10, b 20; mean 15.
	if *w.MeanPer1000Residents != 15 || w.Rows[0].Key != "b" || *w.Rows[0].LoadIndex != 20.0/15 || w.Rows[1].Key != "a" ||
		*w.Rows[1].Per100Households != 2.5 || w.Rows[2].Key != "c" || w.Rows[2].LoadIndex != nil || w.Rows[3].Per1000Residents != nil {
		t.Errorf("%+v", w.Rows)
	}
}

func TestAttributeNumber(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{{float64(320), "320"}, {"1,250", "1250"}, {" 42 ", "42"}, {"many", "<nil>"}, {nil, "<nil>"}, {true, "<nil>"}} {
		got := "<nil>"
		if v := AttributeNumber(c.in); v != nil {
			got = fmt.Sprint(*v)
		}
		if got != c.want {
			t.Errorf("%#v: %s, want %s", c.in, got, c.want)
		}
	}
}
