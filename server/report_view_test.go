package server

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
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
}
