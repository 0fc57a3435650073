package postgres_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestReportCountsFromSums: a scoped viewer's report counts from the
// daily sums are the reports' own, status by status with the open and
// overdue, for viewers of a district, a street, a community and a grid,
// over windows of whole UTC days, with partial days at either edge, open
// at either end and without bounds, with and without a category, before
// and after a fold. The reports include some seen only as co-owners, some
// in a gap between grids, some re-assigned, deleted, due earlier today or
// later today. Filters the sums cannot apply, short windows, an
// unlimited caller and a scope that is no grid count the reports.
func TestReportCountsFromSums(t *testing.T) {
	db := pgtest.Shared(t)
	ctx := context.Background()
	const layer = "counts-sums"
	rollupScopedWorld(t, db, layer, 1500)
	for _, q := range []string{
		// Due halfway between midnight (UTC) and now, or in an hour.
		`WITH r AS (UPDATE reports r SET due_at = CASE WHEN r.id % 8 = 1 THEN now() - (now() - date_trunc('day', now(), 'UTC')) / 2
		   ELSE now() + interval '1 hour' END
		 WHERE r.layer_id = $1 AND r.status IN ('registered', 'in_progress') AND r.id % 8 IN (1, 2) RETURNING r.id, r.status)
		 INSERT INTO report_events (report_id, action, from_status, to_status, at) SELECT id, 'extend', status, status, now() FROM r`,
		`DELETE FROM reports WHERE layer_id = $1 AND id % 41 = 5`,
		// A community moved to another street.
		`UPDATE grid_versions SET parent_code = 'RS2' WHERE layer_id = $1 AND code = 'RC4'`,
	} {
		if _, err := db.Pool.Exec(ctx, q, layer); err != nil {
			t.Fatal(err)
		}
	}
	var dueToday int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM reports WHERE layer_id = $1 AND due_at >= date_trunc('day', now(), 'UTC')
		AND due_at < now() AND status <> ALL($2)`, layer, dispatch.ClockStopped).Scan(&dueToday); err != nil || dueToday == 0 {
		t.Fatalf("%d reports due earlier today (%v)", dueToday, err)
	}
	store := postgres.NewReportStore(db, nil, time.UTC)
	stats := postgres.NewStatsStore(db)
	at := func(s string) *time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	windows := []struct {
		name         string
		since, until *time.Time
		sums         bool // whether the sums serve a scoped viewer
	}{
		{"February in UTC", at("2025-02-01T00:00:00Z"), at("2025-03-01T00:00:00Z"), true},
		{"February in Shanghai", at("2025-02-01T00:00:00+08:00"), at("2025-03-01T00:00:00+08:00"), true},
		{"from a January afternoon on", at("2025-01-20T05:17:00Z"), nil, true},
		{"until a March afternoon", nil, at("2025-03-02T13:00:00Z"), true},
		{"all", nil, nil, true},
		{"part of a day", at("2025-02-03T02:00:00Z"), at("2025-02-03T20:00:00Z"), false},
		{"across a midnight", at("2025-02-03T12:00:00Z"), at("2025-02-04T12:00:00Z"), false},
	}
	check := func(t *testing.T, stage string) int {
		now := time.Now()
		fromSums := 0
		for _, code := range []string{"RD", "RS1", "RC4", "RG13", "RX"} {
			ctx := scopedCaller(layer, code)
			for _, w := range windows {
				for _, f := range []gridmap.ReportFilter{
					{Since: w.since, Until: w.until},
					{Since: w.since, Until: w.until, Category: "rollup-b", Status: "closed"},
					{Since: w.since, Until: w.until, Grid: "RG13"},
					{Since: w.since, Until: w.until, Tier: gridmap.TierGrid},
				} {
					name := fmt.Sprintf("%s: %s viewer, %s, category %q grid %q tier %q", stage, code, w.name, f.Category, f.Grid, f.Tier)
					got, sums, err := store.ReportCountsAt(ctx, f, now, true)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					want := plainReportCounts(t, db, layer, code, f, now)
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s (from the sums: %v): got %+v, the reports %+v", name, sums, got, want)
					}
					if wantSums := w.sums && code != "RX" && f.Grid == "" && f.Tier == ""; sums != wantSums {
						t.Errorf("%s: from the sums %v, want %v", name, sums, wantSums)
					}
					if sums {
						fromSums++
					}
					if code == "RD" && w.name == "all" && f.Category == "" && f.Grid == "" && f.Tier == "" {
						if want.Total < 1000 || want.Overdue == 0 || len(want.Counts) < 5 {
							t.Fatalf("%s: the district's reports %+v: the world lacks what the test is for", name, want)
						}
					}
				}
			}
		}
		// An unlimited caller counts the reports as before.
		f := gridmap.ReportFilter{Since: windows[0].since, Until: windows[0].until}
		if _, sums, err := store.ReportCountsAt(ctx, f, now, true); err != nil || sums {
			t.Errorf("%s: an unlimited caller's counts from the sums: %v (%v)", stage, sums, err)
		}
		return fromSums
	}
	if n := check(t, "before the fold"); n == 0 {
		t.Error("no counts read the sums")
	}
	if _, err := stats.FoldStats(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, "after the fold")
}

// plainReportCounts counts the reports of layer a viewer scoped to code
// sees with filter f's window, category, primary grid and tier, straight
// from the reports, as of now.
func plainReportCounts(t *testing.T, db *postgres.DB, layer, code string, f gridmap.ReportFilter, now time.Time) *gridmap.ReportCounts {
	t.Helper()
	var categories []string
	if f.Category != "" {
		categories = []string{f.Category} // rollupWorld's categories have none below them
	}
	rows, err := db.Pool.Query(context.Background(), `SELECT status, count(*), count(*) FILTER (WHERE due_at < $7) FROM reports
		WHERE layer_id = $1 AND scope_codes @> ARRAY[$2] AND ($3::timestamptz IS NULL OR reported_at >= $3)
		  AND ($4::timestamptz IS NULL OR reported_at < $4) AND ($5::text[] IS NULL OR category = ANY($5))
		  AND ($6 = '' OR primary_code = $6) AND ($8 = '' OR tier = $8)
		GROUP BY status`, layer, code, f.Since, f.Until, categories, f.Grid, now, f.Tier)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := &gridmap.ReportCounts{Counts: map[string]int64{}}
	for rows.Next() {
		var status string
		var n, late int64
		if err := rows.Scan(&status, &n, &late); err != nil {
			t.Fatal(err)
		}
		out.Counts[status] = n
		out.Total += n
		if dispatch.Open(status) {
			out.Open += n
		}
		if dispatch.ClockRuns(status) {
			out.Overdue += late
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
