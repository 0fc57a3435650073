package postgres_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// listWorld makes layer rl near 100 E 20 N, where no other test puts
// anything: district D1 split into streets S1 (grids G11, G12) and S2 (G21,
// G22), district D2 east of it (street S3, grid G31), every grid 0.01
// degrees wide; category rl (1 calendar day, urgent 1 hour). It files
// reports a to e, one at each tier, with sources, urgency, deadlines and
// histories that tell them apart, and returns the store and the reports by
// name.
func listWorld(t *testing.T) (*postgres.ReportStore, map[string]*gridmap.Report) {
	t.Helper()
	ctx := context.Background()
	s := newLayer(t, "rl")
	layer := collection(
		feature("D1", "district", "", rect(100, 20, 100.04, 20.02)),
		feature("D2", "district", "", rect(100.04, 20, 100.06, 20.02)),
		feature("S1", "street", "D1", rect(100, 20, 100.02, 20.02)),
		feature("S2", "street", "D1", rect(100.02, 20, 100.04, 20.02)),
		feature("S3", "street", "D2", rect(100.04, 20, 100.06, 20.02)),
		feature("G11", "grid", "S1", rect(100, 20, 100.01, 20.02)),
		feature("G12", "grid", "S1", rect(100.01, 20, 100.02, 20.02)),
		feature("G21", "grid", "S2", rect(100.02, 20, 100.03, 20.02)),
		feature("G22", "grid", "S2", rect(100.03, 20, 100.04, 20.02)),
		feature("G31", "grid", "S3", rect(100.04, 20, 100.06, 20.02)))
	if _, err := importString(s, "rl", layer, gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	db := pgtest.Shared(t)
	cats := postgres.NewCategoryStore(db)
	if _, err := cats.PutCategory(ctx, &gridmap.Category{Code: "rl", Name: "list", Limit: gridmap.Limit{Value: 1, Clock: gridmap.ClockCalendarDays},
		UrgentLimit: &gridmap.Limit{Value: 1, Clock: gridmap.ClockUrgentHours}}); err != nil {
		t.Fatal(err)
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	store := postgres.NewReportStore(db, loc, time.UTC)
	kx, _ := geo.MetresPerDegree(20.01)
	long := time.Now().AddDate(0, 0, -30).Truncate(time.Second) // due long ago
	reports := map[string]*gridmap.Report{}
	for _, r := range []struct {
		name     string
		lon      float64
		source   string
		urgent   bool
		reported time.Time
		actors   []string // who registers, who dispatches
		reject   bool
		tier     string
	}{
		{"a", 100.005, "app", false, time.Time{}, []string{"user:amy"}, false, gridmap.TierGrid},
		{"b", 100.01 - 10/kx, "hotline", true, long, []string{"token:cad for operator 12"}, false, gridmap.TierStreet},                             // G11 and G12
		{"c", 100.02 + 10/kx, "app", false, long.Add(time.Hour), []string{"user:amy"}, true, gridmap.TierDistrict},                                 // G21 and G12
		{"d", 100.04 - 10/kx, "worker", false, time.Time{}, []string{"user:a_y", "user:amy2"}, false, gridmap.TierCity},                            // G22 and G31
		{"e", 100.025, "app", true, long.Add(2 * time.Hour), []string{"user:ben", "user:amy for zhang", "user:amyfor x"}, false, gridmap.TierGrid}, // G21
	} {
		rep := &gridmap.Report{ExternalID: fmt.Sprintf("rl-%s-%d", r.name, time.Now().UnixNano()), Category: "rl", Source: r.source,
			Urgent: r.urgent, ReportedAt: r.reported, Location: geojson.NewGeometry(orb.Point{r.lon, 20.01})}
		if _, err := store.CreateReport(ctx, rep); err != nil {
			t.Fatalf("report %s: %v", r.name, err)
		}
		actions := []string{"register", "suspend", "resume"}
		if r.reject {
			actions = []string{"reject"}
		}
		for i, actor := range r.actors {
			if _, err := store.AddEvent(ctx, rep.ID, &gridmap.ReportEvent{Action: actions[i], Actor: actor}); err != nil {
				t.Fatalf("report %s, %s by %s: %v", r.name, actions[i], actor, err)
			}
		}
		got, err := store.Report(ctx, rep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Assignment.Tier != r.tier {
			t.Fatalf("report %s is at the %s tier, want %s: %s", r.name, got.Assignment.Tier, r.tier, got.Assignment.Explanation)
		}
		reports[r.name] = got
	}
	return store, reports
}

func TestReportListFilters(t *testing.T) {
	store, reports := listWorld(t)
	ctx := context.Background()
	caller := func(kind, name string, scope *gridmap.Scope) context.Context {
		return gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: kind, Name: name, Role: gridmap.RoleDispatcher, Scope: scope})
	}
	amy, cad := caller(gridmap.CallerAccount, "amy", nil), caller(gridmap.CallerToken, "cad", nil)
	street := caller(gridmap.CallerAccount, "li", &gridmap.Scope{Layer: "rl", Code: "S1"})
	yes, no := true, false
	// names lists the reports of a page by name, in the page's order.
	names := func(list []*gridmap.Report) string {
		var out []string
		for _, r := range list {
			for name, w := range reports {
				if w.ID == r.ID {
					out = append(out, name)
				}
			}
		}
		return strings.Join(out, ",")
	}
	var dueOrder []string // a to e, the earliest due first
	for _, name := range slices.Sorted(maps.Keys(reports)) {
		dueOrder = append(dueOrder, name)
	}
	slices.SortStableFunc(dueOrder, func(x, y string) int {
		if c := reports[x].Assignment.DueAt.Compare(reports[y].Assignment.DueAt); c != 0 {
			return c
		}
		return int(reports[x].ID - reports[y].ID)
	})
	c, e := reports["c"].ReportedAt, reports["e"].ReportedAt
	tests := []struct {
		name   string
		ctx    context.Context
		filter gridmap.ReportFilter
		want   string // names, in the list's order
	}{
		{"everything, newest first", ctx, gridmap.ReportFilter{}, "e,d,c,b,a"},
		{"everything, the earliest due first", ctx, gridmap.ReportFilter{Sort: gridmap.SortDeadline}, strings.Join(dueOrder, ",")},
		{"grid tier", ctx, gridmap.ReportFilter{Tier: gridmap.TierGrid}, "e,a"},
		{"street tier", ctx, gridmap.ReportFilter{Tier: gridmap.TierStreet}, "b"},
		{"district tier", ctx, gridmap.ReportFilter{Tier: gridmap.TierDistrict}, "c"},
		{"city tier", ctx, gridmap.ReportFilter{Tier: gridmap.TierCity}, "d"},
		{"source exactly", ctx, gridmap.ReportFilter{Source: "app"}, "e,c,a"},
		{"a source is no prefix", ctx, gridmap.ReportFilter{Source: "ap"}, ""},
		{"urgent", ctx, gridmap.ReportFilter{Urgent: &yes}, "e,b"},
		{"not urgent", ctx, gridmap.ReportFilter{Urgent: &no}, "d,c,a"},
		{"overdue: open and past due, the rejected one left out", ctx, gridmap.ReportFilter{Overdue: true}, "e,b"},
		{"until: reported before", ctx, gridmap.ReportFilter{Until: &c}, "b"},
		{"since and until", ctx, gridmap.ReportFilter{Since: &c, Until: &e}, "c"},
		{"mine: an account, alone or acting for someone", amy, gridmap.ReportFilter{Mine: true}, "e,c,a"},
		{"mine: a token acting for someone", cad, gridmap.ReportFilter{Mine: true}, "b"},
		{"mine: an underscore is no wildcard", caller(gridmap.CallerAccount, "a_y", nil), gridmap.ReportFilter{Mine: true}, "d"},
		{"mine: a percent sign is no wildcard", caller(gridmap.CallerAccount, "a%", nil), gridmap.ReportFilter{Mine: true}, ""},
		{"mine, in deadline order", amy, gridmap.ReportFilter{Mine: true, Sort: gridmap.SortDeadline}, strings.Join(slices.DeleteFunc(slices.Clone(dueOrder), func(n string) bool { return n == "b" || n == "d" }), ",")},
		{"mine and overdue", amy, gridmap.ReportFilter{Mine: true, Overdue: true}, "e"},
		{"a street sees its own", street, gridmap.ReportFilter{}, "c,b,a"},
		{"a street's overdue", street, gridmap.ReportFilter{Overdue: true}, "b"},
		{"a street's grid tier", street, gridmap.ReportFilter{Tier: gridmap.TierGrid}, "a"},
		{"a street, in deadline order", street, gridmap.ReportFilter{Sort: gridmap.SortDeadline, Tier: gridmap.TierDistrict}, "c"},
		{"status and tier", ctx, gridmap.ReportFilter{Status: "open", Tier: gridmap.TierDistrict}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.filter.Category = "rl" // this test's reports only
			list, next, err := store.Reports(tc.ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(list); got != tc.want || next != nil {
				t.Errorf("got %q (next %v), want %q", got, next, tc.want)
			}
			if tc.filter.Status != "" {
				return
			}
			counts, err := store.ReportCounts(tc.ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			want := &gridmap.ReportCounts{Counts: map[string]int64{}}
			now := time.Now()
			for _, r := range list {
				want.Counts[r.Status]++
				want.Total++
				if r.Status != gridmap.StatusRejected {
					want.Open++
					if r.Assignment.DueAt.Before(now) {
						want.Overdue++
					}
				}
			}
			if !maps.Equal(counts.Counts, want.Counts) || counts.Total != want.Total || counts.Open != want.Open || counts.Overdue != want.Overdue {
				t.Errorf("counts %+v, want %+v as listed", counts, want)
			}
		})
	}

	t.Run("mine needs a signed-in caller", func(t *testing.T) {
		for name, ctx := range map[string]context.Context{"the service itself": ctx, "anonymous": caller(gridmap.CallerAnonymous, "anonymous", nil)} {
			_, _, err := store.Reports(ctx, gridmap.ReportFilter{Mine: true})
			if gridmap.ErrorCode(err) != gridmap.EINVALID || !strings.Contains(gridmap.ErrorMessage(err), "signed-in") {
				t.Errorf("%s: list: %v, want EINVALID saying a signed-in caller is needed", name, err)
			}
			if _, err := store.ReportCounts(ctx, gridmap.ReportFilter{Mine: true}); gridmap.ErrorCode(err) != gridmap.EINVALID {
				t.Errorf("%s: counts: %v, want EINVALID", name, err)
			}
		}
	})

	t.Run("pages of two in both orders", func(t *testing.T) {
		for _, sort := range []string{gridmap.SortArrival, gridmap.SortDeadline} {
			f := gridmap.ReportFilter{Category: "rl", Sort: sort, Limit: 2}
			var pages []string
			for {
				list, next, err := store.Reports(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				pages = append(pages, names(list))
				if next == nil {
					break
				}
				f.Cursor = next
			}
			want := "e,d|c,b|a"
			if sort == gridmap.SortDeadline {
				want = strings.Join(dueOrder[:2], ",") + "|" + strings.Join(dueOrder[2:4], ",") + "|" + dueOrder[4]
			}
			if got := strings.Join(pages, "|"); got != want {
				t.Errorf("%s: pages %q, want %q", sort, got, want)
			}
		}
	})

	t.Run("a cursor of the other order is refused", func(t *testing.T) {
		_, next, err := store.Reports(ctx, gridmap.ReportFilter{Category: "rl", Sort: gridmap.SortDeadline, Limit: 1})
		if err != nil || next == nil {
			t.Fatal(next, err)
		}
		_, _, err = store.Reports(ctx, gridmap.ReportFilter{Category: "rl", Limit: 1, Cursor: next})
		if gridmap.ErrorCode(err) != gridmap.EINVALID || !strings.Contains(gridmap.ErrorMessage(err), `"next"`) {
			t.Errorf("deadline cursor in arrival order: %v", err)
		}
	})
}

// TestReportListQueriesUseIndexes checks the plans of the report list on
// 20,000 reports and 60,000 events of a database of its own: the deadline
// order walks reports_due or reads the box from reports_location, and mine
// reads the events by actor or by report, never every event. (Counts in a
// box read reports_location in custom plans only: a generic plan cannot
// know whether a box was given.)
func TestReportListQueriesUseIndexes(t *testing.T) {
	db := pgtest.NewDB(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO layers (id, name, kind, levels) VALUES ('plan', 'plan', 'comprehensive', '{district,street,grid}');
		INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('plan', 'plan', 1, 'calendar_days');
		INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment,
		                     layer_id, primary_code, scope_codes, source, urgent)
		SELECT 'plan-' || i, '\x00', 'plan', ST_SetSRID(ST_MakePoint(121 + random() * 0.5, 31 + random() * 0.4), 4326), 'wgs84',
		       now() - interval '30 days' * random(), (ARRAY['reported','registered','dispatched','closed','closed','closed','rejected'])[1 + i % 7],
		       (ARRAY['grid','street','district','city'])[1 + i % 4], now() + interval '20 days' * (random() - 0.5), '{}', 'plan',
		       'G' || i % 50, ARRAY['D' || i % 5, 'S' || i % 20, 'G' || i % 50], (ARRAY['app','hotline','worker'])[1 + i % 3], i % 10 = 0
		FROM generate_series(1, 20000) i;
		INSERT INTO report_events (report_id, action, to_status, actor)
		SELECT r.id, 'register', 'registered', (ARRAY['user:amy', 'token:cad for op ' || r.id % 30, 'user:ben', 'worker-' || r.id % 500, 'app'])[1 + (r.id * 7 + k) % 5]
		FROM reports r, generate_series(1, 3) k;
		ANALYZE reports; ANALYZE report_events`); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// The filter's parameters $1 to $16 (status open, optionally a box
	// and an actor), then the list's.
	filter := func(bbox, actor string) string {
		return "'{closed,rejected}', true, '', NULL, NULL, NULL, NULL, " + bbox + ", NULL, NULL, '', '', NULL, NULL, false, " + actor
	}
	const box, first = "'{121.1,31.1,121.15,31.15}'", ", NULL, 0, 201"
	tests := []planCase{
		{"deadline order in a box", "by deadline", filter(box, "NULL") + first, []string{"reports_(location|due)"}, []string{"reports"}},
		{"deadline order", "by deadline", filter("NULL", "NULL") + first, []string{"reports_due"}, []string{"reports"}},
		{"mine of a busy actor in deadline order", "mine by deadline", filter("NULL", "'token:cad'") + first,
			[]string{"report_events_(actor|report)"}, []string{"reports", "report_events"}},
		{"mine of a rare actor", "mine by arrival", filter("NULL", "'worker-7'") + ", 9223372036854775807, 201",
			[]string{"report_events_(actor|report)"}, []string{"reports", "report_events"}},
		{"mine counts", "mine counts", filter("NULL", "'worker-7'"), []string{"report_events_actor"}, []string{"reports", "report_events"}},
	}
	checkPlans(t, conn, postgres.ReportListSQL, tests)

	// A district's viewer over nine days that ended ten days ago: its
	// grid's reports by time, its counts from the daily sums and the
	// facts of the window's edges. (Planned for their values each time.)
	if _, err := postgres.NewStatsStore(db).FoldStats(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE report_scope; ANALYZE report_facts; ANALYZE report_rollup`); err != nil {
		t.Fatal(err)
	}
	const since, until = "now() - interval '19 days 3 hours'", "now() - interval '10 days 5 hours'"
	scoped := "NULL, false, '', " + since + ", " + until + ", NULL, NULL, NULL, 'plan', 'D1', '', '', NULL, NULL, false, NULL"
	// A grid's viewer opens its list: the newest of its grid's reports by
	// id, for a grid of a few reports and for one of none, which must not
	// walk every report.
	newest := func(code string) string {
		return "NULL, false, '', NULL, NULL, NULL, NULL, NULL, 'plan', '" + code + "', '', '', NULL, NULL, false, NULL, 9223372036854775807, 51"
	}
	checkCustomPlans(t, conn, postgres.ReportListSQL, []planCase{
		{"a grid newest", "by arrival in scope", newest("G7"), []string{"report_scope_report"}, []string{"reports", "report_scope"}},
		{"a new grid newest", "by arrival in scope", newest("G-new"), []string{"report_scope_report"}, []string{"reports", "report_scope"}},
		{"a district window", "by arrival in scope", scoped + ", 9223372036854775807, 51", []string{"report_scope_pkey"},
			[]string{"reports", "report_scope"}},
		{"a district window counted", "counts in scope window", scoped, []string{"report_scope_pkey"}, []string{"reports", "report_scope"}},
		{"a district window counted from the sums", "counts from sums", since + ", " + until +
			", date_trunc('day', now() - interval '18 days', 'UTC'), date_trunc('day', now() - interval '10 days', 'UTC'), 'plan', 'D1', '{district}', NULL" +
			", now(), date_trunc('day', now(), 'UTC'), '{closed,rejected,suspended}'",
			[]string{"report_rollup_code", "report_facts_reported"}, []string{"report_rollup", "report_facts"}},
	})
}

// TestReportListWindowPages pages through report lists in arrival order
// over windows of reported_at, short ones (read whole by reported_at) and
// long or open ones (ids walked down), with and without a district scope,
// against a plain query: the same reports in the same order, and counts
// that add up. Reports arrive out of reported_at order, as backfills do.
func TestReportListWindowPages(t *testing.T) {
	db := pgtest.NewDB(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO layers (id, name, kind, levels) VALUES ('win', 'win', 'comprehensive', '{district,street,grid}');
		INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('win', 'win', 1, 'calendar_days');
		INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment,
		                     layer_id, primary_code, scope_codes, source, urgent)
		SELECT 'win-' || i, '\x00', 'win', ST_SetSRID(ST_MakePoint(121, 31), 4326), 'wgs84',
		       timestamptz '2025-01-01 00:00Z' + interval '1 day' * ((i * 7919) % 150) + interval '1 minute' * (i % 1440),
		       (ARRAY['reported','registered','closed'])[1 + i % 3], 'grid', timestamptz '2025-03-01 00:00Z', '{}', 'win',
		       'G' || i % 20, ARRAY['D' || i % 2, 'S' || i % 6, 'G' || i % 20], 'app', false
		FROM generate_series(1, 3000) i;
		-- Re-assigned, moved in time, deleted: the scope's rows by time follow.
		UPDATE reports SET scope_codes = ARRAY['D0', 'S0', 'G0'] WHERE id % 23 = 1;
		UPDATE reports SET scope_codes = scope_codes || ARRAY['D1'] WHERE id % 29 = 2 AND NOT scope_codes @> ARRAY['D1'];
		UPDATE reports SET reported_at = reported_at + interval '20 days' WHERE id % 31 = 3;
		DELETE FROM reports WHERE id % 37 = 4;
		ANALYZE reports`); err != nil {
		t.Fatal(err)
	}
	checkReportScopeKept(t, db)
	store := postgres.NewReportStore(db, nil, time.UTC)
	day := func(d int) *time.Time { t := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d); return &t }
	scoped := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerAccount, ID: 1, Name: "d1", Role: gridmap.RoleViewer,
		Scope: &gridmap.Scope{Layer: "win", Code: "D1"}})
	gridScoped := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerAccount, ID: 2, Name: "g7", Role: gridmap.RoleViewer,
		Scope: &gridmap.Scope{Layer: "win", Code: "G7"}})
	for _, w := range []struct {
		name         string
		since, until *time.Time
	}{{"a month", day(31), day(59)}, {"a season", day(10), day(103)}, {"longer", day(10), day(120)}, {"open", day(100), nil}, {"all", nil, nil}} {
		for _, c := range []struct {
			name   string
			ctx    context.Context
			scope  *string
			status string // a filter on status ("" none)
			grid   string // a filter on the primary grid ("" none)
		}{{"unscoped", ctx, nil, "", ""}, {"district", scoped, ptr("D1"), "", ""}, {"grid", gridScoped, ptr("G7"), "", ""},
			{"district registered", scoped, ptr("D1"), "registered", ""}, {"district grid", scoped, ptr("D1"), "", "G3"}} {
			t.Run(w.name+" "+c.name, func(t *testing.T) {
				rows, err := db.Pool.Query(ctx, `SELECT id, status FROM reports WHERE layer_id = 'win' AND ($1::timestamptz IS NULL OR reported_at >= $1)
					AND ($2::timestamptz IS NULL OR reported_at < $2) AND ($3::text IS NULL OR scope_codes @> ARRAY[$3])
					AND ($4 = '' OR status = $4) AND ($5 = '' OR primary_code = $5) ORDER BY id DESC`, w.since, w.until, c.scope, c.status, c.grid)
				if err != nil {
					t.Fatal(err)
				}
				var want []int64
				byStatus := map[string]int64{}
				for rows.Next() {
					var id int64
					var status string
					if err := rows.Scan(&id, &status); err != nil {
						t.Fatal(err)
					}
					want = append(want, id)
					byStatus[status]++
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				var got []int64
				f := gridmap.ReportFilter{Since: w.since, Until: w.until, Limit: 37, Status: c.status, Grid: c.grid}
				for pages := 0; ; pages++ {
					page, next, err := store.Reports(c.ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range page {
						got = append(got, r.ID)
					}
					if next == nil {
						break
					}
					if pages > len(want) {
						t.Fatal("the pages do not end")
					}
					f.Cursor = next
				}
				if len(want) < 10 || !slices.Equal(got, want) {
					t.Fatalf("%d reports listed, want %d in id order (first listed %v, wanted %v)", len(got), len(want), got[:min(5, len(got))], want[:min(5, len(want))])
				}
				f.Status = ""
				counts, err := store.ReportCounts(c.ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if c.status == "" && !maps.Equal(counts.Counts, byStatus) {
					t.Fatalf("counts %v, the list %v", counts.Counts, byStatus)
				}
				if c.status != "" && counts.Counts[c.status] != int64(len(want)) {
					t.Fatalf("counts %v, the list %d %s", counts.Counts, len(want), c.status)
				}
			})
		}
	}
	// A grid drawn since, of no reports: an empty list, however it is
	// asked.
	newGrid := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerAccount, ID: 3, Name: "new", Role: gridmap.RoleViewer,
		Scope: &gridmap.Scope{Layer: "win", Code: "G-new"}})
	for _, f := range []gridmap.ReportFilter{{Limit: 10}, {Since: day(31), Until: day(59), Limit: 10}, {Status: "registered", Limit: 10},
		{Sort: gridmap.SortDeadline, Limit: 10}} {
		page, next, err := store.Reports(newGrid, f)
		if err != nil || len(page) != 0 || next != nil {
			t.Errorf("a new grid's list %+v: %d reports, next %v (%v)", f, len(page), next, err)
		}
	}
}

// checkReportScopeKept checks that report_scope holds a row for each code
// of each report's scope_codes, with its layer and time, and nothing else.
func checkReportScopeKept(t *testing.T, db *postgres.DB) {
	t.Helper()
	var missing, extra, rows int
	if err := db.Pool.QueryRow(context.Background(), `WITH want AS (
		  SELECT DISTINCT r.layer_id, c AS code, r.reported_at, r.id AS report_id FROM reports r, unnest(r.scope_codes) c WHERE r.layer_id IS NOT NULL)
		SELECT (SELECT count(*) FROM (SELECT * FROM want EXCEPT SELECT * FROM report_scope) m),
		  (SELECT count(*) FROM (SELECT * FROM report_scope EXCEPT SELECT * FROM want) e), (SELECT count(*) FROM report_scope)`).Scan(&missing, &extra, &rows); err != nil {
		t.Fatal(err)
	}
	if missing != 0 || extra != 0 || rows == 0 {
		t.Errorf("report_scope: %d rows, %d missing, %d not of any report", rows, missing, extra)
	}
}

// TestReportScopeKeptUnderConcurrentWrites: reports filed, re-assigned and
// deleted from many clients at once on a pool of three connections, and
// a few reports re-assigned by all of them in turn, keep their rows by
// time exactly.
func TestReportScopeKeptUnderConcurrentWrites(t *testing.T) {
	db := pgtest.NewDBWith(t, postgres.Options{MaxConns: 3})
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO layers (id, name, kind, levels) VALUES ('busy', 'busy', 'comprehensive', '{district,grid}');
		INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('busy', 'busy', 1, 'calendar_days')`); err != nil {
		t.Fatal(err)
	}
	// Reports every client re-assigns, so that their rows are moved by
	// writers waiting on one another.
	rows, err := db.Pool.Query(ctx, `INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at,
		  assignment, layer_id, primary_code, scope_codes, source, urgent)
		SELECT 'shared-' || i, '\x00', 'busy', ST_SetSRID(ST_MakePoint(121, 31), 4326), 'wgs84', now(), 'reported', 'grid', now(), '{}', 'busy', 'G1',
		  ARRAY['D0', 'G' || i], 'app', false FROM generate_series(1, 5) i RETURNING id`)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				var id int64
				err := db.Pool.QueryRow(ctx, `INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at,
					  assignment, layer_id, primary_code, scope_codes, source, urgent)
					VALUES ($1, '\x00', 'busy', ST_SetSRID(ST_MakePoint(121, 31), 4326), 'wgs84', now() - $2 * interval '1 hour', 'reported', 'grid',
					  now(), '{}', 'busy', 'G1', ARRAY['D' || $3::int, 'G' || $2::int], 'app', false) RETURNING id`,
					fmt.Sprintf("busy-%d-%d", w, i), i, w%2).Scan(&id)
				if err == nil && i%3 == 1 {
					// A re-assignment, and a move that leaves the codes as they were.
					_, err = db.Pool.Exec(ctx, `UPDATE reports SET scope_codes = ARRAY['D9', 'G' || $2::int] WHERE id = $1`, id, i+100)
					if err == nil {
						_, err = db.Pool.Exec(ctx, `UPDATE reports SET status = 'registered', scope_codes = scope_codes WHERE id = $1`, id)
					}
				}
				if err == nil && i%5 == 2 {
					_, err = db.Pool.Exec(ctx, `DELETE FROM reports WHERE id = $1`, id)
				}
				if err == nil {
					_, err = db.Pool.Exec(ctx, `UPDATE reports SET scope_codes = ARRAY['D' || $2::int, 'S' || $3::int] WHERE id = $1`,
						shared[(w+i)%len(shared)], w%2, i)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkReportScopeKept(t, db)
}
