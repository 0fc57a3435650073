package postgres_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
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
// at either end, ending now and without bounds, with and without a
// category that has a subcategory, before and after a fold. The reports
// include some seen only as co-owners, some in a gap between grids, some
// re-assigned, deleted, in a subcategory, filed today, due earlier today or
// later today, and a street's reports chained at each of the two levels its
// versions have had. Filters the sums cannot apply, short windows, an
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
		// Filed today (reported within the last hours), some due already.
		`WITH r AS (
		   INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, layer_id, primary_code, tier, due_at, assignment, scope_codes)
		   SELECT $1 || '-today-' || i, '\x00', 'rollup-a', ST_SetSRID(ST_MakePoint(60.5, -40), 4326), 'wgs84',
		     now() - (now() - date_trunc('day', now(), 'UTC')) * (0.2 + i / 50.0), 'registered', $1, 'RG13', 'grid',
		     now() + interval '1 hour' * (i % 3 - 1),
		     jsonb_build_object('layer', $1, 'tier', 'grid', 'primary', jsonb_build_object('code', 'RG13', 'level', 'grid', 'chain', jsonb_build_array(
		       jsonb_build_object('code', 'RD', 'level', 'district'), jsonb_build_object('code', 'RS1', 'level', 'street'),
		       jsonb_build_object('code', 'RC4', 'level', 'community'), jsonb_build_object('code', 'RG13', 'level', 'grid')))),
		     ARRAY['RD', 'RS1', 'RC4', 'RG13']
		   FROM generate_series(0, 29) i RETURNING id, reported_at)
		 INSERT INTO report_events (report_id, action, from_status, to_status, at) SELECT id, 'report', NULL, 'registered', reported_at FROM r`,
		// A subcategory of rollup-b.
		`INSERT INTO categories (code, name, parent_code, limit_value, limit_clock) VALUES ('counts-b1', 'b1', 'rollup-b', 3, 'calendar_days')
		 ON CONFLICT DO NOTHING`,
		`WITH r AS (UPDATE reports SET category = 'counts-b1' WHERE layer_id = $1 AND category = 'rollup-b' AND id % 5 = 0 RETURNING id, status)
		 INSERT INTO report_events (report_id, action, from_status, to_status, at) SELECT id, 'reroute', status, status, now() FROM r`,
		// Street RS1 became an area: half its reports were chained with
		// it at that level since.
		`WITH old AS (UPDATE grid_versions SET valid_to = now() WHERE layer_id = $1 AND code = 'RS1' AND valid_to IS NULL
		   RETURNING layer_id, code, parent_code, geom)
		 INSERT INTO grid_versions (layer_id, code, version, level, parent_code, geom) SELECT layer_id, code, 2, 'area', parent_code, geom FROM old`,
		`WITH r AS (UPDATE reports r SET assignment = jsonb_set(r.assignment, '{primary,chain,1,level}', '"area"')
		   WHERE r.layer_id = $1 AND r.assignment->'primary'->'chain'->1->>'code' = 'RS1' AND r.id % 2 = 0 RETURNING r.id, r.status)
		 INSERT INTO report_events (report_id, action, from_status, to_status, at) SELECT id, 'reroute', status, status, now() FROM r`,
		`DELETE FROM reports WHERE layer_id = $1 AND id % 41 = 5`,
		// A community moved to another street.
		`WITH old AS (UPDATE grid_versions SET valid_to = now() WHERE layer_id = $1 AND code = 'RC4' AND valid_to IS NULL RETURNING *)
		 INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom) SELECT layer_id, code, version + 1, name, level, 'RS2', geom FROM old`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, layer)
		}
		if _, err := db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	var area int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM report_facts WHERE layer_id = $1 AND chain->>'area' = 'RS1'`, layer).Scan(&area); err != nil || area == 0 {
		t.Fatalf("%d reports chained with RS1 as an area (%v)", area, err)
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
	today := time.Now().UTC().Truncate(24 * time.Hour)
	windows = append(windows, struct {
		name         string
		since, until *time.Time
		sums         bool
	}{"the last three days, to now", ptr(today.AddDate(0, 0, -3).Add(7 * time.Hour)), ptr(time.Now().Add(time.Minute)), true})
	check := func(t *testing.T, stage string) int {
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
					got, sums, err := store.ReportCountsFrom(ctx, f, true)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					want := plainReportCounts(t, db, layer, code, f)
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s (from the sums: %v): got %+v, the reports %+v", name, sums, got, want)
					}
					if direct, _, err := store.ReportCountsFrom(ctx, f, false); err != nil || !reflect.DeepEqual(direct, want) {
						t.Errorf("%s: counted from the reports %+v (%v), want %+v", name, direct, err, want)
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
		if _, sums, err := store.ReportCountsFrom(ctx, f, true); err != nil || sums {
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
// sees with filter f's window, category (and its subcategories), primary
// grid and tier, straight from the reports, as of the database's now.
func plainReportCounts(t *testing.T, db *postgres.DB, layer, code string, f gridmap.ReportFilter) *gridmap.ReportCounts {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT status, count(*), count(*) FILTER (WHERE due_at < now()) FROM reports
		WHERE layer_id = $1 AND scope_codes @> ARRAY[$2] AND ($3::timestamptz IS NULL OR reported_at >= $3)
		  AND ($4::timestamptz IS NULL OR reported_at < $4)
		  AND ($5 = '' OR category IN (SELECT code FROM categories WHERE code = $5 OR parent_code = $5))
		  AND ($6 = '' OR primary_code = $6) AND ($7 = '' OR tier = $7)
		GROUP BY status`, layer, code, f.Since, f.Until, f.Category, f.Grid, f.Tier)
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
		dispatch.Count(out, status, n, late)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
