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
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// indicatorWorlds places each indicatorWorld layer apart from the others'
// and every other test's grids (longitudes 150 to 154, latitude -40).
var indicatorWorlds = map[string]float64{"indf": 150, "indw": 151, "indt": 152, "indmc": 153}

// indicatorGrids are the grids of an indicatorWorld: street S0 holds G00
// and G01, street S1 G10 and G11; each grid a 0.5 degree square, its
// attributes (households, population) as given.
var indicatorGrids = []struct {
	code, street string
	dx, dy       float64
	attributes   string
}{
	{"G00", "S0", 0, 0, `"households":200,"population":520`},
	{"G01", "S0", 0, 0.5, `"households":"300","population":"780"`},
	{"G10", "S1", 0.5, 0, `"note":"no residents recorded"`},
	{"G11", "S1", 0.5, 0.5, `"households":100,"population":0`},
}

// indicatorWorld is a district D of two streets and four grids (levels
// district, street, grid) at indicatorWorlds[id], a department and the
// category id-cat (3 working days), in the lookup index.
func indicatorWorld(t *testing.T, ts *testServer, id string) {
	t.Helper()
	if r := do(t, "PUT", ts.url+"/v1/layers/"+id, `{"levels":["district","street","grid"]}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	x := indicatorWorlds[id]
	f := func(code, level, parent, attrs, geom string) string {
		p := "null"
		if parent != "" {
			p = fmt.Sprintf("%q", id+"-"+parent)
		}
		if attrs != "" {
			attrs = "," + attrs
		}
		return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":"%s 网格","level":%q,"parent":%s%s},"geometry":%s}`,
			id+"-"+code, id+"-"+code, level, p, attrs, geom)
	}
	// The streets are columns of two grids each.
	column := func(x0 float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,-40],[%g,-40],[%g,-39],[%g,-39],[%g,-40]]]}`, x0, x0+0.5, x0+0.5, x0, x0)
	}
	features := []string{f("D", "district", "", "", square(x, -40, 1)), f("S0", "street", "D", "", column(x)),
		f("S1", "street", "D", "", column(x+0.5))}
	for _, g := range indicatorGrids {
		features = append(features, f(g.code, "grid", g.street, g.attributes, square(x+g.dx, -40+g.dy, 0.5)))
	}
	if r := do(t, "POST", ts.url+"/v1/layers/"+id+"/import",
		`{"type":"FeatureCollection","features":[`+strings.Join(features, ",")+`]}`); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	for _, s := range []struct{ path, body string }{
		{"/v1/departments/" + id + "-dept", `{"name":"Indicator department"}`},
		{"/v1/categories/" + id + "-cat", `{"name":"Indicator category","departments":["` + id + `-dept"],"limit":{"value":3,"clock":"working_days"}}`},
	} {
		if r := do(t, "PUT", ts.url+s.path, s.body); r.status/100 != 2 {
			t.Fatalf("%s: %d %s", s.path, r.status, r.body)
		}
	}
	p := indicatorPoint(id, "G11")
	eventuallyWithin(t, 10*time.Second, "the indicator layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", fmt.Sprintf("%s/v1/lookup?layer=%s&lon=%g&lat=%g", ts.url, id, p[0], p[1]), "").body), id+"-G11")
	})
}

// indicatorPoint is the centre of grid code of indicatorWorld id.
func indicatorPoint(id, code string) [2]float64 {
	for _, g := range indicatorGrids {
		if g.code == code {
			return [2]float64{indicatorWorlds[id] + g.dx + 0.25, -40 + g.dy + 0.25}
		}
	}
	panic("no grid " + code)
}

// fileIndicatorReport posts a report of id-cat in grid code, reported at,
// and returns its id.
func fileIndicatorReport(t *testing.T, base, id, externalID, code string, at time.Time) int64 {
	t.Helper()
	p := indicatorPoint(id, code)
	b, _ := json.Marshal(map[string]any{"external_id": id + "-" + externalID, "category": id + "-cat", "source": "test",
		"location": map[string]any{"type": "Point", "coordinates": p[:]}, "reported_at": at})
	r := do(t, "POST", base+"/v1/reports", string(b))
	if r.status != 201 {
		t.Fatalf("report %s: %d %s", externalID, r.status, r.body)
	}
	var created struct{ ID int64 }
	r.json(t, &created)
	return created.ID
}

// quietWeek is how many reports quiet grid g files in the week k weeks
// before the end of the window (1 to 3).
func quietWeek(g, k int) int { return 1 + (g+k)%3 }

// fillIndicatorWorld files the reports of the flags' acceptance test,
// as of now:
//   - G00, G01, G10 are quiet: quietWeek(g, k) reports in each of the 9
//     weeks before now (k = 0 the last), each then rejected (no deadline
//     runs, no rate), except that G00 gets a burst of 10 more in the last
//     week;
//   - G11 has 4 reports closed on time (filed now), 3 closed late and 1
//     open and overdue (filed 20 days ago): due 8, on time 4, a rate of
//     0.5, with 4 reports in the last week (below surge_min_count).
func fillIndicatorWorld(t *testing.T, base, id string, now time.Time) {
	t.Helper()
	at := func(k, j int) time.Time {
		return now.Add(-time.Duration(k)*7*24*time.Hour - time.Hour - time.Duration(j)*24*time.Hour)
	}
	for g, code := range []string{"G00", "G01", "G10"} {
		for k := range 9 {
			n := quietWeek(g, k)
			if code == "G00" && k == 0 {
				n += 10
			}
			for j := range n {
				moveReport(t, base, fileIndicatorReport(t, base, id, fmt.Sprintf("%s-%d-%d", code, k, j), code, at(k, j%5)), "reject")
			}
		}
	}
	old := now.AddDate(0, 0, -20)
	for i := range 4 {
		moveReport(t, base, fileIndicatorReport(t, base, id, fmt.Sprintf("G11-on-time-%d", i), "G11", now.Add(-time.Minute)), toClose...)
	}
	for i := range 3 {
		moveReport(t, base, fileIndicatorReport(t, base, id, fmt.Sprintf("G11-late-%d", i), "G11", old), toClose...)
	}
	moveReport(t, base, fileIndicatorReport(t, base, id, "G11-overdue", "G11", old), "register")
}

// getIndicator reads GET path?query into v, expecting 200.
func getIndicator(t *testing.T, base, path, query string, v any, header ...string) {
	t.Helper()
	r := do(t, "GET", base+path+"?"+query, "", header...)
	if r.status != 200 {
		t.Fatalf("%s?%s: %d %s", path, query, r.status, r.body)
	}
	r.json(t, v)
}

// putRules sets the rules, expecting 200.
func putRules(t *testing.T, base string, r gridmap.IndicatorRules) {
	t.Helper()
	b, _ := json.Marshal(r)
	if res := do(t, "PUT", base+"/v1/stats/rules", string(b)); res.status != 200 {
		t.Fatalf("PUT rules: %d %s", res.status, res.body)
	}
}

// flagNames lists flags as key/kind/indicator/category.
func flagNames(fl []gridmap.Flag) []string {
	var out []string
	for _, f := range fl {
		out = append(out, fmt.Sprintf("%s/%s/%s/%s", f.Key, f.Kind, f.Indicator, f.Category))
	}
	return out
}

func TestStatsFlags(t *testing.T) {
	ts := newTestServer(t, Config{})
	putRules(t, ts.url, gridmap.DefaultIndicatorRules())
	t.Cleanup(func() { putRules(t, ts.url, gridmap.DefaultIndicatorRules()) })
	indicatorWorld(t, ts, "indf")
	now := time.Now()
	fillIndicatorWorld(t, ts.url, "indf", now)

	var fl gridmap.Flags
	getIndicator(t, ts.url, "/v1/stats/flags", "layer=indf", &fl)
	want := []string{"indf-G00/surge/received/indf-cat", "indf-G11/threshold/on_time_rate/"}
	if fmt.Sprint(flagNames(fl.Flags)) != fmt.Sprint(want) {
		t.Fatalf("flags %v, want %v: %+v", flagNames(fl.Flags), want, fl.Flags)
	}
	if fl.Level != "grid" || fl.Rules != gridmap.DefaultIndicatorRules() || !fl.To.After(now) || fl.To.Sub(fl.From) != 30*24*time.Hour {
		t.Errorf("answer %s %+v %v %v", fl.Level, fl.Rules, fl.From, fl.To)
	}
	t.Run("the surge names the grid and category with its weeks", func(t *testing.T) {
		f := fl.Flags[0]
		var weeks []int64
		for k := 8; k >= 0; k-- {
			weeks = append(weeks, int64(quietWeek(0, k)))
		}
		weeks[8] += 10
		var sum, ss float64
		for _, n := range weeks[:8] {
			sum += float64(n)
		}
		mean := sum / 8
		for _, n := range weeks[:8] {
			ss += (float64(n) - mean) * (float64(n) - mean)
		}
		sd := math.Sqrt(ss / 8)
		if fmt.Sprint(f.Weeks) != fmt.Sprint(weeks) || f.Value != float64(weeks[8]) || f.Name != "indf-G00 网格" ||
			math.Abs(*f.BaselineMean-mean) > 1e-9 || math.Abs(*f.BaselineSD-sd) > 1e-9 || math.Abs(f.Limit-(mean+3*max(sd, 1))) > 1e-9 ||
			!strings.Contains(f.Reason, "indf-cat") {
			t.Errorf("surge %+v (mean %v, sd %v), want weeks %v", f, *f.BaselineMean, *f.BaselineSD, weeks)
		}
	})
	t.Run("the threshold flag has the hand-computed on-time rate", func(t *testing.T) {
		f := fl.Flags[1]
		if f.Value != 0.5 || f.Limit != 0.8 || f.BaselineMean != nil || f.Weeks != nil || !strings.Contains(f.Reason, "4 of 8") {
			t.Errorf("threshold %+v", f)
		}
	})
	t.Run("rules change the flags", func(t *testing.T) {
		r := gridmap.DefaultIndicatorRules()
		r.MinOnTimeRate, r.SurgeMinCount = 0.5, 20
		putRules(t, ts.url, r)
		var fl gridmap.Flags
		getIndicator(t, ts.url, "/v1/stats/flags", "layer=indf", &fl)
		if len(fl.Flags) != 0 || fl.Rules != r {
			t.Errorf("flags with %+v: %v", r, flagNames(fl.Flags))
		}
		r = gridmap.DefaultIndicatorRules()
		r.MaxOverdue, r.MinDue = 0, 9
		putRules(t, ts.url, r)
		getIndicator(t, ts.url, "/v1/stats/flags", "layer=indf", &fl)
		// 8 due is below min_due 9: no rate judged; 1 overdue is above 0.
		if got := fmt.Sprint(flagNames(fl.Flags)); got != "[indf-G00/surge/received/indf-cat indf-G11/threshold/overdue/]" {
			t.Errorf("flags with %+v: %s", r, got)
		}
		putRules(t, ts.url, gridmap.DefaultIndicatorRules())
	})
	t.Run("a window before the burst flags nothing", func(t *testing.T) {
		var fl gridmap.Flags
		to := now.Add(-8 * 24 * time.Hour).Format(time.RFC3339)
		getIndicator(t, ts.url, "/v1/stats/flags", "layer=indf&to="+url.QueryEscape(to), &fl)
		if len(fl.Flags) != 0 {
			t.Errorf("flags before the burst: %v", flagNames(fl.Flags))
		}
	})
	t.Run("a scoped caller sees its subtree's grids only", func(t *testing.T) {
		var fl gridmap.Flags
		getIndicator(t, ts.url, "/v1/stats/flags", "layer=indf", &fl, bearer(ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: "indf", Code: "indf-S1"}))...)
		if got := fmt.Sprint(flagNames(fl.Flags)); got != "[indf-G11/threshold/on_time_rate/]" {
			t.Errorf("scoped to S1: %s", got)
		}
	})
	t.Run("CSV: a header and a row per flag", func(t *testing.T) {
		recs := getCSV(t, ts.url+"/v1/stats/flags?layer=indf")
		if len(recs) != 3 || recs[0][0] != "key" || recs[1][0] != "indf-G00" || recs[1][2] != "surge" || recs[2][3] != "on_time_rate" ||
			recs[2][5] != "0.5" || recs[2][7] != "" || len(strings.Fields(recs[1][9])) != 9 {
			t.Errorf("CSV %q", recs)
		}
	})
	t.Run("bad input is 400 naming the parameter", func(t *testing.T) {
		for _, c := range []struct{ query, says string }{
			{"", "layer"}, {"layer=no-such-layer", "layer"}, {"layer=indf&level=tract", "level"},
			{"layer=indf&category=no-such", "category"}, {"layer=indf&from=2025-03-01T00:00:00Z&to=2025-02-01T00:00:00Z", "from"},
			{"layer=indf&to=soon", "to"},
		} {
			r := do(t, "GET", ts.url+"/v1/stats/flags?"+c.query, "")
			if r.status != 400 || !strings.Contains(r.errorOf(t).Message, c.says) {
				t.Errorf("%q: %d %s", c.query, r.status, r.body)
			}
		}
	})
}

// getCSV reads url with Accept: text/csv and parses the answer.
func getCSV(t *testing.T, u string) [][]string {
	t.Helper()
	r := do(t, "GET", u, "", "Accept", "text/csv")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("%s: %d %s %s", u, r.status, r.header.Get("Content-Type"), r.body)
	}
	recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestStatsFlagsRules(t *testing.T) {
	ts := newTestServer(t, Config{})
	putRules(t, ts.url, gridmap.DefaultIndicatorRules())
	t.Cleanup(func() { putRules(t, ts.url, gridmap.DefaultIndicatorRules()) })
	var got gridmap.IndicatorRules
	getIndicator(t, ts.url, "/v1/stats/rules", "", &got)
	if got != gridmap.DefaultIndicatorRules() {
		t.Fatalf("rules %+v", got)
	}
	good := `{"min_on_time_rate":0.8,"min_closure_rate":0.7,"max_rework_rate":0.2,"max_overdue":10,"min_due":5,"surge_sigma":3,"surge_weeks":8,"surge_min_count":5}`
	for _, c := range []struct{ name, from, to, field string }{
		{"on-time rate above 1", `"min_on_time_rate":0.8`, `"min_on_time_rate":1.5`, "min_on_time_rate"},
		{"closure rate below 0", `"min_closure_rate":0.7`, `"min_closure_rate":-0.1`, "min_closure_rate"},
		{"rework rate above 1", `"max_rework_rate":0.2`, `"max_rework_rate":2`, "max_rework_rate"},
		{"negative overdue", `"max_overdue":10`, `"max_overdue":-1`, "max_overdue"},
		{"negative min_due", `"min_due":5`, `"min_due":-5`, "min_due"},
		{"sigma 0", `"surge_sigma":3`, `"surge_sigma":0`, "surge_sigma"},
		{"one week", `"surge_weeks":8`, `"surge_weeks":1`, "surge_weeks"},
		{"53 weeks", `"surge_weeks":8`, `"surge_weeks":53`, "surge_weeks"},
		{"negative min count", `"surge_min_count":5`, `"surge_min_count":-1`, "surge_min_count"},
		{"a missing field", `"surge_min_count":5`, `"x":1`, "x"},
		{"a field left out", `,"surge_min_count":5`, ``, "surge_min_count"},
		{"weeks not a whole number", `"surge_weeks":8`, `"surge_weeks":8.5`, "surge_weeks"},
	} {
		t.Run(c.name+" is 400 and changes nothing", func(t *testing.T) {
			body := strings.Replace(good, c.from, c.to, 1)
			r := do(t, "PUT", ts.url+"/v1/stats/rules", body)
			if r.status != 400 || !strings.Contains(r.errorOf(t).Message, c.field) {
				t.Errorf("%s: %d %s", body, r.status, r.body)
			}
			var now gridmap.IndicatorRules
			getIndicator(t, ts.url, "/v1/stats/rules", "", &now)
			if now != gridmap.DefaultIndicatorRules() {
				t.Errorf("rules changed to %+v", now)
			}
		})
	}
	t.Run("only admins change the rules; viewers read them", func(t *testing.T) {
		for _, role := range []string{gridmap.RoleViewer, gridmap.RoleDispatcher, gridmap.RoleEditor} {
			if r := do(t, "PUT", ts.url+"/v1/stats/rules", good, bearer(ts.token(t, role, nil))...); r.status != 403 {
				t.Errorf("%s: %d %s", role, r.status, r.body)
			}
		}
		getIndicator(t, ts.url, "/v1/stats/rules", "", &got, bearer(ts.token(t, gridmap.RoleViewer, nil))...)
	})
	t.Run("a change is in the audit log with the rules before and after", func(t *testing.T) {
		if r := do(t, "PUT", ts.url+"/v1/stats/rules", strings.Replace(good, `"surge_weeks":8`, `"surge_weeks":12`, 1)); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var log struct {
			Entries []gridmap.AuditEntry `json:"entries"`
		}
		eventuallyWithin(t, 10*time.Second, "the audit entry", func() bool {
			do(t, "GET", ts.url+"/v1/audit?target=/v1/stats/rules", "").json(t, &log)
			for _, e := range log.Entries {
				if e.Status == 200 && e.Action == "PUT /v1/stats/rules" && strings.Contains(fmt.Sprint(e.After), "12") {
					return strings.Contains(fmt.Sprint(e.Before), "surge_weeks:8")
				}
			}
			return false
		})
	})
}

func TestWorkload(t *testing.T) {
	ts := newTestServer(t, Config{})
	indicatorWorld(t, ts, "indw")
	now := time.Now()
	fillIndicatorWorld(t, ts.url, "indw", now)
	from := now.Add(-28 * 24 * time.Hour)
	to := now.Add(time.Minute)
	q := "layer=indw&from=" + url.QueryEscape(from.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339Nano))
	var w gridmap.Workload
	getIndicator(t, ts.url, "/v1/stats/workload", q, &w)

	// By hand: the weeks k = 0..3 of the quiet grids, G00's burst, G11's 8.
	received := map[string]int64{"indw-G00": 10, "indw-G01": 0, "indw-G10": 0, "indw-G11": 8}
	for g, code := range []string{"indw-G00", "indw-G01", "indw-G10"} {
		for k := range 4 {
			received[code] += int64(quietWeek(g, k))
		}
	}
	// Independently, from the reports themselves.
	db := pgtest.Shared(t)
	for code, n := range received {
		var fromReports, open int64
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE status NOT IN ('closed', 'rejected'))
			FROM reports WHERE layer_id = 'indw' AND primary_code = $1 AND reported_at >= $2 AND reported_at < $3`, code, from, to).Scan(&fromReports, &open); err != nil {
			t.Fatal(err)
		}
		if fromReports != n {
			t.Errorf("%s: %d reports in SQL, %d by hand", code, fromReports, n)
		}
		for _, r := range w.Rows {
			if r.Key == code && (r.Received != n || r.Open != open) {
				t.Errorf("%s: %+v, want received %d, open %d", code, r, n, open)
			}
		}
	}
	per1000 := map[string]float64{"indw-G00": float64(received["indw-G00"]) / 520 * 1000, "indw-G01": float64(received["indw-G01"]) / 780 * 1000}
	mean := (per1000["indw-G00"] + per1000["indw-G01"]) / 2
	if len(w.Rows) != 4 || w.Rows[0].Key != "indw-G00" || w.Rows[1].Key != "indw-G01" || w.Level != "grid" {
		t.Fatalf("rows %+v", w.Rows)
	}
	near := func(p *float64, v float64) bool { return p != nil && math.Abs(*p-v) < 1e-9 }
	g00, g01, g10, g11 := w.Rows[0], w.Rows[1], w.Rows[2], w.Rows[3]
	if !near(w.MeanPer1000Residents, mean) || !near(g00.Per1000Residents, per1000["indw-G00"]) || !near(g00.LoadIndex, per1000["indw-G00"]/mean) ||
		!near(g00.Per100Households, float64(received["indw-G00"])/2) || !near(g00.Households, 200) || !near(g01.Population, 780) ||
		!near(g01.Per100Households, float64(received["indw-G01"])/3) {
		t.Errorf("mean %v, G00 %+v, G01 %+v", w.MeanPer1000Residents, g00, g01)
	}
	// Rows without an index come last, by key: G10 has no residents, G11 a
	// population of 0 (no rate) but 100 households.
	if g10.Key != "indw-G10" || g10.Households != nil || g10.Population != nil || g10.LoadIndex != nil || g10.Per1000Residents != nil ||
		g11.Key != "indw-G11" || g11.Per1000Residents != nil || g11.LoadIndex != nil || !near(g11.Per100Households, 8) || g11.Open != 1 {
		t.Errorf("G10 %+v, G11 %+v", g10, g11)
	}
	t.Run("a scoped caller sees its subtree's grids", func(t *testing.T) {
		var w gridmap.Workload
		getIndicator(t, ts.url, "/v1/stats/workload", q, &w, bearer(ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: "indw", Code: "indw-S0"}))...)
		if len(w.Rows) != 2 || w.Rows[0].Key != "indw-G00" || w.Rows[1].Key != "indw-G01" || w.Rows[0].Received != received["indw-G00"] {
			t.Errorf("scoped to S0: %+v", w.Rows)
		}
	})
	t.Run("CSV", func(t *testing.T) {
		recs := getCSV(t, ts.url+"/v1/stats/workload?"+q)
		if len(recs) != 5 || recs[0][8] != "load_index" || recs[1][0] != "indw-G00" || recs[1][2] != "200" || recs[3][2] != "" ||
			recs[4][4] != "8" {
			t.Errorf("CSV %q", recs)
		}
	})
}

func TestTrend(t *testing.T) {
	ts := newTestServer(t, Config{})
	indicatorWorld(t, ts, "indt")
	now := time.Now()
	fillIndicatorWorld(t, ts.url, "indt", now)
	from := now.AddDate(0, 0, -40)
	to := now.Add(time.Minute)
	window := "from=" + url.QueryEscape(from.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339Nano))
	for _, code := range []string{"indt-G00", "indt-G11"} {
		st := getStats(t, ts.url, "layer=indt&group=grid&level=grid&"+window)
		var row gridmap.StatsFigures
		for _, r := range st.Rows {
			if r.Key == code {
				row = r.StatsFigures
			}
		}
		for _, bucket := range []string{"day", "week", "month"} {
			t.Run(code+" by "+bucket+" sums to the stats", func(t *testing.T) {
				var tr gridmap.Trend
				getIndicator(t, ts.url, "/v1/stats/trend", "layer=indt&code="+code+"&bucket="+bucket+"&"+window, &tr)
				var sum gridmap.TrendPoint
				for i, p := range tr.Points {
					sum.Received += p.Received
					sum.Registered += p.Registered
					sum.Closed += p.Closed
					sum.ClosedOnTime += p.ClosedOnTime
					sum.Overdue += p.Overdue
					if i > 0 && !p.Start.After(tr.Points[i-1].Start) {
						t.Errorf("bucket %d starts at %v", i, p.Start)
					}
				}
				if sum.Received != row.Received || sum.Registered != row.Registered || sum.Closed != row.Closed ||
					sum.ClosedOnTime != row.ClosedOnTime || sum.Overdue != row.Overdue || row.Received == 0 {
					t.Errorf("trend sums %+v, stats %+v", sum, row)
				}
				first := tr.Points[0].Start.In(shanghai)
				if tr.TimeZone != "Asia/Shanghai" || tr.Name != code+" 网格" || first.After(from) || first.Hour() != 0 ||
					!tr.Points[len(tr.Points)-1].Start.Before(to) {
					t.Errorf("trend %s %s, first bucket %v, last %v", tr.TimeZone, tr.Name, first, tr.Points[len(tr.Points)-1].Start)
				}
				if bucket == "day" && (len(tr.Points) < 41 || len(tr.Points) > 42) {
					t.Errorf("%d days", len(tr.Points))
				}
				if bucket == "week" && first.Weekday() != time.Monday {
					t.Errorf("week starts on %v", first.Weekday())
				}
			})
		}
	}
	t.Run("every bucket is present, empty ones with zeros", func(t *testing.T) {
		var tr gridmap.Trend
		getIndicator(t, ts.url, "/v1/stats/trend", "layer=indt&code=indt-G11&bucket=day&"+window, &tr)
		zeros := 0
		for _, p := range tr.Points {
			if p.Received == 0 {
				zeros++
			}
		}
		if zeros < 35 {
			t.Errorf("%d empty days of %d", zeros, len(tr.Points))
		}
	})
	t.Run("by default the 12 weeks before now, by week", func(t *testing.T) {
		var tr gridmap.Trend
		getIndicator(t, ts.url, "/v1/stats/trend", "layer=indt&code=indt-G00", &tr)
		if tr.Bucket != "week" || len(tr.Points) < 12 || len(tr.Points) > 13 || tr.To.Sub(tr.From) != 84*24*time.Hour {
			t.Errorf("default %s, %d points, %v to %v", tr.Bucket, len(tr.Points), tr.From, tr.To)
		}
	})
	t.Run("CSV", func(t *testing.T) {
		recs := getCSV(t, ts.url+"/v1/stats/trend?layer=indt&code=indt-G11&bucket=week&"+window)
		if len(recs) < 6 || recs[0][0] != "start" || len(recs[1]) != 6 {
			t.Errorf("CSV %q", recs)
		}
		if _, err := time.Parse(time.RFC3339, recs[1][0]); err != nil {
			t.Error(err)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		scoped := bearer(ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: "indt", Code: "indt-S0"}))
		for _, c := range []struct {
			name, query string
			status      int
			header      []string
		}{
			{"more than 400 buckets", "layer=indt&code=indt-G00&bucket=day&from=2024-01-01T00:00:00Z&to=2025-06-01T00:00:00Z", 400, nil},
			{"an unknown bucket", "layer=indt&code=indt-G00&bucket=hour", 400, nil},
			{"no code", "layer=indt", 400, nil},
			{"an unknown grid", "layer=indt&code=indt-G99", 404, nil},
			{"a grid outside the caller's area", "layer=indt&code=indt-G11", 404, scoped},
		} {
			r := do(t, "GET", ts.url+"/v1/stats/trend?"+c.query, "", c.header...)
			if r.status != c.status {
				t.Errorf("%s: %d %s", c.name, r.status, r.body)
			}
		}
		var tr gridmap.Trend
		getIndicator(t, ts.url, "/v1/stats/trend", "layer=indt&code=indt-G00", &tr, scoped...)
	})
}

// TestStatsFlagsManyClients runs flags, workload, trend and rules PUT
// from many goroutines at once over a pool of 2 connections: every answer
// is 200 and right, whichever of two equivalent rule sets is in force.
func TestStatsFlagsManyClients(t *testing.T) {
	ts := newTestServer(t, Config{})
	putRules(t, ts.url, gridmap.DefaultIndicatorRules())
	t.Cleanup(func() { putRules(t, ts.url, gridmap.DefaultIndicatorRules()) })
	indicatorWorld(t, ts, "indmc")
	now := time.Now()
	fillIndicatorWorld(t, ts.url, "indmc", now)
	small := pgtest.SharedWith(t, postgres.Options{MaxConns: 2})
	stats := postgres.NewStatsStore(small)
	s := New(Config{}, Deps{Layers: postgres.NewLayerStore(small), Categories: postgres.NewCategoryStore(small),
		Reports: postgres.NewReportStore(small, ts.locator, shanghai), Stats: stats,
		Indicators: postgres.NewIndicatorStore(small, stats, shanghai), Access: ts.access,
		Ready: func(context.Context) error { return nil }}, slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	signInAsAdmin(t, ts.access, hs.Listener.Addr().String())

	// Two rule sets that raise the same flags here.
	a, b := gridmap.DefaultIndicatorRules(), gridmap.DefaultIndicatorRules()
	b.MaxReworkRate, b.MaxOverdue = 0.3, 5
	wantFlags := "[indmc-G00/surge/received/indmc-cat indmc-G11/threshold/on_time_rate/]"
	var wantWorkload, wantTrend string
	{
		var w gridmap.Workload
		getIndicator(t, hs.URL, "/v1/stats/workload", "layer=indmc", &w)
		wb, _ := json.Marshal(w.Rows)
		wantWorkload = string(wb)
		var tr gridmap.Trend
		getIndicator(t, hs.URL, "/v1/stats/trend", "layer=indmc&code=indmc-G00&bucket=week", &tr)
		tb, _ := json.Marshal(tr.Points)
		wantTrend = string(tb)
	}
	const clients, rounds = 8, 6
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				switch (c + i) % 4 {
				case 0:
					var fl gridmap.Flags
					getIndicator(t, hs.URL, "/v1/stats/flags", "layer=indmc", &fl)
					if got := fmt.Sprint(flagNames(fl.Flags)); got != wantFlags || (fl.Rules != a && fl.Rules != b) {
						t.Errorf("flags %s with %+v", got, fl.Rules)
					}
				case 1:
					var w gridmap.Workload
					getIndicator(t, hs.URL, "/v1/stats/workload", "layer=indmc", &w)
					if got, _ := json.Marshal(w.Rows); string(got) != wantWorkload {
						t.Errorf("workload %s, want %s", got, wantWorkload)
					}
				case 2:
					var tr gridmap.Trend
					getIndicator(t, hs.URL, "/v1/stats/trend", "layer=indmc&code=indmc-G00&bucket=week", &tr)
					if got, _ := json.Marshal(tr.Points); string(got) != wantTrend {
						t.Errorf("trend %s, want %s", got, wantTrend)
					}
				case 3:
					r := a
					if i%2 == 1 {
						r = b
					}
					putRules(t, hs.URL, r)
				}
			}
		}()
	}
	wg.Wait()
}
