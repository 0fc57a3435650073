package postgres_test

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
)

// surgeBaselineSQL is the baseline of the surge figure: the weekly counts
// of each grid and category by a plain GROUP BY over the reports (their
// grid the primary code), made dense with generate_series and their mean
// and standard deviation computed in SQL. $1, $2 the window (the baseline's
// first week to the end of the last); $3 the layer; $4 the baseline weeks.
const surgeBaselineSQL = `WITH c AS (
	  SELECT r.primary_code AS key, r.category, ceil(extract(epoch FROM $2::timestamptz - r.reported_at) / 604800)::int - 1 AS ago, count(*) AS n
	  FROM reports r WHERE r.layer_id = $3 AND r.reported_at >= $1 AND r.reported_at < $2
	  GROUP BY 1, 2, 3),
	d AS (
	  SELECT k.key, k.category, g.ago, coalesce(c.n, 0) AS n
	  FROM (SELECT DISTINCT key, category FROM c) k CROSS JOIN generate_series(0, $4::int) g (ago)
	  LEFT JOIN c ON c.key = k.key AND c.category = k.category AND c.ago = g.ago)
	SELECT key, category, max(n) FILTER (WHERE ago = 0), avg(n) FILTER (WHERE ago > 0)::float8, stddev_pop(n) FILTER (WHERE ago > 0)::float8
	FROM d GROUP BY 1, 2`

// surgeBaseline runs surgeBaselineSQL and judges its figures as
// gridmap.SurgeOf does, returning the flagged grid/category pairs.
func surgeBaseline(b *testing.B, to time.Time, r gridmap.IndicatorRules) (flagged []string, pairs int) {
	from := to.Add(-time.Duration(r.SurgeWeeks+1) * 7 * 24 * time.Hour)
	rows, err := statsBench.db.Pool.Query(context.Background(), surgeBaselineSQL, from, to, "bench", r.SurgeWeeks)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, category string
		var last int64
		var mean, sd float64
		if err := rows.Scan(&key, &category, &last, &mean, &sd); err != nil {
			b.Fatal(err)
		}
		pairs++
		if float64(last) > mean+r.SurgeSigma*math.Max(sd, 1) && last >= r.SurgeMinCount {
			flagged = append(flagged, key+"/"+category)
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return flagged, pairs
}

// surgeBenchRules flag far more than the defaults do (the generated
// reports are spread evenly: no week stands out), so that the benchmark
// holds equal the many flags actually raised: any week above its mean.
func surgeBenchRules() gridmap.IndicatorRules {
	r := gridmap.DefaultIndicatorRules()
	r.SurgeSigma, r.SurgeMinCount = 0.01, 0
	return r
}

var surgeBenchTo = time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)

// BenchmarkStatsFlags is GET /v1/stats/flags?layer=bench over the 30
// days before December 2025: the district's 1,000 grids judged against
// the threshold rules and their 9 weeks of reports against the surge rule.
func BenchmarkStatsFlags(b *testing.B) {
	s := statsBenchDB(b)
	ind := postgres.NewIndicatorStore(statsBench.db, s, time.UTC)
	ctx := context.Background()
	now := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	q := gridmap.FlagsQuery{Layer: "bench", To: &surgeBenchTo}
	fl, err := ind.FlagsAt(ctx, q, now)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(fl.Flags)), "flags")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ind.FlagsAt(ctx, q, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatsFlagsSurge is the surge figure alone (surgeSQL over the
// facts, judged in Go), held equal to the baseline's flags.
func BenchmarkStatsFlagsSurge(b *testing.B) {
	s := statsBenchDB(b)
	ind := postgres.NewIndicatorStore(statsBench.db, s, time.UTC)
	ctx := context.Background()
	r := surgeBenchRules()
	q := gridmap.FlagsQuery{Layer: "bench"}
	got, err := ind.Surges(ctx, q, "grid", surgeBenchTo, r)
	if err != nil {
		b.Fatal(err)
	}
	var keys []string
	for _, f := range got {
		keys = append(keys, f.Key+"/"+f.Category)
	}
	want, pairs := surgeBaseline(b, surgeBenchTo, r)
	slices.Sort(keys)
	slices.Sort(want)
	if !slices.Equal(keys, want) || len(want) == 0 {
		b.Fatalf("surges %d %v, baseline %d %v of %d pairs", len(keys), keys, len(want), want, pairs)
	}
	b.ReportMetric(float64(len(got)), "flags")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ind.Surges(ctx, q, "grid", surgeBenchTo, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatsFlagsSurgeBaseline is the surge figure by surgeBaselineSQL.
func BenchmarkStatsFlagsSurgeBaseline(b *testing.B) {
	statsBenchDB(b)
	r := surgeBenchRules()
	b.ReportAllocs()
	for b.Loop() {
		surgeBaseline(b, surgeBenchTo, r)
	}
}
