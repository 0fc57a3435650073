package postgres_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// statsBenchSize is how many reports the stats benchmarks generate and
// over how many districts: by default a million, spread evenly over 2025
// in one district of 10 streets, 100 communities and 1,000 grids (a busy
// district's year); generating them with their events, facts and daily
// sums takes about three minutes. GRIDMAP_BENCH_REPORTS sets another
// number, spread over a district for each million, so that one district's
// month can be measured with, say, ten million reports in the table
// (about 45 minutes and 40 GB of disk at its peak to generate here).
func statsBenchSize(b testing.TB) (reports, districts int) {
	reports = 1_000_000
	if v := os.Getenv("GRIDMAP_BENCH_REPORTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1_000_000 {
			b.Fatalf("GRIDMAP_BENCH_REPORTS=%q: give a number of reports of a million or more", v)
		}
		reports = n
	}
	return reports, reports / 1_000_000
}

// statsBenchDistrict is the district whose month the one-district
// benchmarks read: the last of them.
func statsBenchDistrict(districts int) string {
	if districts == 1 {
		return "D"
	}
	return "D" + strconv.Itoa(districts-1)
}

// statsBenchGenerateSQL writes $1 reports of 2025 over $2 districts (the
// statement writing events has the districts as $1), report i in district
// i % $2 as its (i / $2)th report, with
// their event histories: every report its intake, 90% registered, 65%
// resolved, 60% closed (one in six of them after due_at), 5% extended, 3%
// sent back after resolve, 2% suspended. The facts trigger is off meanwhile
// and the facts are then computed as migration 00018 backfills them.
var statsBenchGenerateSQL = []string{
	`INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('bench-a', 'a', 3, 'working_days'), ('bench-b', 'b', 3, 'working_days')`,
	`ALTER TABLE report_events DISABLE TRIGGER report_facts_apply`,
	// Each report in the month it was received, as intake files it.
	`SELECT report_month_make(m) FROM generate_series(timestamptz '2024-12-01 00:00Z', '2025-12-01 00:00Z', interval '1 month') m`,
	`INSERT INTO reports (id, external_id, content_hash, category, location, crs, reported_at, status, layer_id, primary_code, tier, due_at, assignment, scope_codes)
	SELECT report_month_floor(at) + i, 'bench-' || i, '\x00', CASE WHEN j % 3 = 0 THEN 'bench-b' ELSE 'bench-a' END, ST_SetSRID(ST_MakePoint(121 + (j % 1000) * 0.001, 31 + k * 0.01), 4326), 'wgs84',
	  at, CASE WHEN j % 10 < 6 THEN 'closed' WHEN j % 50 = 7 THEN 'suspended' WHEN j % 10 = 9 THEN 'reported' ELSE 'in_progress' END,
	  'bench', g, 'grid', at + interval '3 days',
	  jsonb_build_object('layer', 'bench', 'tier', 'grid', 'due_at', at + interval '3 days',
	    'departments', jsonb_build_array(jsonb_build_object('code', 'dept-' || (j % 4))),
	    'primary', jsonb_build_object('code', g, 'level', 'grid', 'chain', jsonb_build_array(
	      jsonb_build_object('code', d, 'level', 'district'), jsonb_build_object('code', s, 'level', 'street'),
	      jsonb_build_object('code', c, 'level', 'community'), jsonb_build_object('code', g, 'level', 'grid')))),
	  ARRAY[d, s, c, g]
	FROM (SELECT i, j, k, at, d, p || 'S' || (j % 10) AS s, p || 'C' || (j % 100) AS c, p || 'G' || (j % 1000) AS g
	      FROM (SELECT i, i / $2 AS j, i % $2 AS k, timestamptz '2025-01-01 00:00+08' + (i * (365.0 * 86400 / $1)) * interval '1 second' AS at,
	              CASE WHEN $2 = 1 THEN 'D' ELSE 'D' || (i % $2) END AS d, CASE WHEN $2 = 1 THEN '' ELSE 'D' || (i % $2) || '-' END AS p
	            FROM generate_series(0, $1 - 1) i) n) v`,
	`INSERT INTO report_events (report_id, action, from_status, to_status, at)
	SELECT id, a.action, a.from_status, a.to_status, reported_at + a.after
	FROM reports r, LATERAL (SELECT substr(r.external_id, 7)::bigint / $1 AS i) n, LATERAL (VALUES
	  ('report', NULL, 'reported', interval '0', true),
	  ('register', 'reported', 'registered', interval '1 hour', n.i % 10 < 9),
	  ('extend', 'dispatched', 'dispatched', interval '2 hours', n.i % 20 = 3),
	  ('suspend', 'dispatched', 'suspended', interval '2 hours', n.i % 50 = 7),
	  ('resolve', 'in_progress', 'resolved', interval '1 day', n.i % 10 < 6 OR n.i % 10 = 8),
	  ('reject', 'resolved', 'in_progress', interval '25 hours', n.i % 100 < 3),
	  ('close', 'verified', 'closed', CASE WHEN n.i % 6 = 0 THEN interval '4 days' ELSE interval '2 days' END, n.i % 10 < 6)
	) a (action, from_status, to_status, after, happened)
	WHERE a.happened AND r.layer_id = 'bench'`,
	statsBenchGridsSQL,
	`ALTER TABLE report_events ENABLE TRIGGER report_facts_apply`,
	`SELECT report_facts_backfill('bench')`,
	`ANALYZE reports`, `ANALYZE report_events`, `ANALYZE report_facts`, `ANALYZE report_scope`,
}

// statsBenchGridsSQL writes the grids of the $1 districts the generated
// reports' chains name, as an import would have (a scoped viewer's rows
// are its subtree's grids), unless they are there.
const statsBenchGridsSQL = `INSERT INTO grid_versions (layer_id, code, version, level, parent_code, geom)
	SELECT 'bench', p || code, 1, level, CASE WHEN parent IS NOT NULL THEN p || parent ELSE d END,
	  ST_Multi(ST_MakeEnvelope(121 + x * 0.001, 31 + k * 0.01, 121.001 + x * 0.001, 31.01 + k * 0.01, 4326))
	FROM (SELECT k, CASE WHEN $1 = 1 THEN 'D' ELSE 'D' || k END AS d, CASE WHEN $1 = 1 THEN '' ELSE 'D' || k || '-' END AS p
	      FROM generate_series(0, $1 - 1) k) dist,
	  LATERAL (SELECT 'S' || x AS code, 'street' AS level, NULL AS parent, x FROM generate_series(0, 9) x
	    UNION ALL SELECT 'C' || x, 'community', 'S' || (x % 10), x FROM generate_series(0, 99) x
	    UNION ALL SELECT 'G' || x, 'grid', 'C' || (x % 100), x FROM generate_series(0, 999) x) g
	UNION ALL
	SELECT 'bench', CASE WHEN $1 = 1 THEN 'D' ELSE 'D' || k END, 1, 'district', NULL, ST_Multi(ST_MakeEnvelope(121, 31 + k * 0.01, 122, 31.01 + k * 0.01, 4326))
	FROM generate_series(0, $1 - 1) k
	ON CONFLICT DO NOTHING`

// statsGroupBySQL is the baseline: the same figures as the stats store's
// (per street and category, per street, per category, in total) by a plain
// GROUP BY over the reports of the window, their flags read from their
// event history and their street from the assignment's chain.
// $1, $2 the window; $3 the layer; $4 the time; $5 dispatch.ClockStopped;
// $6 the level.
const statsGroupBySQL = `WITH w AS MATERIALIZED (
	  SELECT r.category, (SELECT x->>'code' FROM jsonb_array_elements(r.assignment->'primary'->'chain') x WHERE x->>'level' = $6) AS key,
	    coalesce(h.registered, false) AS registered, coalesce(h.resolved, false) AS resolved, coalesce(h.reworked, false) AS reworked,
	    coalesce(h.extended, false) AS extended, coalesce(h.suspended, false) AS suspended, h.closed_at IS NOT NULL AS closed,
	    coalesce(h.closed_at <= r.due_at, false) AS closed_on_time, r.due_at < $4 AND r.status <> ALL($5::text[]) AS overdue,
	    extract(epoch FROM h.closed_at - r.reported_at) AS handling
	  FROM reports r LEFT JOIN LATERAL (
	    SELECT bool_or(e.action = 'register') AS registered, bool_or(e.action = 'resolve') AS resolved,
	      bool_or(e.action = 'reject' AND e.from_status = 'resolved') AS reworked, bool_or(e.action = 'extend') AS extended,
	      bool_or(e.action = 'suspend') AS suspended, max(e.at) FILTER (WHERE e.to_status = 'closed') AS closed_at
	    FROM report_events e WHERE e.report_id = r.id) h ON true
	  WHERE r.reported_at >= $1 AND r.reported_at < $2 AND r.layer_id = $3)
	SELECT key, coalesce(category, ''), count(*), count(*) FILTER (WHERE registered), count(*) FILTER (WHERE closed),
	  count(*) FILTER (WHERE closed_on_time), count(*) FILTER (WHERE registered AND (closed OR overdue)),
	  count(*) FILTER (WHERE resolved), count(*) FILTER (WHERE reworked), count(*) FILTER (WHERE extended),
	  count(*) FILTER (WHERE suspended), count(*) FILTER (WHERE overdue),
	  percentile_cont(0.5) WITHIN GROUP (ORDER BY handling), GROUPING(category)
	FROM w WHERE key IS NOT NULL GROUP BY GROUPING SETS ((key, category), (key))
	UNION ALL
	SELECT NULL, coalesce(category, ''), count(*), count(*) FILTER (WHERE registered), count(*) FILTER (WHERE closed),
	  count(*) FILTER (WHERE closed_on_time), count(*) FILTER (WHERE registered AND (closed OR overdue)),
	  count(*) FILTER (WHERE resolved), count(*) FILTER (WHERE reworked), count(*) FILTER (WHERE extended),
	  count(*) FILTER (WHERE suspended), count(*) FILTER (WHERE overdue),
	  percentile_cont(0.5) WITHIN GROUP (ORDER BY handling), GROUPING(category)
	FROM w GROUP BY GROUPING SETS ((category), ())`

var statsBench struct {
	once  sync.Once
	db    *postgres.DB
	err   error
	stats *postgres.StatsStore
}

// statsBenchDB is the package's database with the generated reports, in
// layer bench (generated once per run). GRIDMAP_BENCH_REPORTS_DB (a
// connection string) names a database to use instead, kept between runs:
// the reports are generated into it when its layer bench is empty, and
// measured as they are when it holds the number asked for.
func statsBenchDB(b *testing.B) *postgres.StatsStore {
	b.Helper()
	statsBench.once.Do(func() {
		ctx := context.Background()
		reports, districts := statsBenchSize(b)
		var db *postgres.DB
		if url := os.Getenv("GRIDMAP_BENCH_REPORTS_DB"); url != "" {
			if db, statsBench.err = postgres.Open(ctx, url, nil); statsBench.err != nil {
				return
			}
			// Open for the whole run, as the shared database is: every
			// benchmark of the run reads it.
			if statsBench.err = db.Migrate(ctx); statsBench.err != nil {
				return
			}
			var held int
			if statsBench.err = db.Pool.QueryRow(ctx, `SELECT count(*) FROM reports WHERE layer_id = 'bench'`).Scan(&held); statsBench.err != nil {
				return
			}
			var filed bool
			if statsBench.err = db.Pool.QueryRow(ctx, `SELECT coalesce(min(id) >= report_months_first(), true) FROM reports WHERE layer_id = 'bench'`).Scan(&filed); statsBench.err != nil {
				return
			}
			switch {
			case !filed:
				statsBench.err = fmt.Errorf("the database's reports were generated before reports were kept by month (reports_before): generate them again in an empty database")
				return
			case held == reports:
				if _, statsBench.err = db.Pool.Exec(ctx, statsBenchGridsSQL, districts); statsBench.err != nil {
					return
				}
				statsBench.db, statsBench.stats = db, postgres.NewStatsStore(db)
				b.Logf("%d reports already in the database", held)
				return
			case held > 0:
				statsBench.err = fmt.Errorf("the database holds %d reports in layer bench, not %d", held, reports)
				return
			}
		} else {
			db = pgtest.Shared(b)
		}
		statsBench.db = db
		if _, err := postgres.NewLayerStore(db).PutLayer(ctx, &gridmap.Layer{ID: "bench", Name: "bench", Kind: gridmap.KindComprehensive,
			Levels: []string{"district", "street", "community", "grid"}}); err != nil {
			statsBench.err = err
			return
		}
		start := time.Now()
		statsBench.err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
				return err
			}
			for _, q := range statsBenchGenerateSQL {
				var args []any
				switch {
				case strings.Contains(q, "$2"):
					args = []any{reports, districts}
				case strings.Contains(q, "$1"):
					args = []any{districts}
				}
				if _, err := tx.Exec(ctx, q, args...); err != nil {
					return err
				}
			}
			return nil
		})
		if statsBench.err != nil {
			return
		}
		stats := postgres.NewStatsStore(db)
		if _, statsBench.err = stats.FoldStats(ctx); statsBench.err != nil {
			return
		}
		// As autovacuum would, before the benchmark reads them.
		if _, statsBench.err = db.Pool.Exec(ctx, `VACUUM ANALYZE report_rollup_delta, report_rollup`); statsBench.err != nil {
			return
		}
		b.Logf("generated %d reports in %d districts with their events, facts and daily sums in %v", reports, districts, time.Since(start).Round(time.Second))
		statsBench.stats = stats
	})
	if statsBench.err != nil {
		b.Fatal(statsBench.err)
	}
	return statsBench.stats
}

// statsWindows are a month (February) and the year of the generated
// reports, as a dispatcher in Shanghai asks for them: each starts and ends
// mid-UTC-day, so the edges are read from the facts.
var statsWindows = map[string][2]time.Time{
	"Month": {time.Date(2025, 2, 1, 0, 0, 0, 0, shanghai), time.Date(2025, 3, 1, 0, 0, 0, 0, shanghai)},
	"Year":  {time.Date(2025, 1, 1, 0, 0, 0, 0, shanghai), time.Date(2026, 1, 1, 0, 0, 0, 0, shanghai)},
}

var shanghai = time.FixedZone("CST", 8*3600)

// benchStats is GET /v1/stats?layer=bench&group=street over the window:
// the district's streets ranked, with the figures per category.
func benchStats(b *testing.B, window string) {
	s := statsBenchDB(b)
	w := statsWindows[window]
	q := gridmap.StatsQuery{Layer: "bench", Group: gridmap.StatsByStreet, From: &w[0], To: &w[1]}
	now := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	st, err := s.StatsAt(context.Background(), q, now)
	if err != nil {
		b.Fatal(err)
	}
	if _, districts := statsBenchSize(b); len(st.Rows) != 10*districts {
		b.Fatalf("%d streets in %d districts", len(st.Rows), districts)
	}
	// The baseline finds the same figures.
	base := statsGroupByTotal(b, w, now)
	if got := st.Total.StatsFigures; got.Received != base.Received || got.Closed != base.Closed || got.ClosedOnTime != base.ClosedOnTime ||
		got.Due != base.Due || got.Reworked != base.Reworked || got.Overdue != base.Overdue {
		b.Fatalf("facts %+v, GROUP BY %+v", got, base)
	}
	b.ReportMetric(float64(st.Total.Received), "reports")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.StatsAt(context.Background(), q, now); err != nil {
			b.Fatal(err)
		}
	}
}

// statsGroupByTotal runs the baseline once and returns its total.
func statsGroupByTotal(b *testing.B, w [2]time.Time, now time.Time) gridmap.StatsFigures {
	return groupByTotal(b, statsGroupBySQL, w[0], w[1], "bench", now, dispatch.ClockStopped, "street")
}

// groupByTotal runs a baseline of statsGroupBySQL's columns and returns
// its total.
func groupByTotal(b *testing.B, query string, args ...any) gridmap.StatsFigures {
	rows, err := statsBench.db.Pool.Query(context.Background(), query, args...)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var total gridmap.StatsFigures
	for rows.Next() {
		var key *string
		var category string
		var f gridmap.StatsFigures
		var all int
		if err := rows.Scan(&key, &category, &f.Received, &f.Registered, &f.Closed, &f.ClosedOnTime, &f.Due, &f.Resolved,
			&f.Reworked, &f.Extended, &f.Suspended, &f.Overdue, &f.MedianHandlingS, &all); err != nil {
			b.Fatal(err)
		}
		if key == nil && all == 1 {
			total = f
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return total
}

func benchStatsGroupBy(b *testing.B, window string) {
	statsBenchDB(b)
	w := statsWindows[window]
	now := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		statsGroupByTotal(b, w, now)
	}
}

func BenchmarkStatsDistrictMonth(b *testing.B)        { benchStats(b, "Month") }
func BenchmarkStatsDistrictMonthGroupBy(b *testing.B) { benchStatsGroupBy(b, "Month") }
func BenchmarkStatsDistrictYear(b *testing.B)         { benchStats(b, "Year") }
func BenchmarkStatsDistrictYearGroupBy(b *testing.B)  { benchStatsGroupBy(b, "Year") }

// statsOneDistrictSQL is statsGroupBySQL over one district's reports ($7),
// as a caller scoped to the district sees them.
var statsOneDistrictSQL = strings.Replace(statsGroupBySQL, "AND r.layer_id = $3)",
	"AND r.layer_id = $3 AND r.scope_codes @> ARRAY[$7::text])", 1)

// districtCaller is a viewer scoped to the district the one-district
// benchmarks read.
func districtCaller(b *testing.B) context.Context {
	_, districts := statsBenchSize(b)
	return gridmap.NewContextWithCaller(context.Background(), &gridmap.Caller{Kind: gridmap.CallerAccount, ID: 1, Name: "district viewer",
		Role: gridmap.RoleViewer, Scope: &gridmap.Scope{Layer: "bench", Code: statsBenchDistrict(districts)}})
}

// BenchmarkStatsOneDistrictMonth is GET /v1/stats?layer=bench&group=street
// for February, asked by a viewer scoped to one district: its 10 streets,
// from the daily sums of its grid, its co-owned cells and its streets'
// cells (it fails if the figures came from the facts), held equal to the
// baseline's.
func BenchmarkStatsOneDistrictMonth(b *testing.B) {
	s := statsBenchDB(b)
	ctx := districtCaller(b)
	w := statsWindows["Month"]
	q := gridmap.StatsQuery{Layer: "bench", Group: gridmap.StatsByStreet, From: &w[0], To: &w[1]}
	now := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	st, sums, err := s.StatsAtFromSums(ctx, q, now)
	if err != nil {
		b.Fatal(err)
	}
	if !sums {
		b.Fatal("the district's viewer read the facts, not the daily sums")
	}
	if len(st.Rows) != 10 {
		b.Fatalf("%d streets", len(st.Rows))
	}
	base := statsOneDistrictTotal(b, w, now)
	if got := st.Total.StatsFigures; got.Received != base.Received || got.Closed != base.Closed || got.ClosedOnTime != base.ClosedOnTime ||
		got.Due != base.Due || got.Reworked != base.Reworked || got.Overdue != base.Overdue || got.Received == 0 {
		b.Fatalf("facts %+v, GROUP BY %+v", got, base)
	}
	b.ReportMetric(float64(st.Total.Received), "reports")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.StatsAt(ctx, q, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatsOneDistrictMonthGroupBy is its baseline.
func BenchmarkStatsOneDistrictMonthGroupBy(b *testing.B) {
	statsBenchDB(b)
	w := statsWindows["Month"]
	now := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		statsOneDistrictTotal(b, w, now)
	}
}

func statsOneDistrictTotal(b *testing.B, w [2]time.Time, now time.Time) gridmap.StatsFigures {
	_, districts := statsBenchSize(b)
	return groupByTotal(b, statsOneDistrictSQL, w[0], w[1], "bench", now, dispatch.ClockStopped, "street", statsBenchDistrict(districts))
}

// BenchmarkReportListDistrictMonth is what the console's report list asks
// when a viewer scoped to one district opens February: the first page of
// 50 reports, newest first, and the counts by status of the whole month,
// from the daily sums. The counts must add up to the month's reports.
func BenchmarkReportListDistrictMonth(b *testing.B) { benchReportList(b, true) }

// BenchmarkReportListDistrictMonthFromReports is the same list with the
// counts read from the month's reports, each for its status: the baseline.
func BenchmarkReportListDistrictMonthFromReports(b *testing.B) { benchReportList(b, false) }

func benchReportList(b *testing.B, sums bool) {
	statsBenchDB(b)
	reports := postgres.NewReportStore(statsBench.db, nil, shanghai)
	ctx := districtCaller(b)
	w := statsWindows["Month"]
	f := gridmap.ReportFilter{Since: &w[0], Until: &w[1], Limit: 50}
	list := func() *gridmap.ReportCounts {
		page, next, err := reports.Reports(ctx, f)
		if err != nil {
			b.Fatal(err)
		}
		counts, fromSums, err := reports.ReportCountsFrom(ctx, f, sums)
		if err != nil {
			b.Fatal(err)
		}
		if len(page) != 50 || next == nil || fromSums != sums {
			b.Fatalf("a page of %d reports (next %v), counts from the sums %v", len(page), next, fromSums)
		}
		return counts
	}
	counts := list()
	base := statsOneDistrictTotal(b, w, time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC))
	if counts.Total != int64(base.Received) {
		b.Fatalf("the counts total %d reports, the month has %d", counts.Total, base.Received)
	}
	if direct, _, err := reports.ReportCountsFrom(ctx, f, false); err != nil || !reflect.DeepEqual(counts, direct) {
		b.Fatalf("counts %+v, from the reports %+v (%v)", counts, direct, err)
	}
	b.ReportMetric(float64(counts.Total), "reports")
	for b.Loop() {
		list()
	}
}

// BenchmarkReportListGridNewest is the report list a scoped viewer opens
// first: the newest 50 reports of its area, with no window, for a viewer
// of the district, of one of its grids (about a thousand of the million
// reports) and of a grid drawn since, which has none. Each page is held
// equal to the baseline's.
func BenchmarkReportListGridNewest(b *testing.B) { benchGridNewest(b, false) }

// BenchmarkReportListGridNewestWalk is its baseline: the same pages read
// by walking every report newest first and checking each one's scope, as
// the list did before report_scope's index by id (migration 00031),
// planned for its values each time.
func BenchmarkReportListGridNewestWalk(b *testing.B) { benchGridNewest(b, true) }

func benchGridNewest(b *testing.B, walk bool) {
	statsBenchDB(b)
	reports := postgres.NewReportStore(statsBench.db, nil, shanghai)
	codes := viewerCodes(b)
	page := func(code string) []int64 {
		if walk {
			rows, err := statsBench.db.Pool.Query(context.Background(), postgres.ReportListSQL["by arrival"],
				append([]any{pgx.QueryExecModeDescribeExec}, viewerFilterArgs(nil, false, code, int64(math.MaxInt64), 51)...)...)
			return pageIDs(b, rows, err, 0)
		}
		return viewerPage(b, reports, code, gridmap.ReportFilter{Limit: 50})
	}
	checkViewerPages(b, codes, page, `SELECT id FROM reports WHERE layer_id = 'bench' AND scope_codes @> ARRAY[$1]
		ORDER BY id DESC LIMIT 50`)
	timeViewerPages(b, codes, page)
}

// viewerCodes are the scopes of the list benchmarks' viewers: the
// district of the one-district benchmarks, one of its grids (about a
// thousandth of its reports, all of them open: a grid's reports share
// their status in the generated data) and a grid drawn since, of none.
func viewerCodes(b *testing.B) []string {
	_, districts := statsBenchSize(b)
	district := statsBenchDistrict(districts)
	grid := district + "-" // the district's grids' codes start so
	if districts == 1 {
		grid = ""
	}
	return []string{district, grid + "G509", grid + "G-new"}
}

// viewerFilterArgs are a report list statement's parameters for a viewer
// scoped to code with a filter of statuses only (dispatch.StatusFilter's),
// then the statement's own.
func viewerFilterArgs(statuses []string, negate bool, code string, own ...any) []any {
	return append([]any{statuses, negate, "", (*time.Time)(nil), (*time.Time)(nil), []string(nil), []int64(nil), []float64(nil),
		"bench", code, "", "", (*bool)(nil), []string(nil), true, (*string)(nil)}, own...)
}

// pageIDs reads the ids (column col) of the first 50 rows of a report list
// statement, each row's columns decoded, as the store's page does.
func pageIDs(b *testing.B, rows pgx.Rows, err error, col int) []int64 {
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() && len(ids) < 50 {
		v, err := rows.Values()
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, v[col].(int64))
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return ids
}

// viewerPage is the ids of the page of f listed to a viewer scoped to
// code.
func viewerPage(b *testing.B, reports *postgres.ReportStore, code string, f gridmap.ReportFilter) []int64 {
	ctx := gridmap.NewContextWithCaller(context.Background(), &gridmap.Caller{Kind: gridmap.CallerAccount, ID: 1, Name: "viewer",
		Role: gridmap.RoleViewer, Scope: &gridmap.Scope{Layer: "bench", Code: code}})
	list, _, err := reports.Reports(ctx, f)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, len(list))
	for i, r := range list {
		ids[i] = r.ID
	}
	return ids
}

// checkViewerPages holds each viewer's page to plain's ids (plain's $1 is
// the viewer's code): 50 reports for the district and the grid, none for
// the new grid.
func checkViewerPages(b *testing.B, codes []string, page func(code string) []int64, plain string) {
	for i, code := range codes {
		rows, err := statsBench.db.Pool.Query(context.Background(), plain, code)
		if err != nil {
			b.Fatal(err)
		}
		want, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			b.Fatal(err)
		}
		if got := page(code); !slices.Equal(got, want) || len(want) != []int{50, 50, 0}[i] {
			b.Fatalf("%s's page: %v, want %v", code, got, want)
		}
	}
}

// timeViewerPages reads the viewers' pages in each round, reporting each
// viewer's time.
func timeViewerPages(b *testing.B, codes []string, page func(code string) []int64) {
	took := make([]time.Duration, len(codes))
	for b.Loop() {
		for i, code := range codes {
			start := time.Now()
			page(code)
			took[i] += time.Since(start)
		}
	}
	for i, unit := range []string{"district_ms", "grid_ms", "new_grid_ms"} {
		b.ReportMetric(float64(took[i])/1e6/float64(b.N), unit)
	}
}

// BenchmarkReportListOpenByDeadline is the console's first list for a
// scoped viewer: its open reports due first, 50, for the district's, the
// grid's and the new grid's viewer, planned for its values each time.
// Each page is held equal to a plain query's.
func BenchmarkReportListOpenByDeadline(b *testing.B) { benchOpenByDeadline(b, false) }

// BenchmarkReportListOpenByDeadlineCached is its baseline: the same
// statement under a plan made for any values, which PostgreSQL may adopt
// for a prepared statement, as the list's were before they were planned
// each time.
func BenchmarkReportListOpenByDeadlineCached(b *testing.B) { benchOpenByDeadline(b, true) }

func benchOpenByDeadline(b *testing.B, cached bool) {
	statsBenchDB(b)
	ctx := context.Background()
	reports := postgres.NewReportStore(statsBench.db, nil, shanghai)
	codes := viewerCodes(b)
	statuses, negate := dispatch.StatusFilter("open")
	var conn *pgxpool.Conn // the baseline's, its plans generic
	if cached {
		var err error
		if conn, err = statsBench.db.Pool.Acquire(ctx); err != nil {
			b.Fatal(err)
		}
		defer conn.Release()
		if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
			b.Fatal(err)
		}
		defer conn.Exec(ctx, "RESET plan_cache_mode")
	}
	page := func(code string) []int64 {
		if !cached {
			return viewerPage(b, reports, code, gridmap.ReportFilter{Status: "open", Sort: gridmap.SortDeadline, Limit: 50})
		}
		rows, err := conn.Query(ctx, postgres.ReportListSQL["by deadline"], viewerFilterArgs(statuses, negate, code, (*time.Time)(nil), int64(0), 51)...)
		return pageIDs(b, rows, err, 1) // due_at, then the report's columns
	}
	closed := "'" + strings.Join(statuses, "','") + "'"
	if !negate {
		b.Fatalf("open is %v, not negated", statuses)
	}
	checkViewerPages(b, codes, page, `SELECT id FROM reports WHERE layer_id = 'bench' AND scope_codes @> ARRAY[$1]
		AND status NOT IN (`+closed+`) ORDER BY due_at, id LIMIT 50`)
	timeViewerPages(b, codes, page)
}
