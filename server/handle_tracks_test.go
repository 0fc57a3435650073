package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb"
	orbgeo "github.com/paulmach/orb/geo"
)

// patrolWorld is a layer of its own (lon 71.00-71.04, lat -31.04 to
// -31.00, where no other test draws): district PD, streets PS1 (west) and
// PS2 (east), each with two grids 0.01 degrees wide side by side (PG11,
// PG12 | PG21, PG22), a grid worker signed in for each grid, and "late"
// in PG12 whose last position is 20 minutes old.
type patrolWorld struct {
	ts      *testServer
	layer   string
	workers map[string][]string // grid code (or "late") -> cookie and CSRF header pairs
	names   map[string]string   // grid code (or "late") -> username
}

func newPatrolWorld(t *testing.T, layer string, x0 float64) *patrolWorld {
	t.Helper()
	ts := newTestServer(t, Config{})
	w := &patrolWorld{ts: ts, layer: layer, workers: map[string][]string{}, names: map[string]string{}}
	grid := func(code, parent string, x float64) string {
		return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":%q,"level":"grid","parent":%q},"geometry":%s}`,
			code, code, parent, rect(x0+x, -31.04, 0.01, 0.04))
	}
	body := `{"type":"FeatureCollection","features":[` + strings.Join([]string{
		feat("PD", "", rect(x0, -31.04, 0.04, 0.04)),
		feat("PS1", "PD", rect(x0, -31.04, 0.02, 0.04)),
		feat("PS2", "PD", rect(x0+0.02, -31.04, 0.02, 0.04)),
		grid("PG11", "PS1", 0), grid("PG12", "PS1", 0.01), grid("PG21", "PS2", 0.02), grid("PG22", "PS2", 0.03),
	}, ",") + `]}`
	if r := do(t, "PUT", ts.url+"/v1/layers/"+w.layer, `{"name":"patrol","kind":"comprehensive","levels":["district","street","grid"]}`); r.status >= 300 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/v1/layers/"+w.layer+"/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	eventuallyWithin(t, 10*time.Second, "the layer reaches the lookup index", func() bool {
		var a lookupJSON
		r := do(t, "GET", ts.url+"/v1/lookup?layer="+w.layer+"&lon="+strconv.FormatFloat(x0+0.015, 'f', -1, 64)+"&lat=-31.02", "")
		return r.status == 200 && json.Unmarshal(r.body, &a) == nil && len(a.Layers[w.layer].Chain) == 3
	})
	for _, code := range []string{"PG11", "PG12", "PG21", "PG22"} {
		people := `{"people":[{"role":"grid_worker","name":"worker ` + code + `"}`
		if code == "PG12" {
			people += `,{"role":"grid_worker","name":"late worker"}`
		}
		if r := do(t, "PUT", ts.url+"/v1/layers/"+w.layer+"/grids/"+code+"/people", people+`]}`); r.status != 200 {
			t.Fatalf("people of %s: %d %s", code, r.status, r.body)
		}
		w.addWorker(t, code, code, "worker "+code)
	}
	w.addWorker(t, "late", "PG12", "late worker")
	return w
}

func rect(x, y, w, h float64) string {
	return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`, x, y, x+w, y, x+w, y+h, x, y+h, x, y)
}

func (w *patrolWorld) addWorker(t *testing.T, key, grid, person string) {
	t.Helper()
	name := w.layer + "-" + strings.ToLower(key)
	addAccount(t, w.ts, gridmap.Account{Username: name, DisplayName: "网格员 " + key, Role: gridmap.RoleReporter,
		Person: &gridmap.PersonRef{Layer: w.layer, Grid: grid, Name: person}}, "correct horse battery")
	ck, csrf := signIn(t, w.ts, name, "correct horse battery")
	w.workers[key] = []string{"Cookie", ck.Name + "=" + ck.Value, csrfHeader, csrf}
	w.names[key] = name
}

// send posts a track batch as the worker key.
func (w *patrolWorld) send(t *testing.T, key, body string) response {
	t.Helper()
	return do(t, "POST", w.ts.url+"/v1/tracks", body, w.workers[key]...)
}

// trackBody is a batch of points one a minute ending at end, walking east
// from lon, lat.
func trackBody(device string, end time.Time, n int, lon, lat float64) string {
	var pts []string
	for i := range n {
		at := end.Add(time.Duration(i-n+1) * time.Minute)
		pts = append(pts, fmt.Sprintf(`{"t":%q,"lon":%.6f,"lat":%.6f,"accuracy_m":5}`, at.Format(time.RFC3339), lon+float64(i-n+1)*0.0001, lat))
	}
	return `{"device":"` + device + `","points":[` + strings.Join(pts, ",") + `]}`
}

// TestPatrolsAreSeenInScope: workers send their tracks; a dispatcher of
// one street sees that street's workers only (live list, live feed,
// playback), a viewer none, and the nearest on-duty workers of a report
// come in order of distance; a dispatch names one of them.
func TestPatrolsAreSeenInScope(t *testing.T) {
	w := newPatrolWorld(t, "patrol", 71.0)
	ts := w.ts
	street := bearer(ts.token(t, gridmap.RoleDispatcher, &gridmap.Scope{Layer: w.layer, Code: "PS1"}))
	dispatcher := bearer(ts.token(t, gridmap.RoleDispatcher, nil))
	viewer := bearer(ts.token(t, gridmap.RoleViewer, nil))
	streetEvents, stop1 := openStream(t, ts.url, "", street...)
	defer stop1()
	allEvents, stop2 := openStream(t, ts.url, "", dispatcher...)
	defer stop2()
	viewerEvents, stop3 := openStream(t, ts.url, "", viewer...)
	defer stop3()

	now := time.Now().Truncate(time.Second)
	last := map[string]orb.Point{"PG21": {71.025, -31.02}, "PG22": {71.035, -31.02}, "PG11": {71.008, -31.02}, "PG12": {71.016, -31.02}}
	for _, code := range []string{"PG21", "PG22", "PG11", "PG12"} { // PS2's first
		p := last[code]
		r := w.send(t, code, trackBody("phone", now, 30, p[0], p[1]))
		var res gridmap.TrackResult
		if r.status != 200 || json.Unmarshal(r.body, &res) != nil || res.Stored != 30 {
			t.Fatalf("track of %s: %d %s", code, r.status, r.body)
		}
	}
	if r := w.send(t, "late", trackBody("phone", now.Add(-20*time.Minute), 5, 71.0155, -31.02)); r.status != 200 {
		t.Fatalf("the late worker's track: %d %s", r.status, r.body)
	}

	t.Run("a retried batch stores nothing twice", func(t *testing.T) {
		var res gridmap.TrackResult
		r := w.send(t, "PG11", trackBody("phone", now, 30, 71.008, -31.02))
		if r.status != 200 || json.Unmarshal(r.body, &res) != nil || res.Stored != 0 || res.Duplicates != 30 {
			t.Errorf("the batch again: %d %s, want 30 duplicates", r.status, r.body)
		}
	})

	workerOf := func(e sseEvent) string {
		var d struct{ Worker, Grid string }
		if e.event != "worker" || json.Unmarshal([]byte(e.data), &d) != nil {
			return ""
		}
		return d.Grid
	}
	t.Run("the live feed", func(t *testing.T) {
		var seen []string
		waitFor(t, streetEvents, "PG12's position on the street's feed", func(e sseEvent) bool {
			if g := workerOf(e); g != "" {
				seen = append(seen, g)
			}
			return workerOf(e) == "PG12"
		})
		if strings.Join(seen, ",") != "PG11,PG12" {
			t.Errorf("street PS1's dispatcher got worker events of %v, want PG11, PG12", seen)
		}
		seen = nil
		e := waitFor(t, allEvents, "PG12's position on the district's feed", func(e sseEvent) bool {
			if g := workerOf(e); g != "" {
				seen = append(seen, g)
			}
			return workerOf(e) == "PG12"
		})
		if strings.Join(seen, ",") != "PG21,PG22,PG11,PG12" {
			t.Errorf("an unscoped dispatcher got worker events of %v, want all four", seen)
		}
		var d struct {
			Worker, Name, Grid, Layer string
			T                         time.Time
			Lon, Lat                  float64
			AccuracyM                 float64 `json:"accuracy_m"`
		}
		json.Unmarshal([]byte(e.data), &d)
		if d.Worker != w.names["PG12"] || d.Name != "网格员 PG12" || d.Layer != w.layer || !d.T.Equal(now) ||
			math.Abs(d.Lon-71.016) > 1e-6 || d.AccuracyM != 5 {
			t.Errorf("worker event %s", e.data)
		}
	})

	if r := do(t, "PUT", ts.url+"/v1/categories/patrol-litter", `{"name":"Litter","departments":[],"limit":{"value":2,"clock":"working_days"}}`); r.status/100 != 2 {
		t.Fatalf("category: %d %s", r.status, r.body)
	}
	var rep gridmap.Report
	r := do(t, "POST", ts.url+"/v1/reports", `{"external_id":"patrol-1","category":"patrol-litter","location":{"type":"Point","coordinates":[71.015,-31.02]}}`)
	if r.status != 201 || json.Unmarshal(r.body, &rep) != nil || rep.Assignment.Primary.Code != "PG12" {
		t.Fatalf("report: %d %s", r.status, r.body)
	}

	t.Run("a viewer gets no worker events", func(t *testing.T) {
		waitFor(t, viewerEvents, "the report on the viewer's feed", func(e sseEvent) bool {
			if e.event == "worker" {
				t.Errorf("a viewer got a worker event: %s", e.data)
			}
			return reportEvent("patrol-1", "report")(e)
		})
	})

	t.Run("the live list", func(t *testing.T) {
		list := func(who []string) []string {
			var ans struct{ Workers []gridmap.WorkerPosition }
			r := do(t, "GET", ts.url+"/v1/workers?layer="+w.layer, "", who...)
			if r.status != 200 {
				t.Fatalf("GET /v1/workers: %d %s", r.status, r.body)
			}
			r.json(t, &ans)
			var grids []string
			for _, p := range ans.Workers {
				grids = append(grids, p.Grid)
			}
			return grids
		}
		if got := strings.Join(list(street), ","); got != "PG11,PG12" && got != "PG12,PG11" {
			t.Errorf("street PS1's dispatcher lists %s, want PG11 and PG12 (not the late worker)", got)
		}
		if got := list(dispatcher); len(got) != 4 {
			t.Errorf("an unscoped dispatcher lists %v, want the four on duty", got)
		}
		if r := do(t, "GET", ts.url+"/v1/workers", "", viewer...); r.status != 403 {
			t.Errorf("a viewer's list: %d, want 403", r.status)
		}
		if r := do(t, "GET", ts.url+"/v1/workers", "", w.workers["PG11"]...); r.status != 403 {
			t.Errorf("a worker's list: %d, want 403", r.status)
		}
	})

	t.Run("playback", func(t *testing.T) {
		day := now.In(shanghai).Format(time.DateOnly)
		path := func(key string) string { return ts.url + "/v1/workers/" + w.names[key] + "/track?day=" + day }
		var ans struct{ Points []gridmap.TrackPoint }
		r := do(t, "GET", path("PG11"), "", street...)
		if r.status != 200 {
			t.Fatalf("street PS1 plays PG11 back: %d %s", r.status, r.body)
		}
		r.json(t, &ans)
		// The points of its 30 minutes that fall on today (in Shanghai):
		// all of them but in the first half hour of the day.
		want := 0
		for i := range 30 {
			if now.Add(-time.Duration(i)*time.Minute).In(shanghai).Format(time.DateOnly) == day {
				want++
			}
		}
		inOrder := slices.IsSortedFunc(ans.Points, func(a, b gridmap.TrackPoint) int { return a.T.Compare(b.T) })
		if len(ans.Points) != want || !ans.Points[want-1].T.Equal(now) || !inOrder {
			t.Errorf("PG11's day: %d points, want %d in time order, the last now", len(ans.Points), want)
		}
		if r := do(t, "GET", path("PG21"), "", street...); r.status != 404 {
			t.Errorf("street PS1 plays PG21 back: %d, want 404", r.status)
		}
		if r := do(t, "GET", ts.url+"/v1/workers/nosuch/track", "", dispatcher...); r.status != 404 {
			t.Errorf("an unknown worker: %d, want 404", r.status)
		}
		if r := do(t, "GET", path("PG11"), "", viewer...); r.status != 403 {
			t.Errorf("a viewer plays back: %d, want 403", r.status)
		}
		if r := do(t, "GET", ts.url+"/v1/workers/"+w.names["PG11"]+"/track?day=29-11-2026", "", dispatcher...); r.status != 400 {
			t.Errorf("a bad day: %d, want 400", r.status)
		}
		// A gap of an hour makes two stretches: on the day before
		// yesterday (in Shanghai), which no other point of the test
		// reaches at any time of day.
		y := now.In(shanghai).AddDate(0, 0, -2)
		quiet := time.Date(y.Year(), y.Month(), y.Day(), 0, 0, 0, 0, shanghai)
		for _, stretch := range []struct {
			end time.Time
			n   int
		}{{quiet.Add(9 * time.Hour), 3}, {quiet.Add(11 * time.Hour), 30}} {
			if r := w.send(t, "PG22", trackBody("phone", stretch.end, stretch.n, 71.035, -31.02)); r.status != 200 {
				t.Fatalf("a stretch of the day before yesterday: %d %s", r.status, r.body)
			}
		}
		var fc struct {
			Type     string
			Features []struct {
				Geometry struct {
					Type        string
					Coordinates [][2]float64
				}
			}
		}
		r = do(t, "GET", ts.url+"/v1/workers/"+w.names["PG22"]+"/track?day="+quiet.Format(time.DateOnly), "",
			append(dispatcher, "Accept", "application/geo+json")...)
		if r.status != 200 || r.header.Get("Content-Type") != "application/geo+json" {
			t.Fatalf("GeoJSON playback: %d %s", r.status, r.header.Get("Content-Type"))
		}
		r.json(t, &fc)
		if fc.Type != "FeatureCollection" || len(fc.Features) != 2 || fc.Features[0].Geometry.Type != "LineString" ||
			len(fc.Features[0].Geometry.Coordinates) != 3 || len(fc.Features[1].Geometry.Coordinates) != 30 {
			t.Errorf("GeoJSON playback: %s", r.body)
		}
	})

	id := strconv.FormatInt(rep.ID, 10)
	t.Run("nearest workers", func(t *testing.T) {
		var ans struct{ Workers []gridmap.NearbyWorker }
		r := do(t, "GET", ts.url+"/v1/reports/"+id+"/nearby-workers", "", dispatcher...)
		if r.status != 200 {
			t.Fatalf("nearby workers: %d %s", r.status, r.body)
		}
		r.json(t, &ans)
		var grids []string
		for _, nw := range ans.Workers {
			grids = append(grids, nw.Grid)
			want := orbgeo.Distance(orb.Point{71.015, -31.02}, last[nw.Grid])
			if math.Abs(nw.DistanceM-want) > 0.005*want || nw.SeenAt.IsZero() || nw.Person == "" {
				t.Errorf("%s: %+v, want about %.0f m", nw.Grid, nw, want)
			}
		}
		// PG22 does not border PG12; the late worker is off duty.
		if strings.Join(grids, ",") != "PG12,PG11,PG21" {
			t.Errorf("nearby workers of grids %v, want PG12, PG11, PG21 nearest first", grids)
		}
		ans.Workers = nil
		do(t, "GET", ts.url+"/v1/reports/"+id+"/nearby-workers?limit=2", "", dispatcher...).json(t, &ans)
		grids = nil
		for _, nw := range ans.Workers {
			grids = append(grids, nw.Grid)
		}
		if strings.Join(grids, ",") != "PG12,PG11" {
			t.Errorf("limit=2 gives the workers of grids %v, want the nearest two: PG12, PG11", grids)
		}
		for _, bad := range []string{"0", "201", "-1", "ten", "2.5"} {
			r := do(t, "GET", ts.url+"/v1/reports/"+id+"/nearby-workers?limit="+bad, "", dispatcher...)
			if r.status != 400 || !strings.Contains(r.errorOf(t).Message, "from 1 to 200") {
				t.Errorf("limit=%s: %d %s, want 400 saying from 1 to 200", bad, r.status, r.body)
			}
		}
		ans.Workers = nil
		do(t, "GET", ts.url+"/v1/reports/"+id+"/nearby-workers", "", street...).json(t, &ans)
		if len(ans.Workers) != 2 {
			t.Errorf("street PS1's dispatcher gets %d nearby workers, want PG12's and PG11's", len(ans.Workers))
		}
		if r := do(t, "GET", ts.url+"/v1/reports/999999999/nearby-workers", "", dispatcher...); r.status != 404 {
			t.Errorf("an unknown report: %d, want 404", r.status)
		}
		other := bearer(ts.token(t, gridmap.RoleDispatcher, &gridmap.Scope{Layer: w.layer, Code: "PS2"}))
		if r := do(t, "GET", ts.url+"/v1/reports/"+id+"/nearby-workers", "", other...); r.status != 403 {
			t.Errorf("a dispatcher of the other street: %d, want 403", r.status)
		}
	})

	t.Run("a dispatch names the worker", func(t *testing.T) {
		events := ts.url + "/v1/reports/" + id + "/events"
		if r := do(t, "POST", events, `{"action":"register"}`, dispatcher...); r.status != 200 {
			t.Fatalf("register: %d %s", r.status, r.body)
		}
		addAccount(t, ts, gridmap.Account{Username: "patrol-desk", Role: gridmap.RoleDispatcher}, "correct horse battery")
		var refusals []string
		for _, tc := range []struct {
			name, body string
			as         []string
		}{
			{"an unknown account", `{"action":"dispatch","assignee":"nosuch"}`, dispatcher},
			{"a dispatcher's account", `{"action":"dispatch","assignee":"patrol-desk"}`, dispatcher},
			{"with another move", `{"action":"start","assignee":"` + w.names["PG12"] + `"}`, dispatcher},
			// Street PS1's dispatcher may not send the other street's worker.
			{"a worker outside the caller's area", `{"action":"dispatch","assignee":"` + w.names["PG21"] + `"}`, street},
		} {
			r := do(t, "POST", events, tc.body, tc.as...)
			if r.status != 400 || !strings.Contains(r.errorOf(t).Message, "assignee") {
				t.Errorf("%s: %d %s, want 400 about the assignee", tc.name, r.status, r.body)
			}
			if tc.name != "with another move" {
				refusals = append(refusals, strings.Replace(r.errorOf(t).Message, strconv.Quote(gjson(tc.body, "assignee")), "NAME", 1))
			}
		}
		// Whether a name is an account cannot be told from the refusal.
		if refusals[0] != refusals[1] || refusals[0] != refusals[2] {
			t.Errorf("refusals differ beyond the name: %q", refusals)
		}
		var got gridmap.Report
		r := do(t, "POST", events, `{"action":"dispatch","assignee":"`+w.names["PG12"]+`"}`, dispatcher...)
		if r.status != 200 || json.Unmarshal(r.body, &got) != nil || got.Assignee != w.names["PG12"] || got.Status != gridmap.StatusDispatched {
			t.Fatalf("dispatch to a worker: %d %s", r.status, r.body)
		}
		do(t, "GET", ts.url+"/v1/reports/"+id, "", street...).json(t, &got)
		if got.Assignee != w.names["PG12"] {
			t.Errorf("the report view's assignee %q", got.Assignee)
		}
		var history struct{ Events []gridmap.ReportEvent }
		do(t, "GET", events, "", dispatcher...).json(t, &history)
		if last := history.Events[len(history.Events)-1]; last.Action != "dispatch" || !strings.Contains(string(last.Data), w.names["PG12"]) {
			t.Errorf("the dispatch event %+v does not record the assignee", last)
		}
		// Other moves leave the report with the worker.
		if r := do(t, "POST", events, `{"action":"escalate"}`, dispatcher...); r.status != 200 || json.Unmarshal(r.body, &got) != nil || got.Assignee != w.names["PG12"] {
			t.Errorf("an escalation after the dispatch: %d %s, want the assignee kept", r.status, r.body)
		}
	})

	t.Run("a dispatch naming nobody takes the report from the worker", func(t *testing.T) {
		// The workflow dispatches a report once; put it back as a
		// report registered again would be.
		if _, err := pgtest.Shared(t).Pool.Exec(context.Background(), `UPDATE reports SET status = 'registered' WHERE id = $1`, rep.ID); err != nil {
			t.Fatal(err)
		}
		var got gridmap.Report
		r := do(t, "POST", ts.url+"/v1/reports/"+id+"/events", `{"action":"dispatch"}`, dispatcher...)
		if r.status != 200 || json.Unmarshal(r.body, &got) != nil || got.Status != gridmap.StatusDispatched {
			t.Fatalf("dispatch naming nobody: %d %s", r.status, r.body)
		}
		if got.Assignee != "" {
			t.Errorf("after a dispatch naming nobody the report is still with %q", got.Assignee)
		}
		do(t, "GET", ts.url+"/v1/reports/"+id, "", dispatcher...).json(t, &got)
		if got.Assignee != "" {
			t.Errorf("the report view's assignee %q, want none", got.Assignee)
		}
	})
}

// TestTrackIntakeRefusesBadBatches: a bad point is named by its index and
// nothing is stored; past the limit the answer says it.
func TestTrackIntakeRefusesBadBatches(t *testing.T) {
	w := newPatrolWorld(t, "patrol-bad", 71.1)
	now := time.Now().UTC()
	good := fmt.Sprintf(`{"t":%q,"lon":71.005,"lat":-31.02}`, now.Format(time.RFC3339))
	many := strings.TrimSuffix(strings.Repeat(good+",", gridmap.MaxTrackPoints+1), ",")
	for _, tc := range []struct {
		name, body string
		status     int
		says       string
	}{
		{"a time an hour ahead", `{"device":"d","points":[` + good + `,{"t":"` + now.Add(time.Hour).Format(time.RFC3339) + `","lon":71,"lat":-31}]}`, 400, "point 1"},
		{"a point without lat", `{"device":"d","points":[` + good + `,` + good + `,{"t":"` + now.Format(time.RFC3339) + `","lon":71}]}`, 400, "point 2"},
		{"a point as a short array", `{"device":"d","points":[[71, -31]]}`, 400, "point 0"},
		{"an unknown crs", `{"device":"d","crs":"osgb","points":[` + good + `]}`, 400, `crs "osgb"`},
		{"no device", `{"points":[` + good + `]}`, 400, "device"},
		{"too many points", `{"device":"d","points":[` + many + `]}`, 413, "at most 10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.send(t, "PG11", tc.body)
			if r.status != tc.status || !strings.Contains(r.errorOf(t).Message, tc.says) {
				t.Errorf("%d %s, want %d saying %q", r.status, r.body, tc.status, tc.says)
			}
		})
	}
	// Arrays are points too, and nothing of the refused batches was stored.
	r := w.send(t, "PG11", fmt.Sprintf(`{"device":"d","points":[[71.005,-31.02,%q,3]]}`, now.Format(time.RFC3339)))
	var res gridmap.TrackResult
	if r.status != 200 || json.Unmarshal(r.body, &res) != nil || res.Stored != 1 {
		t.Errorf("a point as an array after the refused batches: %d %s, want 1 stored", r.status, r.body)
	}
	if r := do(t, "POST", w.ts.url+"/v1/tracks", `{"device":"d","points":[`+good+`]}`, bearer(w.ts.token(t, gridmap.RoleViewer, nil))...); r.status != 403 {
		t.Errorf("a viewer sends a track: %d, want 403", r.status)
	}
}

// gjson reads the string field name of the JSON object body.
func gjson(body, name string) string {
	var m map[string]string
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return ""
	}
	return m[name]
}
