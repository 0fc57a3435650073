package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// monthName is the partition of reports holding the reports received in
// t's UTC month.
func monthName(t time.Time) string { return "reports_" + t.UTC().Format("200601") }

// TestReportMonths: on a database whose current and next months have no
// partition (the job has not run since the month began), many clients
// file reports at once through a pool of four connections. Every report is
// stored once, in the month made by the first intake to need it, with an
// id of that month; the job then makes the months ahead, once. A report's
// external_id stays unique whoever writes it, is freed when the report is
// deleted, and neither it nor the id can be changed.
func TestReportMonths(t *testing.T) {
	db := pgtest.NewDBWith(t, postgres.Options{MaxConns: 4})
	ctx := context.Background()
	var now time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	months := []time.Time{now, now.AddDate(0, 1, -now.Day()+1), now.AddDate(0, 2, -now.Day()+1)}
	for _, m := range months {
		if _, err := db.Pool.Exec(ctx, fmt.Sprintf(`ALTER TABLE reports DETACH PARTITION %s; DROP TABLE %[1]s`, monthName(m))); err != nil {
			t.Fatalf("removing %s: %v", monthName(m), err)
		}
	}

	layers, grids := postgres.NewLayerStore(db), postgres.NewGridStore(db)
	if _, err := layers.PutLayer(ctx, &gridmap.Layer{ID: "months", Levels: []string{"district", "grid"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := importString(stores{layers, grids}, "months", collection(
		feature("D", "district", "", rect(121, 31, 121.02, 31.02)),
		feature("G1", "grid", "D", rect(121, 31, 121.01, 31.02)),
		feature("G2", "grid", "D", rect(121.01, 31, 121.02, 31.02))), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	cats := postgres.NewCategoryStore(db)
	if _, err := cats.PutDepartment(ctx, &gridmap.Department{Code: "cg", Name: "城管"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cats.PutCategory(ctx, &gridmap.Category{Code: "01", Name: "市容环境", Departments: []string{"cg"},
		Limit: gridmap.Limit{Value: 4, Clock: gridmap.ClockWorkingHours}}); err != nil {
		t.Fatal(err)
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	tz, _ := time.LoadLocation("Asia/Shanghai")
	reports := postgres.NewReportStore(db, loc, tz)

	const clients, each = 12, 5
	ids := make([][]int64, clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := pointReport(fmt.Sprintf("m-%d-%d", c, i), 121.001+float64(c)*0.001, 31.01)
				created, err := reports.CreateReport(ctx, r)
				if err != nil || !created {
					errs <- fmt.Errorf("client %d report %d: created %v, %v", c, i, created, err)
					continue
				}
				// A retry stores nothing and answers the same report.
				again := pointReport(r.ExternalID, 121.001+float64(c)*0.001, 31.01)
				if created, err := reports.CreateReport(ctx, again); err != nil || created || again.ID != r.ID {
					errs <- fmt.Errorf("retry of %s: created %v, id %d (stored %d), %v", r.ExternalID, created, again.ID, r.ID, err)
				}
				ids[c] = append(ids[c], r.ID)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	floor := int64(now.UTC().Year()*100+int(now.UTC().Month())) * 1_000_000_000
	seen := map[int64]bool{}
	for _, list := range ids {
		for _, id := range list {
			if seen[id] || id <= floor || id >= floor+1_000_000_000 {
				t.Errorf("id %d: repeated, or not of %s", id, now.UTC().Format("2006-01"))
			}
			seen[id] = true
		}
	}
	var stored, keys int
	if err := db.Pool.QueryRow(ctx, fmt.Sprintf(`SELECT (SELECT count(*) FROM %s), (SELECT count(*) FROM report_keys)`, monthName(now))).Scan(&stored, &keys); err != nil {
		t.Fatal(err)
	}
	if stored != clients*each || keys != clients*each || len(seen) != clients*each {
		t.Errorf("%d reports in %s, %d keys, %d ids; want %d", stored, monthName(now), keys, len(seen), clients*each)
	}

	// Analyzed as a whole (the daily job), reports count what the months
	// hold; the facts trigger keeps planning each event for its month.
	if err := postgres.AnalyzeReports(ctx, reports); err != nil {
		t.Fatal(err)
	}
	var counted float64
	var config []string
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT reltuples FROM pg_class WHERE oid = 'reports'::regclass),
		(SELECT proconfig FROM pg_proc WHERE proname = 'report_facts_apply')`).Scan(&counted, &config); err != nil ||
		counted < clients*each || !slices.Contains(config, "plan_cache_mode=force_custom_plan") {
		t.Errorf("reports analyzed as %v rows, the facts trigger set with %v (%v)", counted, config, err)
	}

	// The job makes the two months ahead, then nothing.
	if made, err := reports.MakeMonths(ctx, months...); err != nil || made != 2 {
		t.Errorf("making the months ahead: %d made, %v; want 2", made, err)
	}
	if made, err := reports.MakeMonths(ctx, months...); err != nil || made != 0 {
		t.Errorf("making them again: %d made, %v; want none", made, err)
	}
	var next string
	if err := db.Pool.QueryRow(ctx, `SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = $1`, monthName(months[1])).Scan(&next); err != nil {
		t.Fatal(err)
	}
	m := months[1].UTC()
	following := m.AddDate(0, 1, 0)
	if want := fmt.Sprintf("FOR VALUES FROM ('%d') TO ('%d')", (m.Year()*100+int(m.Month()))*1_000_000_000,
		(following.Year()*100+int(following.Month()))*1_000_000_000); next != want {
		t.Errorf("%s holds %s, want %s", monthName(m), next, want)
	}

	// A month three months back holds a report; a report list's counts
	// from yesterday leave that month out of their plan, under custom and
	// generic plans, and from four months back read it.
	old := time.Date(now.UTC().Year(), now.UTC().Month()-3, 1, 0, 0, 0, 0, time.UTC)
	if made, err := reports.MakeMonths(ctx, old); err != nil || made != 1 {
		t.Fatalf("making %s: %d made, %v", monthName(old), made, err)
	}
	const bareReport = `INSERT INTO reports (id, external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment)
		VALUES (coalesce($1, report_month_floor(now()) + nextval('report_serial') %% 1000000000), $2, '\x00', '01',
		  ST_SetSRID(ST_MakePoint(121.001, 31.01), 4326), 'wgs84', %s, 'reported', 'grid', now(), '{}')`
	if _, err := db.Pool.Exec(ctx, fmt.Sprintf(bareReport, "$3"), int64(old.Year()*100+int(old.Month()))*1_000_000_000+1, "m-old",
		old.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		for _, from := range []struct {
			at    string
			reads bool
		}{{"now() - interval '1 day'", false}, {"now() - interval '4 months'", true}} {
			args := "NULL, false, '', " + from.at + ", NULL, NULL, NULL, NULL, NULL, NULL, '', '', NULL, NULL, false, NULL"
			plan := rawPlanOf(t, conn, postgres.ReportListSQL["counts"], args, mode)
			if strings.Contains(plan, monthName(old)) != from.reads || !strings.Contains(plan, monthName(now)) {
				t.Errorf("%s, a list from %s reads %s: %v, want %v; reads this month: %v\n%s", mode, from.at, monthName(old),
					!from.reads, from.reads, strings.Contains(plan, monthName(now)), plan)
			}
		}
	}
	// A report is read and moved by id in its month, old or new; an id of
	// a month without a partition is no report.
	oldID := int64(old.Year()*100+int(old.Month()))*1_000_000_000 + 1
	for _, id := range []int64{oldID, ids[1][0]} {
		if r, err := reports.Report(ctx, id); err != nil || r.ID != id {
			t.Errorf("report %d: %v", id, err)
		}
		if _, err := reports.AddEvent(ctx, id, &gridmap.ReportEvent{Action: "register", Actor: "op"}); err != nil {
			t.Errorf("registering report %d: %v", id, err)
		}
	}
	for _, id := range []int64{999912000000001, 7} {
		if _, err := reports.Report(ctx, id); gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
			t.Errorf("report %d: %v, want ENOTFOUND", id, err)
		}
		if _, err := reports.AddEvent(ctx, id, &gridmap.ReportEvent{Action: "register", Actor: "op"}); gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
			t.Errorf("registering report %d: %v, want ENOTFOUND", id, err)
		}
	}

	// Probable duplicates are listed beside reports: linked, moved to
	// another original, unlinked by the original's deletion, deleted.
	original, second := ids[2][0], ids[3][0]
	for _, step := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE reports SET duplicate_of = $1 WHERE id = ANY($2)`, []any{original, []int64{ids[2][1], ids[2][2], ids[2][3]}}},
		{`UPDATE reports SET duplicate_of = $1 WHERE id = ANY($2)`, []any{second, []int64{ids[2][3], ids[3][1]}}},
		{`DELETE FROM reports WHERE id = $1`, []any{ids[2][2]}},
	} {
		if _, err := db.Pool.Exec(ctx, step.sql, step.args...); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := reports.Report(ctx, original); err != nil || fmt.Sprint(r.Duplicates) != fmt.Sprint([]int64{ids[2][1]}) {
		t.Errorf("duplicates of %d: %v, %v; want [%d]", original, r.Duplicates, err, ids[2][1])
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM reports WHERE id = $1`, second); err != nil {
		t.Fatal(err)
	}
	var astray int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM (
		  (SELECT duplicate_of, id FROM reports WHERE duplicate_of IS NOT NULL EXCEPT SELECT of, id FROM report_duplicates)
		  UNION ALL (SELECT of, id FROM report_duplicates EXCEPT SELECT duplicate_of, id FROM reports WHERE duplicate_of IS NOT NULL)) x`).Scan(&astray); err != nil || astray != 0 {
		t.Errorf("%d links differ between reports and report_duplicates, %v", astray, err)
	}

	// The partition Go names for an id is the one PostgreSQL keeps it in,
	// before months and in them.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO reports (id, external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment)
		VALUES (42, 'm-before', '\x00', '01', ST_SetSRID(ST_MakePoint(121.001, 31.01), 4326), 'wgs84', now(), 'reported', 'grid', now(), '{}')`); err != nil {
		t.Fatal(err)
	}
	var monthsFirst int64
	if err := db.Pool.QueryRow(ctx, `SELECT report_months_first()`).Scan(&monthsFirst); err != nil || monthsFirst != postgres.ReportMonthsFirst {
		t.Errorf("report_months_first() is %d (%v), Go's %d", monthsFirst, err, int64(postgres.ReportMonthsFirst))
	}
	for _, id := range []int64{42, oldID, ids[4][0], ids[4][4]} {
		var table string
		if err := db.Pool.QueryRow(ctx, `SELECT tableoid::regclass::text FROM reports WHERE id = $1`, id).Scan(&table); err != nil || table != postgres.ReportTable(id) {
			t.Errorf("report %d is in %q (%v); Go names %q", id, table, err, postgres.ReportTable(id))
		}
	}

	// A month holds no report reported more than a day after it ended.
	_, err = db.Pool.Exec(ctx, fmt.Sprintf(bareReport, "now() + interval '40 days'"), nil, "m-ahead")
	if !isState(err, "23514") {
		t.Errorf("a report reported 40 days ahead: %v, want it refused", err)
	}

	// external_id is unique whoever writes the report.
	first := ids[0][0]
	var external string
	if err := db.Pool.QueryRow(ctx, `SELECT external_id FROM reports WHERE id = $1`, first).Scan(&external); err != nil {
		t.Fatal(err)
	}
	_, err = db.Pool.Exec(ctx, fmt.Sprintf(bareReport, "now()"), nil, external)
	if !isState(err, "23505") {
		t.Errorf("a second report as %s by SQL: %v, want a unique violation", external, err)
	}
	for _, change := range []string{`UPDATE reports SET external_id = 'renamed' WHERE id = $1`, `UPDATE reports SET id = id + 1000000 WHERE id = $1`} {
		if _, err := db.Pool.Exec(ctx, change, first); !isState(err, "23514") {
			t.Errorf("%s: %v, want it refused", change, err)
		}
	}
	// Deleting a report lets go of its external_id (and its events go with it).
	if _, err := db.Pool.Exec(ctx, `DELETE FROM reports WHERE id = $1`, first); err != nil {
		t.Fatal(err)
	}
	other := pointReport(external, 121.015, 31.01)
	if created, err := reports.CreateReport(ctx, other); err != nil || !created || other.ID == first {
		t.Errorf("a new report as %s after the first was deleted: created %v, id %d, %v", external, created, other.ID, err)
	}
	var events int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM report_events WHERE report_id = $1`, first).Scan(&events); err != nil || events != 0 {
		t.Errorf("%d events left of the deleted report, %v", events, err)
	}

	// An archived month (detached, then dropped) holds no report any more;
	// its reports' external_ids stay taken.
	if _, err := db.Pool.Exec(ctx, fmt.Sprintf(`ALTER TABLE reports DETACH PARTITION %s; DROP TABLE %[1]s`, monthName(old))); err != nil {
		t.Fatal(err)
	}
	if _, err := reports.Report(ctx, oldID); gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
		t.Errorf("a report of an archived month: %v, want ENOTFOUND", err)
	}
	if _, err := reports.CreateReport(ctx, pointReport("m-old", 121.001, 31.01)); gridmap.ErrorCode(err) != gridmap.ECONFLICT {
		t.Errorf("a report as the external_id of an archived one: %v, want ECONFLICT", err)
	}

	// Emptying reports empties what is kept beside them and refers to them.
	if _, err := db.Pool.Exec(ctx, `TRUNCATE reports`); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM report_keys) + (SELECT count(*) FROM report_duplicates) +
		(SELECT count(*) FROM report_events) + (SELECT count(*) FROM report_facts) + (SELECT count(*) FROM report_scope)`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d rows left beside reports after TRUNCATE, %v", left, err)
	}
}

// isState reports whether err is PostgreSQL's error of SQLSTATE code.
func isState(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// rawPlanOf is planOf with every partition under its own name: the plan
// of statement with args under plan_cache_mode mode, as PostgreSQL gives it.
func rawPlanOf(t *testing.T, conn *pgxpool.Conn, statement, args, mode string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "PREPARE raw_plan AS "+statement); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "DEALLOCATE raw_plan")
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "RESET plan_cache_mode")
	rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF) EXECUTE raw_plan("+args+")")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// lastChild is the last node under the top one of plan (EXPLAIN's text),
// with all below it: the inner side of a top-level join.
func lastChild(plan string) string {
	lines := strings.Split(plan, "\n")
	for i := len(lines) - 1; i > 0; i-- {
		if strings.HasPrefix(lines[i], "  ->  ") {
			return strings.Join(lines[i:], "\n")
		}
	}
	return ""
}

// TestWindowsReadTheirMonths: a district's viewer pages through a
// month that ended before four more were received. Its page reads its
// grid's reports of the window by time and each of them in its own month:
// the months received after the window are not pruned (a report received
// later may have been reported in the window), but none of them is read,
// under custom and generic plans, and the page is the plain query's. A
// live feed's catch-up reads each event's report in its month, and a
// probable duplicate's link the months from its window on.
func TestWindowsReadTheirMonths(t *testing.T) {
	db := pgtest.NewDB(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO layers (id, name, kind, levels) VALUES ('mon', 'mon', 'comprehensive', '{district,grid}');
		INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('mon', 'mon', 1, 'calendar_days');
		SELECT report_month_make(m) FROM generate_series(timestamptz '2025-01-01 00:00Z', '2025-05-01 00:00Z', interval '1 month') m;
		INSERT INTO reports (id, external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment,
		                     layer_id, primary_code, scope_codes)
		SELECT report_month_floor(at) + i, 'mon-' || i, '\x00', 'mon', ST_SetSRID(ST_MakePoint(121, 31), 4326), 'wgs84', at,
		       (ARRAY['reported','registered','closed'])[1 + i % 3], 'grid', at + interval '3 days', '{}', 'mon',
		       'G' || i % 40, ARRAY['D' || i % 2, 'G' || i % 40]
		FROM (SELECT i, timestamptz '2025-01-01 00:00Z' + interval '1 minute' * (i * 4) AS at FROM generate_series(1, 40000) i) g;
		ANALYZE reports; ANALYZE report_scope`); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// January (received in January), then every month after it: those
	// of the reports and the three made ahead of today.
	const window = "timestamptz '2025-01-03 00:00Z', timestamptz '2025-01-20 00:00Z'"
	rows, err := db.Pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'reports'::regclass AND c.relname > 'reports_202501' AND c.relname <> 'reports_before' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	later, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	// February to May, then the months made ahead of today.
	this := monthName(time.Now())
	if len(later) < 7 || !slices.Equal(later[:4], []string{"reports_202502", "reports_202503", "reports_202504", "reports_202505"}) ||
		later[4] < this {
		t.Fatalf("the months after January: %v, want February to May and %s on", later, this)
	}
	// readsLater reports the lines of plan that read a month of later.
	readsLater := func(plan string) (lines []string) {
		for _, line := range strings.Split(plan, "\n") {
			for _, month := range later {
				// (An UPDATE lists every month it may write first.)
				if strings.Contains(line, " on "+month+" ") && !strings.Contains(line, "never executed") &&
					!strings.HasPrefix(strings.TrimSpace(line), "Update on") {
					lines = append(lines, line)
				}
			}
		}
		return lines
	}
	for _, page := range []string{"51", "1001"} {
		args := "NULL, false, '', " + window + ", NULL, NULL, NULL, 'mon', 'D1', '', '', NULL, NULL, false, NULL, 9223372036854775807, " + page
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			plan := rawPlanOf(t, conn, postgres.ReportListSQL["by arrival in scope"], args, mode)
			if lines := readsLater(plan); len(lines) > 0 {
				t.Errorf("%s: a page of %s of January reads later months: %q\n%s", mode, page, lines, plan)
			}
		}
	}

	// Unscoped, the window's reports are found by reported_at, which
	// probes each later month's index; the page's reports are then read
	// in January alone.
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		args := "NULL, false, '', " + window + ", NULL, NULL, NULL, NULL, NULL, '', '', NULL, NULL, false, NULL, 9223372036854775807, 1001"
		plan := rawPlanOf(t, conn, postgres.ReportListSQL["by arrival in window"], args, mode)
		read := lastChild(plan)
		if !strings.Contains(read, " on reports_202501 ") || !strings.Contains(read, "loops=1001") {
			t.Errorf("%s: the page's reports are not read one by one in January:\n%s", mode, plan)
		}
		if lines := readsLater(read); len(lines) > 0 {
			t.Errorf("%s: the page's reports are read in later months: %q\n%s", mode, lines, plan)
		}
	}

	scoped := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerAccount, ID: 1, Name: "d1", Role: gridmap.RoleViewer,
		Scope: &gridmap.Scope{Layer: "mon", Code: "D1"}})
	since, until := time.Date(2025, 1, 3, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 20, 0, 0, 0, 0, time.UTC)
	page, _, err := postgres.NewReportStore(db, nil, time.UTC).Reports(scoped, gridmap.ReportFilter{Since: &since, Until: &until, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	rows, err = db.Pool.Query(ctx, `SELECT id FROM reports WHERE layer_id = 'mon' AND scope_codes @> '{D1}'
		AND reported_at >= $1 AND reported_at < $2 ORDER BY id DESC LIMIT 50`, since, until)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	got := make([]int64, len(page))
	for i, r := range page {
		got[i] = r.ID
	}
	if len(want) != 50 || !slices.Equal(got, want) {
		t.Errorf("the page holds %v, want %v", got, want)
	}

	// A live feed's catch-up reads each event's report in its month: the
	// first 500 events of each numbering (feed numbers; ids, for events
	// from before numbering) are of January's reports. (Without their
	// indicator facts, which take most of the time.)
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE report_events DISABLE TRIGGER report_facts_apply;
		INSERT INTO report_events (report_id, action, to_status, actor, seq)
		SELECT id, 'register', 'registered', 'op', row_number() OVER (ORDER BY id) FROM reports;
		INSERT INTO report_events (report_id, action, to_status, actor, seq)
		SELECT id, 'note', 'registered', 'op', 0 FROM reports ORDER BY id;
		ALTER TABLE report_events ENABLE TRIGGER report_facts_apply;
		ANALYZE report_events`); err != nil {
		t.Fatal(err)
	}
	var firstOld int64
	if err := db.Pool.QueryRow(ctx, `SELECT min(id) FROM report_events WHERE seq = 0`).Scan(&firstOld); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ statement, args string }{
		{"report events", "0, 500, 500"},
		{"old report events", fmt.Sprintf("%d, %d, 500", firstOld-1, firstOld+499)},
	} {
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			plan := rawPlanOf(t, conn, postgres.FeedSQL[c.statement], c.args, mode)
			if !strings.Contains(plan, " on reports_202501 ") {
				t.Errorf("%s: the feed's first %s do not read January:\n%s", mode, c.statement, plan)
			}
			if lines := readsLater(plan); len(lines) > 0 {
				t.Errorf("%s: the feed's first %s read later months: %q\n%s", mode, c.statement, lines, plan)
			}
		}
	}

	// A report of March 1st is a probable duplicate of one of February
	// 26th: its link reads February and later, not January.
	if _, err := db.Pool.Exec(ctx, `UPDATE categories SET duplicate_within_m = 50, duplicate_within_hours = 72 WHERE code = 'mon'`); err != nil {
		t.Fatal(err)
	}
	const late = "mon-21255" // 2025-03-01 01:00Z
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		plan := rawPlanOf(t, conn, postgres.DuplicateSQL["link"], "'"+late+"', '{closed,rejected}'", mode)
		for _, line := range strings.Split(plan, "\n") {
			if strings.Contains(line, " on reports_202501 ") && !strings.Contains(line, "never executed") &&
				!strings.HasPrefix(strings.TrimSpace(line), "Update on") {
				t.Errorf("%s: the link of a report of March reads January:\n%s", mode, plan)
			}
		}
	}
	var linked, match int64
	if err := db.Pool.QueryRow(ctx, `SELECT n.duplicate_of, (SELECT m.id FROM reports m WHERE m.id <> n.id AND m.status NOT IN ('closed', 'rejected')
		  AND m.reported_at BETWEEN n.reported_at - interval '72 hours' AND n.reported_at + interval '72 hours' ORDER BY m.reported_at, m.id LIMIT 1)
		FROM reports n WHERE external_id = $1`, late).Scan(&linked, &match); err != nil {
		t.Fatal(err)
	}
	if linked != match || linked/1_000_000_000 != 202502 {
		t.Errorf("%s is linked to %d, want %d of February", late, linked, match)
	}
}
