package server

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// listLayer makes layer id at lon x0 to x0+0.02, lat 30.7 to 30.71: district
// <id>D with streets <id>A (west) and <id>B (east), and category id (one
// calendar day, urgent one hour).
func listLayer(t *testing.T, ts *testServer, id string, x0 float64) {
	t.Helper()
	rect := func(x0, x1 float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,30.7],[%g,30.7],[%g,30.71],[%g,30.71],[%g,30.7]]]}`, x0, x1, x1, x0, x0)
	}
	if r := do(t, "PUT", ts.url+"/v1/layers/"+id, `{"levels":["district","street"]}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	body := `{"type":"FeatureCollection","features":[` + feat(id+"D", "", rect(x0, x0+0.02)) + "," +
		feat(id+"A", id+"D", rect(x0, x0+0.01)) + "," + feat(id+"B", id+"D", rect(x0+0.01, x0+0.02)) + "]}"
	if r := do(t, "POST", ts.url+"/v1/layers/"+id+"/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	eventually(t, "the layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", fmt.Sprintf("%s/v1/lookup?layer=%s&lon=%g&lat=30.705", ts.url, id, x0+0.005), "").body), id+"A")
	})
	if r := do(t, "PUT", ts.url+"/v1/categories/"+id, `{"name":"list","limit":{"value":1,"clock":"calendar_days"},"urgent_limit":{"value":1,"clock":"urgent_hours"}}`); r.status/100 != 2 {
		t.Fatalf("category: %d %s", r.status, r.body)
	}
}

// listedReport is what the list tests read of a report.
type listedReport struct {
	ID         int64
	ExternalID string `json:"external_id"`
	Status     string
	Assignment struct {
		DueAt time.Time `json:"due_at"`
		Tier  string
	}
}

type reportPage struct {
	Reports []listedReport
	Next    string
}

func TestReportListAPI(t *testing.T) {
	ts := newTestServer(t, Config{})
	listLayer(t, ts, "rla", 104.2)
	dispatcher, secret := ts.namedToken(t, gridmap.RoleDispatcher, nil)
	streetA := ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: "rla", Code: "rlaA"})
	long := time.Now().AddDate(0, 0, -30).Truncate(time.Second)
	ids := map[string]int64{}
	for _, r := range []struct {
		name, source string
		lon          float64
		urgent       bool
		reported     time.Time
		actor        string // "": nobody registers it; "-": the dispatcher alone
	}{
		{"a", "app", 104.205, false, time.Time{}, "-"},                      // street rlaA
		{"b", "hotline", 104.21 - 0.00005, true, long, "op 12"},             // on the edge: district tier
		{"c", "app", 104.215, false, long.Add(time.Hour), ""},               // street rlaB
		{"d", "worker", 104.203, true, long.Add(2 * time.Hour), ""},         // street rlaA
		{"e", "app", 104.218, false, time.Now().Add(-time.Minute), "op 12"}, // street rlaB
	} {
		body := map[string]any{"external_id": fmt.Sprintf("rla-%s-%d", r.name, time.Now().UnixNano()), "category": "rla", "source": r.source,
			"urgent": r.urgent, "location": map[string]any{"type": "Point", "coordinates": []float64{r.lon, 30.705}}}
		if !r.reported.IsZero() {
			body["reported_at"] = r.reported
		}
		b, _ := json.Marshal(body)
		res := do(t, "POST", ts.url+"/v1/reports", string(b))
		var created listedReport
		res.json(t, &created)
		if res.status != 201 {
			t.Fatalf("report %s: %d %s", r.name, res.status, res.body)
		}
		ids[r.name] = created.ID
		if r.actor != "" {
			ev := `{"action":"register"}`
			if r.actor != "-" {
				ev = `{"action":"register","actor":"` + r.actor + `"}`
			}
			if res := do(t, "POST", fmt.Sprintf("%s/v1/reports/%d/events", ts.url, created.ID), ev, bearer(secret)...); res.status != 200 {
				t.Fatalf("register %s: %d %s", r.name, res.status, res.body)
			}
		}
	}
	names := func(list []listedReport) string {
		var out []string
		for _, r := range list {
			for name, id := range ids {
				if id == r.ID {
					out = append(out, name)
				}
			}
		}
		return strings.Join(out, ",")
	}
	list := func(t *testing.T, query string, header ...string) reportPage {
		t.Helper()
		r := do(t, "GET", ts.url+"/v1/reports?category=rla&limit=1000&"+query, "", header...)
		if r.status != 200 {
			t.Fatalf("GET /v1/reports?%s: %d %s", query, r.status, r.body)
		}
		var page reportPage
		r.json(t, &page)
		return page
	}
	counts := func(t *testing.T, query string, header ...string) gridmap.ReportCounts {
		t.Helper()
		r := do(t, "GET", ts.url+"/v1/reports/counts?category=rla&"+query, "", header...)
		if r.status != 200 {
			t.Fatalf("GET /v1/reports/counts?%s: %d %s", query, r.status, r.body)
		}
		var c gridmap.ReportCounts
		r.json(t, &c)
		return c
	}
	until := url.QueryEscape(long.Add(time.Hour).Format(time.RFC3339))
	tests := []struct {
		name, query string
		header      []string
		want        string
	}{
		{"everything, newest first", "", nil, "e,d,c,b,a"},
		{"the earliest due first", "sort=deadline", nil, "b,d,c,e,a"},
		{"arrival order said out loud", "sort=arrival", nil, "e,d,c,b,a"},
		{"street tier", "tier=street", nil, "e,d,c,a"},
		{"district tier", "tier=district", nil, "b"},
		{"source", "source=app", nil, "e,c,a"},
		{"urgent", "urgent=true", nil, "d,b"},
		{"not urgent", "urgent=false", nil, "e,c,a"},
		{"overdue", "overdue=true", nil, "d,c,b"},
		{"overdue, the earliest due first", "overdue=true&sort=deadline", nil, "b,d,c"},
		{"until", "until=" + until, nil, "b"},
		{"mine: the dispatcher, alone or for someone", "mine=true", bearer(secret), "e,b,a"},
		{"mine and urgent", "mine=true&urgent=true", bearer(secret), "b"},
		{"mine: the admin acted on none", "mine=true", nil, ""},
		{"a street's viewer sees its street", "", bearer(streetA), "d,b,a"},
		{"a street's viewer, overdue", "overdue=true&sort=deadline", bearer(streetA), "b,d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page := list(t, tc.query, tc.header...)
			if got := names(page.Reports); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			c := counts(t, tc.query, tc.header...)
			want := gridmap.ReportCounts{Counts: map[string]int64{}}
			for _, r := range page.Reports {
				want.Counts[r.Status]++
				want.Total++
				want.Open++ // none is closed or rejected
				if r.Assignment.DueAt.Before(time.Now()) {
					want.Overdue++
				}
			}
			if !maps.Equal(c.Counts, want.Counts) || c.Total != want.Total || c.Open != want.Open || c.Overdue != want.Overdue {
				t.Errorf("counts %+v, want %+v as listed", c, want)
			}
		})
	}
	t.Run("the dispatcher's events name it", func(t *testing.T) {
		r := do(t, "GET", fmt.Sprintf("%s/v1/reports/%d/events", ts.url, ids["b"]), "")
		if !strings.Contains(string(r.body), `"token:`+dispatcher+` for op 12"`) {
			t.Errorf("events of b: %s", r.body)
		}
	})
	t.Run("counts answer every status that has reports", func(t *testing.T) {
		r := do(t, "GET", ts.url+"/v1/reports/counts?category=rla", "")
		want := `"counts":{"registered":3,"reported":2}`
		if r.status != 200 || !strings.Contains(string(r.body), want) || !strings.Contains(string(r.body), `"total":5`) {
			t.Errorf("%d %s, want %s", r.status, r.body, want)
		}
	})

	var deadline, arrival reportPage
	do(t, "GET", ts.url+"/v1/reports?category=rla&sort=deadline&limit=1", "").json(t, &deadline)
	do(t, "GET", ts.url+"/v1/reports?category=rla&limit=1", "").json(t, &arrival)
	deadlineCursor, arrivalCursor := deadline.Next, arrival.Next
	if !strings.HasPrefix(deadlineCursor, "d") || arrivalCursor != fmt.Sprint(ids["e"]) {
		t.Errorf("cursors %q and %q", deadlineCursor, arrivalCursor)
	}
	bad := []struct{ name, path, want string }{
		{"an unknown tier", "/v1/reports?tier=nope", `tier "nope" must be one of grid, street, district, city`},
		{"urgent neither true nor false", "/v1/reports?urgent=maybe", `urgent="maybe" must be true or false`},
		{"overdue neither true nor false", "/v1/reports?overdue=1x", `overdue="1x" must be true or false`},
		{"mine neither true nor false", "/v1/reports?mine=me", `mine="me" must be true or false`},
		{"an unknown sort", "/v1/reports?sort=nope", `sort "nope" must be arrival (newest first) or deadline`},
		{"until not a time", "/v1/reports?until=yesterday", `until "yesterday" must be an RFC 3339 time`},
		{"a deadline cursor in arrival order", "/v1/reports?cursor=" + deadlineCursor, `pass the "next" value of the previous page`},
		{"an arrival cursor in deadline order", "/v1/reports?sort=deadline&cursor=" + arrivalCursor, `pass the "next" value of the previous page`},
		{"a garbage cursor", "/v1/reports?sort=deadline&cursor=dzz_1", `pass the "next" value of the previous page`},
		{"counts: an unknown tier", "/v1/reports/counts?tier=nope", `tier "nope" must be one of`},
		{"counts: urgent neither true nor false", "/v1/reports/counts?urgent=maybe", `urgent="maybe" must be true or false`},
	}
	for _, tc := range bad {
		t.Run(tc.name+" is a 400 saying what to fix", func(t *testing.T) {
			r := do(t, "GET", ts.url+tc.path, "")
			if r.status != 400 {
				t.Fatalf("%d %s, want 400", r.status, r.body)
			}
			if e := r.errorOf(t); e.Code != gridmap.EINVALID || !strings.Contains(e.Message, tc.want) {
				t.Errorf("%+v, want a message with %s", e, tc.want)
			}
		})
	}
	t.Run("an anonymous caller is asked to sign in", func(t *testing.T) {
		// The report list is for signed-in callers: an anonymous mine=true
		// never reaches the list (the store answers 400 for one that did).
		for _, path := range []string{"/v1/reports?mine=true", "/v1/reports/counts?mine=true"} {
			if r := do(t, "GET", ts.url+path, "", noAuth...); r.status != 401 {
				t.Errorf("%s: %d %s, want 401", path, r.status, r.body)
			}
		}
	})
}

// TestReportListPagesWhileReportsArrive pages through a category's
// reports two at a time, in both orders, while eight clients file up to
// 400 more into it through a pool of four connections: every report that
// was there before comes exactly once, and the pages keep their order.
func TestReportListPagesWhileReportsArrive(t *testing.T) {
	ts := newTestServerOn(t, Config{}, pgtest.SharedWith(t, postgres.Options{MaxConns: 4}))
	listLayer(t, ts, "rlp", 104.3)
	run := time.Now().UnixNano()
	var filed atomic.Int64
	file := func(t *testing.T, i int64) {
		// Reported over the last two days, so that new deadlines fall
		// between the old ones.
		reported := time.Now().Add(-time.Duration(i*7919%2880) * time.Minute).Format(time.RFC3339)
		body := fmt.Sprintf(`{"external_id":"rlp-%d-%d","category":"rlp","urgent":%t,"reported_at":%q,"location":{"type":"Point","coordinates":[%g,30.705]}}`,
			run, i, i%3 == 0, reported, 104.301+float64(i%97)*0.0002)
		if r := do(t, "POST", ts.url+"/v1/reports", body); r.status != 201 {
			t.Errorf("filing %d: %d %s", i, r.status, r.body)
		}
	}
	for range 15 {
		file(t, filed.Add(1))
	}
	before := list(t, ts, "category=rlp&limit=1000").Reports
	if len(before) != 15 {
		t.Fatalf("%d reports before, want 15", len(before))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					i := filed.Add(1)
					if i > 415 {
						return
					}
					file(t, i)
				}
			}
		})
	}
	for _, sort := range []string{gridmap.SortArrival, gridmap.SortDeadline} {
		t.Run(sort, func(t *testing.T) {
			seen := map[int64]int{}
			var order []listedReport
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 1000 {
					t.Fatal("the pages do not end")
				}
				page := list(t, ts, "category=rlp&limit=2&sort="+sort+"&cursor="+url.QueryEscape(cursor))
				if len(page.Reports) > 2 {
					t.Fatalf("a page of %d", len(page.Reports))
				}
				for _, r := range page.Reports {
					seen[r.ID]++
					order = append(order, r)
				}
				if page.Next == "" {
					break
				}
				cursor = page.Next
			}
			for _, r := range before {
				if seen[r.ID] != 1 {
					t.Errorf("report %d came %d times", r.ID, seen[r.ID])
				}
			}
			for id, n := range seen {
				if n > 1 {
					t.Errorf("report %d came %d times", id, n)
				}
			}
			if !slices.IsSortedFunc(order, func(x, y listedReport) int {
				if sort == gridmap.SortArrival {
					return int(y.ID - x.ID)
				}
				if c := x.Assignment.DueAt.Compare(y.Assignment.DueAt); c != 0 {
					return c
				}
				return int(x.ID - y.ID)
			}) {
				t.Errorf("the pages are out of %s order", sort)
			}
			t.Logf("%s: %d reports in pages of two, %d filed meanwhile", sort, len(order), min(filed.Load(), 415)-15)
		})
	}
	close(stop)
	wg.Wait()
}

// list gets a page of GET /v1/reports?query.
func list(t *testing.T, ts *testServer, query string) reportPage {
	t.Helper()
	r := do(t, "GET", ts.url+"/v1/reports?"+query, "")
	if r.status != 200 {
		t.Fatalf("GET /v1/reports?%s: %d %s", query, r.status, r.body)
	}
	var page reportPage
	r.json(t, &page)
	return page
}
