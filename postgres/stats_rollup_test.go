package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/migrations"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/pressly/goose/v3"
)

// rollupWorld files n reports of layer (a district of 3 streets, 9
// communities and 27 grids, lon 60.5 lat -40 where no other test files
// any) reported over the first quarter of 2025, with their event
// histories inserted action by action: each statement moves many facts at
// once, as a bulk import would, and the facts' trigger appends to the
// daily sums. Returns the ids of the reports still open.
func rollupWorld(t *testing.T, db *postgres.DB, layer string, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := postgres.NewLayerStore(db).PutLayer(ctx, &gridmap.Layer{ID: layer, Name: layer, Kind: gridmap.KindComprehensive,
		Levels: []string{"district", "street", "community", "grid"}}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('rollup-a', 'a', 3, 'calendar_days'), ('rollup-b', 'b', 3, 'calendar_days')
		 ON CONFLICT DO NOTHING`,
		// Every report with its intake event (a statement of its own per
		// report would be slow: one statement files them all).
		`WITH r AS (
		   INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, layer_id, primary_code, tier, due_at, assignment, scope_codes)
		   SELECT $1 || '-' || i, '\x00', CASE WHEN i % 3 = 0 THEN 'rollup-b' ELSE 'rollup-a' END, ST_SetSRID(ST_MakePoint(60.5 + (i % 27) * 0.001, -40), 4326), 'wgs84',
		     at, 'reported', $1, g, 'grid', at + interval '3 days',
		     jsonb_build_object('layer', $1, 'tier', 'grid', 'due_at', at + interval '3 days',
		       'departments', CASE WHEN i % 5 = 0 THEN '[]'::jsonb ELSE jsonb_build_array(jsonb_build_object('code', 'rdept-' || (i % 3)), jsonb_build_object('code', 'rdept-' || (i % 2 + 5))) END,
		       'primary', CASE WHEN i % 17 = 0 THEN NULL ELSE jsonb_build_object('code', g, 'level', 'grid', 'chain', jsonb_build_array(
		         jsonb_build_object('code', 'RD', 'level', 'district'), jsonb_build_object('code', s, 'level', 'street'),
		         jsonb_build_object('code', c, 'level', 'community'), jsonb_build_object('code', g, 'level', 'grid'))) END),
		     ARRAY['RD', s, c, g]
		   FROM (SELECT i, timestamptz '2025-01-01 00:00+08' + (i * (90.0 * 86400 / $2)) * interval '1 second' + (i % 7) * interval '1 minute' AS at,
		           'RS' || (i % 3) AS s, 'RC' || (i % 9) AS c, 'RG' || (i % 27) AS g
		         FROM generate_series(0, $2 - 1) i) v
		   RETURNING id, reported_at)
		 INSERT INTO report_events (report_id, action, from_status, to_status, at) SELECT id, 'report', NULL, 'reported', reported_at FROM r`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{layer, n}
		}
		if _, err := db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	// The moves, one statement per kind: register 90%, extend 5% (and
	// push the deadline), suspend 2%, resolve 65%, send back 3%, close 60%
	// (a sixth of them late), each with the report's status moved first.
	for _, m := range []struct {
		action, from, to, after, when, extra string
	}{
		{"register", "reported", "registered", "1 hour", "i % 10 < 9", ""},
		{"extend", "registered", "registered", "2 hours", "i % 20 = 3", ", due_at = r.due_at + interval '5 days'"},
		{"suspend", "registered", "suspended", "2 hours", "i % 50 = 7", ""},
		{"resolve", "registered", "resolved", "1 day", "(i % 10 < 6 OR i % 10 = 8) AND i % 50 <> 7", ""},
		{"reject", "resolved", "in_progress", "25 hours", "i % 100 < 3", ""},
		{"close", "in_progress", "closed", "2 days", "i % 10 < 6 AND i % 50 <> 7 AND i % 6 <> 0", ""},
		{"close", "resolved", "closed", "4 days 2 hours", "i % 10 < 6 AND i % 50 <> 7 AND i % 6 = 0", ""},
	} {
		q := fmt.Sprintf(`WITH r AS (
			UPDATE reports r SET status = '%s'%s, updated_at = r.reported_at + interval '%s'
			FROM (SELECT id, substr(external_id, length($1) + 2)::int AS i FROM reports WHERE layer_id = $1) n
			WHERE r.id = n.id AND (%s) AND (r.status = '%s' OR '%s' = 'closed')
			RETURNING r.id, r.reported_at)
			INSERT INTO report_events (report_id, action, from_status, to_status, at)
			SELECT id, '%s', '%s', '%s', reported_at + interval '%s' FROM r`,
			m.to, m.extra, m.after, m.when, m.from, m.to, m.action, m.from, m.to, m.after)
		if _, err := db.Pool.Exec(ctx, q, layer); err != nil {
			t.Fatalf("%s: %v", m.action, err)
		}
	}
	var open []int64
	rows, err := db.Pool.Query(ctx, `SELECT id FROM reports WHERE layer_id = $1 AND status <> 'closed' ORDER BY id`, layer)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		open = append(open, id)
	}
	return open
}

// rollupQueries are the queries the sums must answer as the facts do:
// every grouping, windows on and off UTC days, open and empty ones, a
// category.
func rollupQueries(layer string) []gridmap.StatsQuery {
	at := func(s string) *time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return &t
	}
	windows := [][2]*time.Time{
		{nil, nil},
		{at("2025-01-01T00:00:00+08:00"), at("2025-02-01T00:00:00+08:00")},
		{at("2025-02-01T00:00:00Z"), at("2025-03-01T00:00:00Z")},
		{at("2025-01-15T13:07:00+08:00"), at("2025-03-20T05:00:00+08:00")},
		{at("2025-02-10T01:00:00Z"), at("2025-02-10T09:00:00Z")},
		{at("2025-03-01T00:00:00Z"), nil},
		{nil, at("2025-01-20T12:00:00Z")},
		{at("2026-01-01T00:00:00Z"), at("2026-02-01T00:00:00Z")},
	}
	var qs []gridmap.StatsQuery
	for _, w := range windows {
		for _, g := range []struct{ group, level string }{{gridmap.StatsByGrid, ""}, {gridmap.StatsByGrid, "community"},
			{gridmap.StatsByStreet, ""}, {gridmap.StatsByDistrict, ""}, {gridmap.StatsByDepartment, ""}} {
			qs = append(qs, gridmap.StatsQuery{Layer: layer, Group: g.group, Level: g.level, From: w[0], To: w[1]})
		}
		qs = append(qs, gridmap.StatsQuery{Layer: layer, Group: gridmap.StatsByStreet, From: w[0], To: w[1], Category: "rollup-b"})
	}
	return qs
}

// checkSumsAgree checks that every rollup query gives the same figures from
// the daily sums as from the facts alone.
func checkSumsAgree(t *testing.T, stats *postgres.StatsStore, layer string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, q := range rollupQueries(layer) {
		got, err := stats.StatsAt(ctx, q, now)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		want, err := stats.StatsFromFacts(ctx, q, now)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s %v-%v: from the sums\n%+v\nfrom the facts\n%+v", q.Group, q.Level, q.From, q.To, got.Total, want.Total)
		}
	}
}

// TestStatsFoldInBatches: deltas folded a few at a time, in whatever
// order the table gives them, leave the cells the facts' to the last
// count, with no cell left empty or below zero: a batch may take a report
// back from a cell before the delta that counted it there.
func TestStatsFoldInBatches(t *testing.T) {
	db := pgtest.Shared(t)
	ctx := context.Background()
	stats := postgres.NewStatsStore(db)
	const layer = "rollup-batches"
	rollupScopedWorld(t, db, layer, 700)
	var pending int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM report_rollup_delta WHERE layer_id = $1`, layer).Scan(&pending); err != nil || pending < 1000 {
		t.Fatalf("%d deltas pending (%v)", pending, err)
	}
	short, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := stats.FoldStatsIn(short, 0); err == nil {
		t.Error("a fold of batches of no page: no error")
	}
	folded, err := stats.FoldStatsIn(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	var left, empty int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM report_rollup_delta WHERE layer_id = $1),
		(SELECT count(*) FROM report_rollup WHERE layer_id = $1 AND n <= 0)`, layer).Scan(&left, &empty); err != nil {
		t.Fatal(err)
	}
	if folded == 0 || left != 0 || empty != 0 {
		t.Errorf("%d cells written; %d deltas left, %d cells empty or below zero", folded, left, empty)
	}
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	checkSumsAgree(t, stats, layer, now)
	checkScopedSumsAgree(t, stats, layer, []string{"RD", "RS1", "RC4"}, now)

	// A report extended within its due day: a statement's delta of its
	// cell counts no report more, one extension more. Folded before the
	// delta of the statement that filed it (a batch takes the deltas in
	// the order they are stored, and a delta may be stored in space an
	// earlier one freed), the cell counts no report and one extension
	// until that delta is folded too.
	for _, delta := range []string{"0, 0, 0, 0, 0, 0, 0, 1, 0", "1, 1, 0, 0, 0, 0, 0, 0, 0"} {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO report_rollup_delta (layer_id, level, code, category, day, status, due_day, hb, n,
			  registered, closed, closed_on_time, registered_closed, resolved, reworked, extended, suspended)
			VALUES ('rollup-hand', '*', '', 'rollup-a', '2025-02-03', 'registered', '2025-02-06', NULL, `+delta+`)`); err != nil {
			t.Fatal(err)
		}
		if _, err := stats.FoldStatsIn(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	var n, registered, extended int
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0), coalesce(sum(registered), 0), coalesce(sum(extended), 0)
		FROM report_rollup WHERE layer_id = 'rollup-hand'`).Scan(&n, &registered, &extended); err != nil {
		t.Fatal(err)
	}
	if n != 1 || registered != 1 || extended != 1 {
		t.Errorf("the extended report's cell counts %d reports, %d registered, %d extended; want 1 of each", n, registered, extended)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM report_rollup WHERE layer_id = 'rollup-hand'`); err != nil {
		t.Fatal(err)
	}

	// Folds a page at a time end while deltas keep arriving (a statement
	// of 50 every few milliseconds), and lose none of them.
	var stored atomic.Int64
	var stop atomic.Bool
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for !stop.Load() {
			time.Sleep(3 * time.Millisecond)
			if _, err := db.Pool.Exec(ctx, `INSERT INTO report_rollup_delta (layer_id, level, code, category, day, status, due_day, hb, n,
				  registered, closed, closed_on_time, registered_closed, resolved, reworked, extended, suspended)
				SELECT 'rollup-stream', '*', '', 'rollup-a', '2025-02-03', 'registered', '2025-02-06', NULL, 1, 0, 0, 0, 0, 0, 0, 0, 0
				FROM generate_series(1, 50)`); err != nil {
				errs <- err
				return
			}
			stored.Add(50)
		}
	}()
	stopped := false
	stopInserts := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stop.Store(true)
		return <-errs
	}
	defer stopInserts()
	arriving, cancelArriving := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelArriving()
	for range 3 {
		if _, err := stats.FoldStatsIn(arriving, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := stopInserts(); err != nil {
		t.Fatal(err)
	}
	if _, err := stats.FoldStats(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0) FROM report_rollup WHERE layer_id = 'rollup-stream'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if int64(n) != stored.Load() || n == 0 {
		t.Errorf("%d deltas stored while folding, %d in the cells", stored.Load(), n)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM report_rollup WHERE layer_id = 'rollup-stream'`); err != nil {
		t.Fatal(err)
	}
}

func TestStatsSumsAgreeWithFacts(t *testing.T) {
	db := pgtest.Shared(t)
	ctx := context.Background()
	stats := postgres.NewStatsStore(db)
	open := rollupWorld(t, db, "rollup", 3000)
	// Overdue and due depend on the time asked about: one inside the
	// window, with deadlines passing on its day, and one after every
	// deadline.
	nows := []time.Time{time.Date(2025, 2, 14, 9, 30, 0, 0, time.UTC), time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}

	t.Run("deltas pending", func(t *testing.T) {
		for _, now := range nows {
			checkSumsAgree(t, stats, "rollup", now)
		}
	})
	if _, err := stats.FoldStats(ctx); err != nil {
		t.Fatal(err)
	}
	var pending int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM report_rollup_delta WHERE layer_id = 'rollup'`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != 0 {
		t.Fatalf("%d deltas left after a fold", pending)
	}
	t.Run("folded", func(t *testing.T) {
		for _, now := range nows {
			checkSumsAgree(t, stats, "rollup", now)
		}
	})

	// The plain GROUP BY over reports and events agrees on every street,
	// and the median lies within a bin of the exact one.
	t.Run("against a GROUP BY", func(t *testing.T) {
		from, to := time.Date(2025, 1, 10, 0, 0, 0, 0, shanghai), time.Date(2025, 3, 10, 0, 0, 0, 0, shanghai)
		now := nows[0]
		st, err := stats.StatsAt(ctx, gridmap.StatsQuery{Layer: "rollup", Group: gridmap.StatsByStreet, From: &from, To: &to}, now)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.Pool.Query(ctx, statsGroupBySQL, from, to, "rollup", now, dispatch.ClockStopped, "street")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		seen := 0
		for rows.Next() {
			var key *string
			var category string
			var f gridmap.StatsFigures
			var all int
			if err := rows.Scan(&key, &category, &f.Received, &f.Registered, &f.Closed, &f.ClosedOnTime, &f.Due, &f.Resolved,
				&f.Reworked, &f.Extended, &f.Suspended, &f.Overdue, &f.MedianHandlingS, &all); err != nil {
				t.Fatal(err)
			}
			if all != 1 {
				continue
			}
			got := st.Total.StatsFigures
			if key != nil {
				for _, r := range st.Rows {
					if r.Key == *key {
						got = r.StatsFigures
					}
				}
			}
			seen++
			exact := *f.MedianHandlingS
			if got.MedianHandlingS == nil || math.Abs(*got.MedianHandlingS-exact) > 0.25*exact {
				t.Errorf("%v: median %v, exactly %v", key, got.MedianHandlingS, exact)
			}
			got.MedianHandlingS, f.MedianHandlingS = nil, nil
			f.SetRates()
			got.SetRates()
			if !reflect.DeepEqual(got, f) {
				t.Errorf("%v: stats\n%+v\nGROUP BY\n%+v", key, got, f)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if seen != 4 { // 3 streets and the total
			t.Errorf("the GROUP BY gave %d rows", seen)
		}
	})

	// Moves after the fold: one report at a time, as the workflow makes
	// them; a re-route moves a report to another street; then deletes.
	for i, id := range open[:60] {
		var q string
		switch i % 3 {
		case 0:
			q = `WITH r AS (UPDATE reports SET status = 'closed' WHERE id = $1 RETURNING id)
			     INSERT INTO report_events (report_id, action, from_status, to_status, at) SELECT id, 'close', 'verified', 'closed', '2025-04-01' FROM r`
		case 1:
			q = `WITH r AS (UPDATE reports SET due_at = due_at + interval '30 days' WHERE id = $1 RETURNING id)
			     INSERT INTO report_events (report_id, action, from_status, to_status, at) SELECT id, 'extend', 'registered', 'registered', '2025-03-01' FROM r`
		case 2:
			q = `WITH r AS (UPDATE reports SET assignment = jsonb_set(assignment, '{primary,chain,1,code}', '"RS9"'), scope_codes = ARRAY['RD', 'RS9']
			       WHERE id = $1 RETURNING id)
			     INSERT INTO report_events (report_id, action, from_status, to_status, at) SELECT id, 'reroute', status, status, '2025-03-01' FROM r JOIN reports USING (id)`
		}
		if _, err := db.Pool.Exec(ctx, q, id); err != nil {
			t.Fatal(err)
		}
	}
	// Reports deleted (their facts go with them): their cells are taken
	// back.
	if tag, err := db.Pool.Exec(ctx, `DELETE FROM reports WHERE id = ANY($1)`, open[60:80]); err != nil || tag.RowsAffected() != 20 {
		t.Fatalf("deleted %v: %v", tag, err)
	}
	t.Run("moved, deltas pending", func(t *testing.T) {
		for _, now := range nows {
			checkSumsAgree(t, stats, "rollup", now)
		}
	})
	if _, err := stats.FoldStats(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("moved, folded", func(t *testing.T) {
		for _, now := range nows {
			checkSumsAgree(t, stats, "rollup", now)
		}
		var empty int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM report_rollup WHERE n = 0`).Scan(&empty); err != nil {
			t.Fatal(err)
		}
		if empty != 0 {
			t.Errorf("%d empty cells kept", empty)
		}
	})
}

// TestStatsSumsUnderConcurrentMoves closes reports from many clients while
// others fold and read, on a pool of three connections: every reader sees
// the same number of reports and never fewer closed than before, and the
// sums agree with the facts at the end.
func TestStatsSumsUnderConcurrentMoves(t *testing.T) {
	db := pgtest.SharedWith(t, postgres.Options{MaxConns: 3})
	ctx := context.Background()
	stats := postgres.NewStatsStore(db)
	const n = 600
	open := rollupScopedWorld(t, db, "rollup-busy", n)
	if _, err := stats.FoldStats(ctx); err != nil {
		t.Fatal(err)
	}
	q := gridmap.StatsQuery{Layer: "rollup-busy", Group: gridmap.StatsByStreet}
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	before, err := stats.StatsAt(ctx, q, now)
	if err != nil {
		t.Fatal(err)
	}
	// A viewer scoped to the district reads its streets from the sums too.
	scoped := scopedCaller("rollup-busy", "RD")
	scopedBefore, err := stats.StatsAt(scoped, q, now)
	if err != nil {
		t.Fatal(err)
	}
	var scopedReads atomic.Int64

	// The district's viewer counts its reports by status from the sums,
	// of all time and of February in Shanghai (partial UTC days at its
	// edges, from the facts).
	reports := postgres.NewReportStore(db, nil, time.UTC)
	shanghai := time.FixedZone("CST", 8*3600)
	feb := [2]time.Time{time.Date(2025, 2, 1, 0, 0, 0, 0, shanghai), time.Date(2025, 3, 1, 0, 0, 0, 0, shanghai)}
	countFilters := []gridmap.ReportFilter{{}, {Since: &feb[0], Until: &feb[1]}}
	var countsBefore []*gridmap.ReportCounts
	for _, f := range countFilters {
		c, _, err := reports.ReportCountsFrom(scoped, f, false)
		if err != nil {
			t.Fatal(err)
		}
		countsBefore = append(countsBefore, c)
	}
	var wg sync.WaitGroup
	var done atomic.Bool
	var closing atomic.Int64 // closes issued, counted before each is sent
	errs := make(chan error, 32)
	const writers = 6
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(open); i += writers {
				closing.Add(1)
				if _, err := db.Pool.Exec(ctx, `WITH r AS (UPDATE reports SET status = 'closed' WHERE id = $1 RETURNING id)
					INSERT INTO report_events (report_id, action, from_status, to_status, at) SELECT id, 'close', 'verified', 'closed', '2025-04-01' FROM r`,
					open[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	readers.Add(5)
	var countReads atomic.Int64
	go func() {
		defer readers.Done()
		closed := make([]int64, len(countFilters))
		for !done.Load() {
			for i, f := range countFilters {
				c, sums, err := reports.ReportCountsFrom(scoped, f, true)
				if err != nil {
					errs <- err
					return
				}
				positive := true
				for _, n := range c.Counts {
					positive = positive && n > 0
				}
				issued := closing.Load() // read after the counts: no close they saw is missing from it
				// Of all time, no more closed than before and since;
				// February's are a part of those.
				if !sums || !positive || c.Total != countsBefore[i].Total || c.Counts[gridmap.StatusClosed] < closed[i] ||
					c.Counts[gridmap.StatusClosed] > countsBefore[i].Counts[gridmap.StatusClosed]+issued {
					errs <- fmt.Errorf("the district's viewer counted %+v (from the sums: %v) since %v; before %+v", c, sums, f.Since, countsBefore[i])
					return
				}
				closed[i] = c.Counts[gridmap.StatusClosed]
				countReads.Add(1)
			}
		}
	}()
	go func() {
		defer readers.Done()
		closed := scopedBefore.Total.Closed
		for !done.Load() {
			st, sums, err := stats.StatsAtFromSums(scoped, q, now)
			if err != nil {
				errs <- err
				return
			}
			if !sums {
				errs <- fmt.Errorf("the district's viewer read the facts, not the sums")
				return
			}
			var rows int64
			for _, r := range st.Rows {
				rows += r.Received
			}
			if st.Total.Received != scopedBefore.Total.Received || st.Total.Closed < closed || rows != scopedBefore.Total.Received-int64(n/17+1) {
				errs <- fmt.Errorf("the district's viewer read %d reports (%d in its streets), %d closed; before %d, %d closed",
					st.Total.Received, rows, st.Total.Closed, scopedBefore.Total.Received, closed)
				return
			}
			closed = st.Total.Closed
			scopedReads.Add(1)
		}
	}()
	go func() {
		defer readers.Done()
		for i := 0; !done.Load(); i++ {
			// Whole, and in batches of a few deltas.
			fold := stats.FoldStats
			if i%2 == 1 {
				fold = func(ctx context.Context) (int64, error) { return stats.FoldStatsIn(ctx, 5) }
			}
			if _, err := fold(ctx); err != nil {
				errs <- err
				return
			}
		}
	}()
	for range 2 {
		go func() {
			defer readers.Done()
			closed := before.Total.Closed
			for !done.Load() {
				st, err := stats.StatsAt(ctx, q, now)
				if err != nil {
					errs <- err
					return
				}
				if st.Total.Received != before.Total.Received || st.Total.Closed < closed {
					errs <- fmt.Errorf("read %d reports, %d closed; before %d, %d closed", st.Total.Received, st.Total.Closed,
						before.Total.Received, closed)
					return
				}
				closed = st.Total.Closed
			}
		}()
	}
	wg.Wait()
	done.Store(true)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	after, err := stats.StatsAt(ctx, q, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := before.Total.Closed + int64(len(open)); after.Total.Closed != want || after.Total.Received != n {
		t.Errorf("%d of %d closed, want %d of %d", after.Total.Closed, after.Total.Received, want, n)
	}
	checkSumsAgree(t, stats, "rollup-busy", now)
	if scopedReads.Load() == 0 || countReads.Load() == 0 {
		t.Errorf("the district's viewer read %d figures and %d counts while reports closed", scopedReads.Load(), countReads.Load())
	}
	checkScopedSumsAgree(t, stats, "rollup-busy", []string{"RD", "RS1"}, now)
	for _, f := range countFilters {
		got, _, err := reports.ReportCountsFrom(scoped, f, true)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := reports.ReportCountsFrom(scoped, f, false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("since %v: the district's counts from the sums %+v, from the reports %+v", f.Since, got, want)
		}
	}
}

// rollupGrids writes the grids of rollupWorld's layer: district RD, its
// streets RS0-RS2, communities RC0-RC8 (RCk in street RS(k%3)) and grids
// RG0-RG26 (RGk in community RC(k%9)), as the reports' chains name them.
func rollupGrids(t *testing.T, db *postgres.DB, layer string) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO grid_versions (layer_id, code, version, level, parent_code, geom)
		SELECT $1, code, 1, level, parent, ST_Multi(ST_MakeEnvelope(60.5 + k * 0.001, -40, 60.501 + k * 0.001, -39.999, 4326))
		FROM (SELECT 'RD' AS code, 'district' AS level, NULL AS parent, 0 AS k
		      UNION ALL SELECT 'RS' || k, 'street', 'RD', k FROM generate_series(0, 2) k
		      UNION ALL SELECT 'RC' || k, 'community', 'RS' || (k % 3), k FROM generate_series(0, 8) k
		      UNION ALL SELECT 'RG' || k, 'grid', 'RC' || (k % 9), k FROM generate_series(0, 26) k) g`, layer); err != nil {
		t.Fatal(err)
	}
}

// rollupEdgeCases gives some reports of rollupWorld's layer what a
// scoped caller's figures must handle, through events, as re-assigning a
// report does: every thirteenth lies in a gap between grids (its chain
// stops at its community), every eleventh is also seen by the next street,
// community and grid (a report near their boundary).
func rollupEdgeCases(t *testing.T, db *postgres.DB, layer string) {
	t.Helper()
	for _, q := range []string{
		`UPDATE reports r SET assignment = jsonb_set(r.assignment, '{primary,chain}', (r.assignment->'primary'->'chain') - 3), scope_codes = r.scope_codes[1:3]
		FROM (SELECT id, substr(external_id, length($1) + 2)::int AS i FROM reports WHERE layer_id = $1) n
		WHERE r.id = n.id AND n.i % 13 = 0 AND n.i % 17 <> 0 RETURNING r.id, r.status, r.reported_at`,
		`UPDATE reports r SET scope_codes = r.scope_codes || ARRAY['RS' || ((n.i + 1) % 3), 'RC' || ((n.i + 1) % 9), 'RG' || ((n.i + 1) % 27)]
		FROM (SELECT id, substr(external_id, length($1) + 2)::int AS i FROM reports WHERE layer_id = $1) n
		WHERE r.id = n.id AND n.i % 11 = 0 RETURNING r.id, r.status, r.reported_at`,
	} {
		if _, err := db.Pool.Exec(context.Background(), `WITH r AS (`+q+`)
			INSERT INTO report_events (report_id, action, from_status, to_status, at) SELECT id, 'reroute', status, status, reported_at + interval '3 hours' FROM r`,
			layer); err != nil {
			t.Fatal(err)
		}
	}
}

// rollupScopedWorld is rollupWorld with its grids and its edge cases, for
// scoped viewers; it returns the ids of the reports still open.
func rollupScopedWorld(t *testing.T, db *postgres.DB, layer string, n int) []int64 {
	t.Helper()
	open := rollupWorld(t, db, layer, n)
	rollupGrids(t, db, layer)
	rollupEdgeCases(t, db, layer)
	return open
}

// scopedCaller is a viewer scoped to grid code of layer.
func scopedCaller(layer, code string) context.Context {
	return gridmap.NewContextWithCaller(context.Background(), &gridmap.Caller{Kind: gridmap.CallerToken, Name: "viewer of " + code,
		Role: gridmap.RoleViewer, Scope: &gridmap.Scope{Layer: layer, Code: code}})
}

// checkScopedSumsAgree checks that every rollup query asked by a viewer
// scoped to each of codes gives the same figures as from the facts alone,
// and returns how many read the daily sums.
func checkScopedSumsAgree(t *testing.T, stats *postgres.StatsStore, layer string, codes []string, now time.Time) int {
	t.Helper()
	fromSums := 0
	for _, code := range codes {
		ctx := scopedCaller(layer, code)
		for _, q := range rollupQueries(layer) {
			got, sums, err := stats.StatsAtFromSums(ctx, q, now)
			if err != nil {
				t.Fatalf("%s %+v: %v", code, q, err)
			}
			want, err := stats.StatsFromFacts(ctx, q, now)
			if err != nil {
				t.Fatalf("%s %+v: %v", code, q, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s %s %v-%v (from the sums: %v): got\n%+v\n%+v\nfrom the facts\n%+v\n%+v", code, q.Group, q.Level, q.From, q.To,
					sums, got.Total, got.Rows, want.Total, want.Rows)
			}
			if sums {
				fromSums++
			}
		}
	}
	return fromSums
}

// checkScopedPaths checks which figures of February a viewer scoped to
// each case's code takes from the daily sums.
func checkScopedPaths(t *testing.T, stats *postgres.StatsStore, layer string, cases []scopedPath) {
	t.Helper()
	feb := [2]time.Time{time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
	for _, c := range cases {
		q := gridmap.StatsQuery{Layer: layer, Group: c.group, Level: c.level, From: &feb[0], To: &feb[1]}
		_, sums, err := stats.StatsAtFromSums(scopedCaller(layer, c.code), q, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		if sums != c.sums {
			t.Errorf("%s by %s %s: from the sums %v, want %v", c.code, c.group, c.level, sums, c.sums)
		}
	}
}

type scopedPath struct {
	code, group, level string
	sums               bool
}

// TestStatsScopedSumsAgreeWithFacts: a scoped viewer's figures from the
// daily sums (its grid's cells, its co-owned cells, its subtree's cells)
// are the facts' to the last count, for viewers of a district, a street, a
// community and a grid, every grouping (above, at and below their level),
// with reports seen only as co-owners, reports with no primary grid and
// reports in a gap between grids; and once grids have moved to another
// parent, the figures of the subtrees they left and joined come from the
// facts.
func TestStatsScopedSumsAgreeWithFacts(t *testing.T) {
	db := pgtest.Shared(t)
	ctx := context.Background()
	stats := postgres.NewStatsStore(db)
	const layer = "rollup-scoped"
	rollupScopedWorld(t, db, layer, 2000)
	codes := []string{"RD", "RS1", "RC4", "RG13"}
	now := time.Date(2025, 2, 14, 9, 30, 0, 0, time.UTC)

	checkScopedPaths(t, stats, layer, []scopedPath{
		{"RD", gridmap.StatsByStreet, "", true},
		{"RD", gridmap.StatsByGrid, "", true},
		{"RS1", gridmap.StatsByGrid, "community", true},
		{"RS1", gridmap.StatsByGrid, "street", true},
		{"RG13", gridmap.StatsByGrid, "", true},
		{"RC4", gridmap.StatsByStreet, "", false}, // above the viewer's level
		{"RD", gridmap.StatsByDepartment, "", false},
	})
	t.Run("deltas pending", func(t *testing.T) {
		if n := checkScopedSumsAgree(t, stats, layer, codes, now); n == 0 {
			t.Error("no query read the sums")
		}
	})
	if _, err := stats.FoldStats(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("folded", func(t *testing.T) {
		if n := checkScopedSumsAgree(t, stats, layer, codes, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)); n == 0 {
			t.Error("no query read the sums")
		}
	})

	// Community RC4 moves from street RS1 to RS2, grid RG1 from community
	// RC1 (street RS1) to RC0 (street RS0); their reports keep the chains
	// they were filed with. The subtrees they left and joined are open;
	// the district's is not.
	for _, m := range []struct{ code, parent string }{{"RC4", "RS2"}, {"RG1", "RC0"}} {
		if _, err := db.Pool.Exec(ctx, `WITH old AS (UPDATE grid_versions SET valid_to = now() WHERE layer_id = $1 AND code = $2 AND valid_to IS NULL
			RETURNING code, level, geom)
			INSERT INTO grid_versions (layer_id, code, version, level, parent_code, geom) SELECT $1, code, 2, level, $3, geom FROM old`,
			layer, m.code, m.parent); err != nil {
			t.Fatal(err)
		}
	}
	checkScopedPaths(t, stats, layer, []scopedPath{
		{"RD", gridmap.StatsByGrid, "community", true},
		{"RS0", gridmap.StatsByGrid, "", false},
		{"RS1", gridmap.StatsByGrid, "community", false},
		{"RS2", gridmap.StatsByGrid, "community", false},
		{"RC0", gridmap.StatsByGrid, "", false},
		{"RC4", gridmap.StatsByGrid, "", true}, // its own grids never moved
	})
	t.Run("moved", func(t *testing.T) {
		checkScopedSumsAgree(t, stats, layer, []string{"RD", "RS0", "RS1", "RS2", "RC0", "RC4"}, now)
	})

	// A district of its own, RE with street RES0 and reports in February,
	// becomes a street of RD (RES0 a community): its reports' chains never
	// named RD, so RD's figures now come from the facts.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO grid_versions (layer_id, code, version, level, parent_code, geom, valid_to)
		VALUES ($1, 'RE', 1, 'district', NULL, ST_Multi(ST_MakeEnvelope(60.6, -40, 60.7, -39.9, 4326)), now()),
		       ($1, 'RES0', 1, 'street', 'RE', ST_Multi(ST_MakeEnvelope(60.6, -40, 60.7, -39.9, 4326)), now()),
		       ($1, 'RE', 2, 'street', 'RD', ST_Multi(ST_MakeEnvelope(60.6, -40, 60.7, -39.9, 4326)), NULL),
		       ($1, 'RES0', 2, 'community', 'RE', ST_Multi(ST_MakeEnvelope(60.6, -40, 60.7, -39.9, 4326)), NULL)`, layer); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `WITH r AS (
		  INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, layer_id, primary_code, tier, due_at, assignment, scope_codes)
		  SELECT 're-' || i, '\x00', 'rollup-a', ST_SetSRID(ST_MakePoint(60.65, -39.95), 4326), 'wgs84', timestamptz '2025-02-03 10:00Z' + i * interval '7 hours',
		    'reported', $1::text, 'RES0', 'grid', timestamptz '2025-02-20 00:00Z',
		    jsonb_build_object('layer', $1::text, 'tier', 'grid', 'due_at', '2025-02-20T00:00:00Z', 'departments', '[]'::jsonb,
		      'primary', jsonb_build_object('code', 'RES0', 'level', 'street', 'chain', jsonb_build_array(
		        jsonb_build_object('code', 'RE', 'level', 'district'), jsonb_build_object('code', 'RES0', 'level', 'street')))),
		    ARRAY['RE', 'RES0']
		  FROM generate_series(0, 49) i RETURNING id, reported_at)
		INSERT INTO report_events (report_id, action, from_status, to_status, at) SELECT id, 'report', NULL, 'reported', reported_at FROM r`,
		layer); err != nil {
		t.Fatal(err)
	}
	checkScopedPaths(t, stats, layer, []scopedPath{{"RD", gridmap.StatsByStreet, "", false}, {"RD", gridmap.StatsByGrid, "community", false}})
	t.Run("district demoted", func(t *testing.T) {
		checkScopedSumsAgree(t, stats, layer, []string{"RD", "RE"}, now)
	})
}

// TestStatsScopedSumsAfterUpgrade: a database with co-owned reports from
// before migration 00027 gets their co-owned cells on upgrade (and again
// after a downgrade and upgrade), so a scoped viewer's figures from the
// sums are the facts'.
func TestStatsScopedSumsAfterUpgrade(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.ConnString(t)
	db, err := postgres.Open(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateTo(ctx, 26); err != nil {
		t.Fatal(err)
	}
	const layer = "rollup-upgraded"
	rollupScopedWorld(t, db, layer, 600)
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("upgrading: %v", err)
	}
	var coOwned int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM report_rollup WHERE level = '@co-owned'`).Scan(&coOwned); err != nil {
		t.Fatal(err)
	}
	if coOwned == 0 {
		t.Fatal("no co-owned cells written on upgrade")
	}
	stats := postgres.NewStatsStore(db)
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	if n := checkScopedSumsAgree(t, stats, layer, []string{"RD", "RS1", "RC4"}, now); n == 0 {
		t.Error("no query read the sums")
	}

	sqlDB, err := sql.Open("pgx", conn)
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.DownTo(ctx, 26); err != nil {
		t.Fatalf("downgrading: %v", err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM report_rollup WHERE level = '@co-owned'`).Scan(&coOwned); err != nil {
		t.Fatal(err)
	}
	if coOwned != 0 {
		t.Fatalf("%d co-owned cells left after a downgrade", coOwned)
	}
	db.Pool.Reset() // the connections' plans name the dropped function
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("upgrading again: %v", err)
	}
	db.Pool.Reset()
	checkScopedSumsAgree(t, stats, layer, []string{"RD", "RS1", "RC4"}, now)
}

// TestStatsScopedSumsAfterLevelRenamed: the layer's communities become
// neighbourhoods (new versions of every community, the layer's levels
// renamed) while the reports keep chains naming communities. A viewer of a
// street or the district still reads the sums; a viewer of a community,
// whose own cells lie at a level the layer no longer has, reads the facts;
// the figures agree either way.
func TestStatsScopedSumsAfterLevelRenamed(t *testing.T) {
	db := pgtest.Shared(t)
	ctx := context.Background()
	stats := postgres.NewStatsStore(db)
	const layer = "rollup-renamed"
	rollupScopedWorld(t, db, layer, 900)
	for _, q := range []string{
		`WITH old AS (UPDATE grid_versions SET valid_to = now() WHERE layer_id = $1 AND level = 'community' AND valid_to IS NULL
		   RETURNING code, parent_code, geom)
		 INSERT INTO grid_versions (layer_id, code, version, level, parent_code, geom) SELECT $1, code, 2, 'neighbourhood', parent_code, geom FROM old`,
		`UPDATE layers SET levels = '{district, street, neighbourhood, grid}' WHERE id = $1`,
	} {
		if _, err := db.Pool.Exec(ctx, q, layer); err != nil {
			t.Fatal(err)
		}
	}
	feb := [2]time.Time{time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		code, level string
		sums        bool
	}{
		{"RD", "street", true}, {"RD", "neighbourhood", true}, {"RS1", "neighbourhood", true}, {"RS1", "grid", true},
		{"RC4", "grid", false}, {"RC4", "neighbourhood", false},
	} {
		for _, w := range [][2]*time.Time{{&feb[0], &feb[1]}, {nil, nil}} {
			q := gridmap.StatsQuery{Layer: layer, Group: gridmap.StatsByGrid, Level: c.level, From: w[0], To: w[1]}
			ctx := scopedCaller(layer, c.code)
			got, sums, err := stats.StatsAtFromSums(ctx, q, now)
			if err != nil {
				t.Fatal(err)
			}
			want, err := stats.StatsFromFacts(ctx, q, now)
			if err != nil {
				t.Fatal(err)
			}
			if sums != c.sums {
				t.Errorf("%s by %s: from the sums %v, want %v", c.code, c.level, sums, c.sums)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s by %s %v-%v: from the sums\n%+v\n%+v\nfrom the facts\n%+v\n%+v", c.code, c.level, w[0], w[1],
					got.Total, got.Rows, want.Total, want.Rows)
			}
			if got.Total.Received == 0 {
				t.Errorf("%s by %s: no reports", c.code, c.level)
			}
		}
	}
}
