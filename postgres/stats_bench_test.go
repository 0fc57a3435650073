package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// statsBenchReports is how many reports the stats benchmarks generate,
// spread evenly over 2025 in one district of 10 streets, 100 communities
// and 1,000 grids: a busy district's year. Generating them with their
// events, facts and daily sums takes about three minutes.
const statsBenchReports = 1_000_000

// statsBenchGenerateSQL writes statsBenchReports ($1) reports of 2025 with
// their event histories: every report its intake, 90% registered, 65%
// resolved, 60% closed (one in six of them after due_at), 5% extended, 3%
// sent back after resolve, 2% suspended. The facts trigger is off meanwhile
// and the facts are then computed as migration 00018 backfills them.
var statsBenchGenerateSQL = []string{
	`INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('bench-a', 'a', 3, 'working_days'), ('bench-b', 'b', 3, 'working_days')`,
	`ALTER TABLE report_events DISABLE TRIGGER report_facts_apply`,
	`INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, layer_id, primary_code, tier, due_at, assignment, scope_codes)
	SELECT 'bench-' || i, '\x00', CASE WHEN i % 3 = 0 THEN 'bench-b' ELSE 'bench-a' END, ST_SetSRID(ST_MakePoint(121 + (i % 1000) * 0.001, 31), 4326), 'wgs84',
	  at, CASE WHEN i % 10 < 6 THEN 'closed' WHEN i % 50 = 7 THEN 'suspended' WHEN i % 10 = 9 THEN 'reported' ELSE 'in_progress' END,
	  'bench', g, 'grid', at + interval '3 days',
	  jsonb_build_object('layer', 'bench', 'tier', 'grid', 'due_at', at + interval '3 days',
	    'departments', jsonb_build_array(jsonb_build_object('code', 'dept-' || (i % 4))),
	    'primary', jsonb_build_object('code', g, 'level', 'grid', 'chain', jsonb_build_array(
	      jsonb_build_object('code', 'D', 'level', 'district'), jsonb_build_object('code', s, 'level', 'street'),
	      jsonb_build_object('code', c, 'level', 'community'), jsonb_build_object('code', g, 'level', 'grid')))),
	  ARRAY['D', s, c, g]
	FROM (SELECT i, timestamptz '2025-01-01 00:00+08' + (i * (365.0 * 86400 / $1)) * interval '1 second' AS at,
	        'S' || (i % 10) AS s, 'C' || (i % 100) AS c, 'G' || (i % 1000) AS g
	      FROM generate_series(0, $1 - 1) i) v`,
	`INSERT INTO report_events (report_id, action, from_status, to_status, at)
	SELECT id, a.action, a.from_status, a.to_status, reported_at + a.after
	FROM reports r, LATERAL (SELECT substr(r.external_id, 7)::bigint AS i) n, LATERAL (VALUES
	  ('report', NULL, 'reported', interval '0', true),
	  ('register', 'reported', 'registered', interval '1 hour', n.i % 10 < 9),
	  ('extend', 'dispatched', 'dispatched', interval '2 hours', n.i % 20 = 3),
	  ('suspend', 'dispatched', 'suspended', interval '2 hours', n.i % 50 = 7),
	  ('resolve', 'in_progress', 'resolved', interval '1 day', n.i % 10 < 6 OR n.i % 10 = 8),
	  ('reject', 'resolved', 'in_progress', interval '25 hours', n.i % 100 < 3),
	  ('close', 'verified', 'closed', CASE WHEN n.i % 6 = 0 THEN interval '4 days' ELSE interval '2 days' END, n.i % 10 < 6)
	) a (action, from_status, to_status, after, happened)
	WHERE a.happened AND r.layer_id = 'bench'`,
	`ALTER TABLE report_events ENABLE TRIGGER report_facts_apply`,
	`SELECT report_facts_backfill('bench')`,
	`ANALYZE reports`, `ANALYZE report_events`, `ANALYZE report_facts`,
}

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
// layer bench (generated once per run).
func statsBenchDB(b *testing.B) *postgres.StatsStore {
	b.Helper()
	statsBench.once.Do(func() {
		ctx := context.Background()
		db := pgtest.Shared(b)
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
				if containsParam(q) {
					args = []any{statsBenchReports}
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
		b.Logf("generated %d reports with their events, facts and daily sums in %v", statsBenchReports, time.Since(start).Round(time.Second))
		statsBench.stats = stats
	})
	if statsBench.err != nil {
		b.Fatal(statsBench.err)
	}
	return statsBench.stats
}

func containsParam(q string) bool {
	for i := 0; i+1 < len(q); i++ {
		if q[i] == '$' && q[i+1] == '1' {
			return true
		}
	}
	return false
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
	if len(st.Rows) != 10 {
		b.Fatalf("%d streets", len(st.Rows))
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
	rows, err := statsBench.db.Pool.Query(context.Background(), statsGroupBySQL, w[0], w[1], "bench", now, dispatch.ClockStopped, "street")
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
