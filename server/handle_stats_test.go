package server

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// statsWorlds places each statsWorld layer apart from the others: every
// comprehensive layer assigns the reports its grids cover.
var statsWorlds = map[string]float64{"stq": 140, "stsc": 142, "stbad": 144, "stmc": 146}

// statsWorld is a district of four streets far from every other test's
// grids (layer id, one of statsWorlds), a department and a category with a
// limit of 3 working days, and the lookup index holding them. Street i
// (0-3) is around statsPoint(id, i).
func statsWorld(t *testing.T, ts *testServer, id string) {
	t.Helper()
	if r := do(t, "PUT", ts.url+"/v1/layers/"+id, `{"levels":["district","street"]}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	body := `{"type":"FeatureCollection","features":[` + feat(id+"-D", "", square(statsWorlds[id], -40, 1))
	for i := range 4 {
		body += "," + feat(fmt.Sprintf("%s-S%d", id, i), id+"-D", square(statsWorlds[id]+0.5*float64(i%2), -40+0.5*float64(i/2), 0.5))
	}
	if r := do(t, "POST", ts.url+"/v1/layers/"+id+"/import", body+"]}"); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	for _, s := range []struct{ path, body string }{
		{"/v1/departments/" + id + "-dept", `{"name":"Stats department"}`},
		{"/v1/categories/" + id + "-cat", `{"name":"Stats category","departments":["` + id + `-dept"],"limit":{"value":3,"clock":"working_days"}}`},
		{"/v1/categories/" + id + "-sub", `{"name":"Stats subcategory","parent":"` + id + `-cat","departments":["` + id + `-dept"],"limit":{"value":3,"clock":"working_days"}}`},
	} {
		if r := do(t, "PUT", ts.url+s.path, s.body); r.status/100 != 2 {
			t.Fatalf("%s: %d %s", s.path, r.status, r.body)
		}
	}
	p := statsPoint(id, 3)
	eventuallyWithin(t, 10*time.Second, "the stats layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", fmt.Sprintf("%s/v1/lookup?layer=%s&lon=%g&lat=%g", ts.url, id, p[0], p[1]), "").body), id+"-S3")
	})
}

// statsPoint is a point inside street i of statsWorld id.
func statsPoint(id string, i int) [2]float64 {
	return [2]float64{statsWorlds[id] + 0.25 + 0.5*float64(i%2), -39.75 + 0.5*float64(i/2)}
}

// fileStatsReport posts a report of category in street i of the
// statsWorld its category's prefix names, reported at, and returns its id.
func fileStatsReport(t *testing.T, base, externalID, category string, street int, at time.Time, header ...string) int64 {
	t.Helper()
	world, _, _ := strings.Cut(category, "-")
	p := statsPoint(world, street)
	b, _ := json.Marshal(map[string]any{"external_id": externalID, "category": category, "source": "test",
		"location": map[string]any{"type": "Point", "coordinates": p[:]}, "reported_at": at})
	r := do(t, "POST", base+"/v1/reports", string(b), header...)
	if r.status != 201 {
		t.Fatalf("report %s: %d %s", externalID, r.status, r.body)
	}
	var created struct{ ID int64 }
	r.json(t, &created)
	return created.ID
}

// moveReport posts the actions in order to report id.
func moveReport(t *testing.T, base string, id int64, actions ...string) {
	t.Helper()
	for _, a := range actions {
		if r := do(t, "POST", fmt.Sprintf("%s/v1/reports/%d/events", base, id), `{"action":"`+a+`"}`); r.status != 200 {
			t.Fatalf("report %d %s: %d %s", id, a, r.status, r.body)
		}
	}
}

// getStats reads GET /v1/stats with the query.
func getStats(t *testing.T, base, query string, header ...string) *gridmap.Stats {
	t.Helper()
	r := do(t, "GET", base+"/v1/stats?"+query, "", header...)
	if r.status != 200 {
		t.Fatalf("stats?%s: %d %s", query, r.status, r.body)
	}
	var st gridmap.Stats
	r.json(t, &st)
	return &st
}

// toClose are the moves from intake to closed.
var toClose = []string{"register", "dispatch", "start", "resolve", "verify", "close"}

// TestStatsOnTimeClosureRate drives a constructed set of reports through
// the workflow and checks every figure against the hand-computed value,
// the on-time closure rate by gridmap.StatsFigures' definition.
func TestStatsOnTimeClosureRate(t *testing.T) {
	ts := newTestServer(t, Config{})
	statsWorld(t, ts, "stq")
	now := time.Now()
	old := now.AddDate(0, 0, -30) // its 3 working days are long past
	cat := "stq-cat"
	file := func(name string, at time.Time) int64 { return fileStatsReport(t, ts.url, "stq-"+name, cat, 0, at) }

	moveReport(t, ts.url, file("on-time-1", now), toClose...)                                                                    // closed on time
	moveReport(t, ts.url, file("on-time-2", now), toClose...)                                                                    // closed on time
	moveReport(t, ts.url, file("late", old), toClose...)                                                                         // closed late
	moveReport(t, ts.url, file("extended-open", old), "register", "dispatch", "extend")                                          // deferred: new deadline ahead
	moveReport(t, ts.url, file("extended-closed", old), "register", "dispatch", "extend", "start", "resolve", "verify", "close") // on time against the extension
	moveReport(t, ts.url, file("suspended", old), "register", "suspend")                                                         // deferred: clock stopped
	moveReport(t, ts.url, file("overdue", old), "register")                                                                      // due, open, late
	moveReport(t, ts.url, file("not-yet-due", now), "register")                                                                  // not due yet
	moveReport(t, ts.url, file("rejected", now), "reject")                                                                       // not registered
	moveReport(t, ts.url, file("reworked", now), "register", "dispatch", "start", "resolve", "reject", "resolve", "verify", "close")
	file("waiting", now) // not registered yet

	// By hand: 11 received; 9 registered (not rejected, not waiting);
	// closed: on-time-1, on-time-2, late, extended-closed, reworked = 5,
	// of which on time 4 (all but late); due = closed or past the first
	// deadline (5 + extended-open, suspended, overdue = 8) minus deferred
	// (extended-open, suspended = 2) = 6; resolved 5, reworked 1;
	// extended 2; overdue now: overdue only.
	want := gridmap.StatsFigures{Received: 11, Registered: 9, Closed: 5, ClosedOnTime: 4, Due: 6, Resolved: 5, Reworked: 1,
		Extended: 2, Suspended: 1, Overdue: 1}
	want.SetRates()
	if *want.OnTimeRate != 4.0/6 {
		t.Fatalf("hand-computed on-time rate %v", *want.OnTimeRate)
	}
	from := old.Add(-time.Hour).Format(time.RFC3339)
	st := getStats(t, ts.url, "layer=stq&group=street&from="+url.QueryEscape(from))
	got := st.Total.StatsFigures
	got.MedianHandlingS = nil
	if fmt.Sprint(flat(got)) != fmt.Sprint(flat(want)) {
		t.Errorf("total\n got %v\nwant %v", flat(got), flat(want))
	}
	if len(st.Rows) != 1 || st.Rows[0].Key != "stq-S0" || st.Rows[0].Rank != 1 || st.Rows[0].Name != "stq-S0 网格" {
		t.Fatalf("rows %+v, want street stq-S0 only, ranked 1", st.Rows)
	}
	if r := st.Rows[0]; r.Received != 11 || r.OnTimeRate == nil || *r.OnTimeRate != 4.0/6 {
		t.Errorf("street row %+v", r.StatsFigures)
	}
	if m := st.Total.MedianHandlingS; m == nil || *m < 0 || *m > 31*86400 {
		t.Errorf("median handling %v s", m)
	}
	if bc := st.Rows[0].ByCategory; len(bc) != 1 || bc[0].Category != cat || bc[0].Received != 11 || bc[0].Closed != 5 || bc[0].Overdue != 1 {
		t.Errorf("by category %+v", bc)
	}

	t.Run("the window bounds reported_at", func(t *testing.T) {
		st := getStats(t, ts.url, "layer=stq&group=district&from="+url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)))
		if st.Total.Received != 6 || len(st.Rows) != 1 || st.Rows[0].Key != "stq-D" || st.Level != "district" {
			t.Errorf("recent reports: %d, rows %+v", st.Total.Received, st.Rows)
		}
	})
	t.Run("a parent category includes its subcategories", func(t *testing.T) {
		fileStatsReport(t, ts.url, "stq-sub-1", "stq-sub", 1, now)
		st := getStats(t, ts.url, "layer=stq&group=grid&category=stq-cat&from="+url.QueryEscape(from))
		if st.Total.Received != 12 || len(st.Rows) != 2 {
			t.Errorf("with the subcategory: %d in %d rows", st.Total.Received, len(st.Rows))
		}
		if st := getStats(t, ts.url, "layer=stq&group=grid&category=stq-sub"); st.Total.Received != 1 || st.Rows[0].Key != "stq-S1" {
			t.Errorf("the subcategory alone: %d %+v", st.Total.Received, st.Rows)
		}
	})
	t.Run("ranked by on-time rate, then closure rate", func(t *testing.T) {
		st := getStats(t, ts.url, "layer=stq&group=grid&from="+url.QueryEscape(from))
		// stq-S1 has one report, not due: no on-time rate, ranked last.
		if len(st.Rows) != 2 || st.Rows[0].Key != "stq-S0" || st.Rows[0].Rank != 1 || st.Rows[1].Rank != 2 {
			t.Errorf("ranking %+v", st.Rows)
		}
	})
	t.Run("by department", func(t *testing.T) {
		st := getStats(t, ts.url, "group=department&layer=stq&from="+url.QueryEscape(from))
		if len(st.Rows) != 1 || st.Rows[0].Key != "stq-dept" || st.Rows[0].Name != "Stats department" || st.Rows[0].Received != 12 {
			t.Errorf("departments %+v", st.Rows)
		}
	})
	t.Run("CSV: a header and a row per group", func(t *testing.T) {
		r := do(t, "GET", ts.url+"/v1/stats?layer=stq&group=grid&from="+url.QueryEscape(from), "", "Accept", "text/csv")
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("%d %s %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 3 || recs[0][0] != "rank" || recs[1][1] != "stq-S0" || recs[1][15] != fmt.Sprint(4.0/6) || recs[2][15] != "" {
			t.Errorf("CSV %q", recs)
		}
	})
}

// flat lists the counts and rates of f for comparison.
func flat(f gridmap.StatsFigures) []any {
	rate := func(r *float64) any {
		if r == nil {
			return nil
		}
		return math.Round(*r*1e9) / 1e9
	}
	return []any{f.Received, f.Registered, f.Closed, f.ClosedOnTime, f.Due, f.Resolved, f.Reworked, f.Extended, f.Suspended,
		f.Overdue, rate(f.RegisteredRate), rate(f.ClosureRate), rate(f.OnTimeRate), rate(f.ReworkRate), rate(f.ExtensionRate)}
}

func TestStatsScopedCallerSeesTheirSubtree(t *testing.T) {
	ts := newTestServer(t, Config{})
	statsWorld(t, ts, "stsc")
	now := time.Now()
	for i, street := range []int{0, 0, 1, 2, 2, 2} {
		moveReport(t, ts.url, fileStatsReport(t, ts.url, fmt.Sprintf("stsc-%d", i), "stsc-cat", street, now), "register")
	}
	all := getStats(t, ts.url, "layer=stsc&group=grid")
	if all.Total.Received != 6 || len(all.Rows) != 3 {
		t.Fatalf("unscoped: %d in %+v", all.Total.Received, all.Rows)
	}
	scoped := bearer(ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: "stsc", Code: "stsc-S2"}))
	for _, q := range []string{"layer=stsc&group=grid", "layer=stsc&group=district", "group=department"} {
		st := getStats(t, ts.url, q, scoped...)
		if st.Total.Received != 3 || len(st.Rows) != 1 || st.Rows[0].Received != 3 {
			t.Errorf("%s scoped to stsc-S2: %d in %+v", q, st.Total.Received, st.Rows)
		}
	}
	if st := getStats(t, ts.url, "layer=stsc&group=grid", scoped...); st.Rows[0].Key != "stsc-S2" {
		t.Errorf("scoped rows %+v", st.Rows)
	}
	if r := do(t, "GET", ts.url+"/v1/stats?layer=stsc", "", noAuth...); r.status != 401 {
		t.Errorf("anonymous: %d %s", r.status, r.body)
	}
}

func TestStatsBadInput(t *testing.T) {
	ts := newTestServer(t, Config{})
	statsWorld(t, ts, "stbad")
	for _, c := range []struct{ name, query, says string }{
		{"unknown group", "layer=stbad&group=county", "group"},
		{"level not of the layer", "layer=stbad&group=grid&level=tract", "level"},
		{"level with another group", "layer=stbad&group=district&level=street", "level"},
		{"from after to", "layer=stbad&from=2025-03-01T00:00:00Z&to=2025-02-01T00:00:00Z", "from"},
		{"from not a time", "layer=stbad&from=yesterday", "from"},
		{"unknown category", "layer=stbad&category=no-such-category", "category"},
		{"unknown layer", "layer=no-such-layer", "layer"},
		{"missing layer", "group=grid", "layer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, "GET", ts.url+"/v1/stats?"+c.query, "")
			if r.status != 400 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if e := r.errorOf(t); e.Code != gridmap.EINVALID || !strings.Contains(e.Message, c.says) {
				t.Errorf("error %+v does not name %s", e, c.says)
			}
		})
	}
}

// TestStatsManyClients reads the figures with 8 clients while 2 others file
// reports and move them, over a pool of 2 connections: every answer is
// 200, totals add up, never go down, and end at what was filed.
func TestStatsManyClients(t *testing.T) {
	ts := newTestServer(t, Config{})
	statsWorld(t, ts, "stmc")
	small := pgtest.SharedWith(t, postgres.Options{MaxConns: 2})
	s := New(Config{}, Deps{Layers: postgres.NewLayerStore(small), Categories: postgres.NewCategoryStore(small),
		Reports: postgres.NewReportStore(small, ts.locator, shanghai), Stats: postgres.NewStatsStore(small),
		Access: ts.access, Ready: func(context.Context) error { return nil }}, slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	signInAsAdmin(t, ts.access, hs.Listener.Addr().String())

	const writers, perWriter, readers = 2, 20, 8
	var filed atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				id := fileStatsReport(t, hs.URL, fmt.Sprintf("stmc-%d-%d", w, i), "stmc-cat", i%4, time.Now())
				filed.Add(1)
				moveReport(t, hs.URL, id, toClose[:1+i%len(toClose)]...)
			}
		}()
	}
	var rwg sync.WaitGroup
	var reads atomic.Int64
	for range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			last := int64(0)
			for {
				select {
				case <-done:
					return
				default:
				}
				st := getStats(t, hs.URL, "layer=stmc&group=grid")
				reads.Add(1)
				sum, closed := int64(0), int64(0)
				for _, r := range st.Rows {
					sum += r.Received
					closed += r.Closed
				}
				if sum != st.Total.Received || closed != st.Total.Closed || st.Total.Received < last || st.Total.Closed > st.Total.Registered {
					t.Errorf("inconsistent: rows %d (closed %d), total %+v, before %d", sum, closed, st.Total.StatsFigures, last)
					return
				}
				last = st.Total.Received
			}
		}()
	}
	wg.Wait()
	close(done)
	rwg.Wait()
	st := getStats(t, hs.URL, "layer=stmc&group=grid")
	if st.Total.Received != writers*perWriter || st.Total.Received != filed.Load() {
		t.Errorf("after the writers: %d received, want %d", st.Total.Received, writers*perWriter)
	}
	// Of each writer's 20, i%6 == 5 reached close: i = 5, 11, 17.
	if st.Total.Closed != writers*3 {
		t.Errorf("closed %d, want %d", st.Total.Closed, writers*3)
	}
	t.Logf("%d stats reads while %d reports were filed and moved", reads.Load(), filed.Load())
}
