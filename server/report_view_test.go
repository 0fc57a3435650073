package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestReportMovesAndTimeLeft: a report is read with the moves its reader
// may make on it (none without the role or the jurisdiction) and the
// working time to its deadline, counted on the calendar as it changes.
func TestReportMovesAndTimeLeft(t *testing.T) {
	ts := newTestServer(t, Config{TimeZone: dispatch.DefaultTimeZone})
	layer := "moves"
	body := `{"type":"FeatureCollection","features":[` + strings.Join([]string{
		feat("VD", "", square(124.3, 31.3, 0.02)),
		feat("VS1", "VD", square(124.3, 31.3, 0.01)),
		feat("VS2", "VD", square(124.31, 31.3, 0.01)),
	}, ",") + `]}`
	if r := do(t, "PUT", ts.url+"/v1/layers/"+layer, `{"name":"moves","kind":"comprehensive","levels":["district","street"]}`); r.status >= 300 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	eventually(t, "the layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?layer="+layer+"&lon=124.305&lat=31.305", "").body), `"VS1"`)
	})
	if r := do(t, "PUT", ts.url+"/v1/categories/moves-litter", `{"name":"Litter","departments":[],"limit":{"value":4,"clock":"working_hours"}}`); r.status/100 != 2 {
		t.Fatalf("category: %d %s", r.status, r.body)
	}
	// Monday 3 March 2025, 09:00 in Shanghai: 4 working hours are due at 15:00.
	r := do(t, "POST", ts.url+"/v1/reports", `{"external_id":"moves-1","category":"moves-litter",
		"reported_at":"2025-03-03T09:00:00+08:00","location":{"type":"Point","coordinates":[124.305,31.305]}}`)
	var created gridmap.Report
	if r.status != 201 || json.Unmarshal(r.body, &created) != nil {
		t.Fatalf("report: %d %s", r.status, r.body)
	}
	if want := time.Date(2025, 3, 3, 15, 0, 0, 0, time.FixedZone("CST", 8*3600)); !created.Assignment.DueAt.Equal(want) {
		t.Fatalf("due %s, want %s", created.Assignment.DueAt, want)
	}
	path := fmt.Sprintf("%s/v1/reports/%d", ts.url, created.ID)

	type view struct {
		Status string
		Moves  []string
		Left   *timeLeft
	}
	read := func(header ...string) view {
		t.Helper()
		var v view
		if r := do(t, "GET", path, "", header...); r.status != 200 || json.Unmarshal(r.body, &v) != nil {
			t.Fatalf("GET report: %d %s", r.status, r.body)
		}
		return v
	}
	dispatcher := bearer(ts.token(t, gridmap.RoleDispatcher, nil))
	inStreet := bearer(ts.token(t, gridmap.RoleDispatcher, &gridmap.Scope{Layer: layer, Code: "VS1"}))
	otherStreet := bearer(ts.token(t, gridmap.RoleDispatcher, &gridmap.Scope{Layer: layer, Code: "VS2"}))
	viewer := bearer(ts.token(t, gridmap.RoleViewer, nil))

	if v := read(dispatcher...); !slices.Equal(v.Moves, []string{"register", "reject"}) {
		t.Errorf("a dispatcher reading a reported report is offered %v, want [register reject]", v.Moves)
	}
	if v := read(inStreet...); !slices.Equal(v.Moves, []string{"register", "reject"}) {
		t.Errorf("the street's dispatcher is offered %v, want [register reject]", v.Moves)
	}
	if v := read(viewer...); v.Moves == nil || len(v.Moves) != 0 {
		t.Errorf("a viewer is offered %v, want []", v.Moves)
	}
	if r := do(t, "GET", path, "", otherStreet...); r.status != 404 && r.status != 403 {
		t.Errorf("the next street's dispatcher reads the report: %d %s", r.status, r.body)
	}
	// The moves offered are the ones the workflow takes.
	for _, move := range read(dispatcher...).Moves {
		if move == "register" {
			if r := do(t, "POST", path+"/events", `{"action":"register"}`, inStreet...); r.status != 200 {
				t.Fatalf("register: %d %s", r.status, r.body)
			}
		}
	}
	if v := read(dispatcher...); v.Status != "registered" || len(v.Moves) == 0 || v.Moves[0] != "dispatch" || slices.Contains(v.Moves, "register") {
		t.Errorf("registered: status %s, moves %v, want dispatch first", v.Status, v.Moves)
	}

	// Long overdue, by the working hours since Monday 15:00.
	expect := func(what string) {
		t.Helper()
		var cal struct{ Days []gridmap.CalendarDay }
		do(t, "GET", ts.url+"/v1/calendar", "").json(t, &cal)
		loc, _ := time.LoadLocation(dispatch.DefaultTimeZone)
		c := &dispatch.Calendar{Location: loc, Days: map[string]bool{}}
		for _, d := range cal.Days {
			c.Days[d.Date] = d.Working
		}
		want := dispatch.WorkingLeft(time.Now(), created.Assignment.DueAt, c)
		left := read(dispatcher...).Left
		if left == nil || !left.Overdue || left.Seconds >= 0 {
			t.Fatalf("%s: left %+v, want overdue", what, left)
		}
		if got := time.Duration(left.WorkingSeconds) * time.Second; (got - want).Abs() > 10*time.Second {
			t.Errorf("%s: %s of working time overdue, want %s", what, -got, -want)
		}
	}
	expect("before the holiday")
	before := read(dispatcher...).Left.WorkingSeconds
	if r := do(t, "PUT", ts.url+"/v1/calendar/2025-03-04", `{"working":false,"name":"moves test"}`); r.status != 200 {
		t.Fatalf("holiday: %d %s", r.status, r.body)
	}
	expect("after the holiday")
	if after := read(dispatcher...).Left.WorkingSeconds; after-before < 8*3600-10 {
		t.Errorf("a holiday made the report %d s less overdue, want 8 working hours", after-before)
	}
	if clock := read(dispatcher...).Left.Clock; clock != gridmap.ClockWorkingHours {
		t.Errorf("the deadline runs on %q, want the category's working_hours", clock)
	}

	// Suspended (挂账), its clock stops: no time left, not overdue, in the
	// list, the counts and the tiles alike.
	overdue := func() (listed int, counted int64, tiled float64) {
		t.Helper()
		var list struct{ Reports []gridmap.Report }
		do(t, "GET", ts.url+"/v1/reports?overdue=true&grid=VS1", "", dispatcher...).json(t, &list)
		var counts gridmap.ReportCounts
		do(t, "GET", ts.url+"/v1/reports/counts?bbox=124.3,31.3,124.32,31.32", "", dispatcher...).json(t, &counts)
		_, ls := getTile(t, ts.url+"/tiles/reports/"+tileAt(16, 124.305, 31.305)+".mvt")
		for _, p := range features(ls, "reports") {
			if p["overdue"] == true {
				tiled++
			}
		}
		return len(list.Reports), counts.Overdue, tiled
	}
	if l, c, m := overdue(); l != 1 || c != 1 || m != 1 {
		t.Errorf("overdue before the suspension: listed %d, counted %d, on the map %g; want 1, 1, 1", l, c, m)
	}
	if r := do(t, "POST", path+"/events", `{"action":"suspend"}`, dispatcher...); r.status != 200 {
		t.Fatalf("suspend: %d %s", r.status, r.body)
	}
	if v := read(dispatcher...); v.Left != nil || !slices.Equal(v.Moves, []string{"resume"}) {
		t.Errorf("suspended: left %+v, moves %v; want none and [resume]", v.Left, v.Moves)
	}
	eventually(t, "the suspended report is overdue nowhere", func() bool {
		l, c, m := overdue()
		return l == 0 && c == 0 && m == 0
	})
}

// TestClockCache: many readers at once share the clocks, a change made
// through this server is seen at once, and a failed read keeps serving
// what was read before.
func TestClockCache(t *testing.T) {
	db := pgtest.Shared(t)
	cats := postgres.NewCategoryStore(db)
	ctx := context.Background()
	if _, err := cats.PutCategory(ctx, &gridmap.Category{Code: "clock-cache", Name: "clocks",
		Limit: gridmap.Limit{Value: 3, Clock: gridmap.ClockCalendarDays}, UrgentLimit: &gridmap.Limit{Value: 2, Clock: gridmap.ClockUrgentHours}}); err != nil {
		t.Fatal(err)
	}
	cc := newClockCache("", cats)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				k, err := cc.get(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if got := k.clockOf(&gridmap.Report{Category: "clock-cache", Urgent: i%2 == 0}); got != map[bool]string{true: gridmap.ClockUrgentHours, false: gridmap.ClockCalendarDays}[i%2 == 0] {
					t.Errorf("clock %q for urgent=%v", got, i%2 == 0)
					return
				}
				if i == 0 {
					cc.forget()
				}
			}
		}()
	}
	wg.Wait()
	if k, _ := cc.get(ctx); k.cal.Location.String() != dispatch.DefaultTimeZone {
		t.Errorf("counted in %s, want %s", k.cal.Location, dispatch.DefaultTimeZone)
	}

	// The database is unreachable (the context is done) once the clocks are stale.
	done, cancel := context.WithCancel(ctx)
	cancel()
	cc.mu.Lock()
	cc.readAt = time.Now().Add(-2 * clocksFresh)
	cc.mu.Unlock()
	if k, err := cc.get(done); err != nil || k.clockOf(&gridmap.Report{Category: "clock-cache"}) != gridmap.ClockCalendarDays {
		t.Errorf("a failed read after a good one: %v, %v; want the clocks read before", k, err)
	}
	if _, err := newClockCache("", cats).get(done); err == nil {
		t.Error("a failed first read answered clocks")
	}
}

// TestReportViewKeepsTheReport: the report read with its moves and time
// left is the report as stored plus those two fields, nothing renamed.
func TestReportViewKeepsTheReport(t *testing.T) {
	due := time.Date(2030, 1, 7, 10, 0, 0, 0, time.UTC)
	r := &gridmap.Report{ID: 7, ExternalID: "x", Category: "c", Status: gridmap.StatusSuspended, Source: "s",
		Assignment: &gridmap.Assignment{Layer: "l", Tier: gridmap.TierGrid, DueAt: due}, Tasks: []gridmap.Task{}}
	plain, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	k := &clocks{cal: &dispatch.Calendar{Location: time.UTC}, limits: map[string][2]string{"c": {gridmap.ClockWorkingHours, ""}}}
	for _, status := range []string{gridmap.StatusSuspended, gridmap.StatusDispatched} {
		r.Status = status
		plain, _ = json.Marshal(r)
		v := reportView{Report: r, Moves: []string{"resume"}}
		if dispatch.ClockRuns(status) {
			v.Left = &timeLeft{Seconds: 1, WorkingSeconds: 1, Clock: k.clockOf(r)}
		}
		viewed, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var a, b map[string]any
		_ = json.Unmarshal(plain, &a)
		_ = json.Unmarshal(viewed, &b)
		if b["moves"] == nil || (b["left"] != nil) != dispatch.ClockRuns(status) {
			t.Errorf("%s: moves %v, left %v", status, b["moves"], b["left"])
		}
		delete(b, "moves")
		delete(b, "left")
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s: the view changes the report:\n%v\n%v", status, a, b)
		}
	}
}

// TestDeadlinePagesThroughEqualDeadlines: reports due at the same moment
// page in id order, each once.
func TestDeadlinePagesThroughEqualDeadlines(t *testing.T) {
	ts := newTestServer(t, Config{})
	layer := "same-due"
	if r := do(t, "PUT", ts.url+"/v1/layers/"+layer, `{"name":"same due","kind":"comprehensive","levels":["district"]}`); r.status >= 300 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/import", `{"type":"FeatureCollection","features":[`+feat("SD", "", square(124.5, 31.5, 0.01))+`]}`); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	eventually(t, "the layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?layer="+layer+"&lon=124.505&lat=31.505", "").body), `"SD"`)
	})
	if r := do(t, "PUT", ts.url+"/v1/categories/same-due", `{"name":"same","limit":{"value":1,"clock":"calendar_days"}}`); r.status/100 != 2 {
		t.Fatalf("category: %d %s", r.status, r.body)
	}
	var want []int64
	for i := range 7 {
		r := do(t, "POST", ts.url+"/v1/reports", fmt.Sprintf(`{"external_id":"same-due-%d","category":"same-due","reported_at":"2026-03-02T10:00:00+08:00",
			"location":{"type":"Point","coordinates":[124.50%d,31.505]}}`, i, i+1))
		var rep gridmap.Report
		if r.status != 201 || json.Unmarshal(r.body, &rep) != nil {
			t.Fatalf("report %d: %d %s", i, r.status, r.body)
		}
		want = append(want, rep.ID)
	}
	var got []int64
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		var page struct {
			Reports []gridmap.Report
			Next    string
		}
		do(t, "GET", ts.url+"/v1/reports?grid=SD&sort=deadline&limit=2&cursor="+cursor, "").json(t, &page)
		for _, r := range page.Reports {
			got = append(got, r.ID)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged %v, want %v", got, want)
	}
}
