package server

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestAssessment: workers file reports (recorded as theirs) and patrol; a
// leader visits; the assessment of the window lays side by side what each
// worker did, each grid's reports as GET /v1/stats counts them and its
// patrol coverage as GET /v1/patrol/coverage answers it, and the leaders'
// figures; a street's dispatcher gets that street's; viewers may not see
// it; bad queries say what to fix; each table downloads as CSV.
func TestAssessment(t *testing.T) {
	w := newPatrolWorld(t, "assess", 71.3)
	ts := w.ts
	dispatcher := bearer(ts.token(t, gridmap.RoleDispatcher, nil))
	street := bearer(ts.token(t, gridmap.RoleDispatcher, &gridmap.Scope{Layer: w.layer, Code: "PS2"}))
	viewer := bearer(ts.token(t, gridmap.RoleViewer, nil))
	if r := do(t, "PUT", ts.url+"/v1/categories/assess-litter", `{"name":"Litter","departments":[],"limit":{"value":2,"clock":"working_days"}}`); r.status/100 != 2 {
		t.Fatalf("category: %d %s", r.status, r.body)
	}

	// Two days ago in Shanghai, PG11's worker walked for an hour and PG21's
	// for ten minutes; PG11's worker files three reports (one closed) and
	// a token files one in PG11.
	now := time.Now().In(shanghai)
	day := time.Date(now.Year(), now.Month(), now.Day(), 10, 0, 0, 0, shanghai).AddDate(0, 0, -2)
	for _, s := range []struct {
		key string
		n   int
		lon float64
	}{{"PG11", 60, 71.3085}, {"PG21", 10, 71.3285}} {
		if r := w.send(t, s.key, trackBody("phone", day, s.n, s.lon, -31.02)); r.status != 200 {
			t.Fatalf("track of %s: %d %s", s.key, r.status, r.body)
		}
	}
	file := func(id string, header ...string) int64 {
		t.Helper()
		r := do(t, "POST", ts.url+"/v1/reports", `{"external_id":"`+id+`","category":"assess-litter","location":{"type":"Point","coordinates":[71.305,-31.03]}}`, header...)
		var rep gridmap.Report
		if r.status != 201 {
			t.Fatalf("report %s: %d %s", id, r.status, r.body)
		}
		r.json(t, &rep)
		return rep.ID
	}
	var filed []int64
	for i := range 3 {
		filed = append(filed, file(fmt.Sprintf("assess-%d", i), w.workers["PG11"]...))
	}
	file("assess-token")
	moveReport(t, ts.url, filed[0], toClose...)
	r := do(t, "GET", fmt.Sprintf("%s/v1/reports/%d", ts.url, filed[1]), "")
	var rep gridmap.Report
	if r.json(t, &rep); rep.FiledBy != w.names["PG11"] {
		t.Errorf("report %d filed by %q; want %q", filed[1], rep.FiledBy, w.names["PG11"])
	}

	from := day.AddDate(0, 0, -1).Truncate(time.Hour)
	from = time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, shanghai)
	window := "layer=" + w.layer + "&from=" + from.Format(time.RFC3339)
	var a gridmap.Assessment
	if r := do(t, "GET", ts.url+"/v1/assessment?"+strings.ReplaceAll(window, "+", "%2B"), "", dispatcher...); r.status != 200 {
		t.Fatalf("assessment: %d %s", r.status, r.body)
	} else {
		r.json(t, &a)
	}
	yesterday := now.AddDate(0, 0, -1).Format(time.DateOnly)
	if a.Level != "grid" || a.FirstDay != from.Format(time.DateOnly) || a.LastDay != yesterday || a.Days != 3 || a.MeasuredDays != 3 {
		t.Errorf("assessment of level %s, days %s to %s (%d); want grid, %s to %s (3)", a.Level, a.FirstDay, a.LastDay, a.Days,
			from.Format(time.DateOnly), yesterday)
	}
	workers := map[string]gridmap.WorkerAssessment{}
	for _, x := range a.Workers {
		workers[x.Worker] = x
	}
	if len(workers) != 5 {
		t.Errorf("%d workers assessed; want the 5 of the layer: %+v", len(workers), a.Workers)
	}
	pg11 := workers[w.names["PG11"]]
	if pg11.Grid != "PG11" || pg11.Filed != 3 || pg11.FiledClosed != 1 || pg11.FiledClosedOnTime != 1 || pg11.PatrolDays != 1 || pg11.Points != 60 {
		t.Errorf("PG11's worker: %+v; want 3 filed, 1 closed on time, 1 day of 60 points", pg11)
	}
	if pg22 := workers[w.names["PG22"]]; pg22.Filed != 0 || pg22.PatrolDays != 0 || pg22.GridCoverage == nil || *pg22.GridCoverage != 0 {
		t.Errorf("PG22's worker did nothing: %+v", pg22)
	}

	// Each grid's figures are those the indicators and the coverage give.
	st := getStats(t, ts.url, "group=grid&"+strings.ReplaceAll(window, "+", "%2B")+"&to="+strings.ReplaceAll(a.To.Format(time.RFC3339Nano), "+", "%2B"), dispatcher...)
	stats := map[string]gridmap.StatsFigures{}
	for _, row := range st.Rows {
		stats[row.Key] = row.StatsFigures
	}
	var cov gridmap.PatrolCoverage
	if r := do(t, "GET", ts.url+"/v1/patrol/coverage?layer="+w.layer+"&day="+day.Format(time.DateOnly), "", dispatcher...); r.status != 200 {
		t.Fatalf("coverage: %d %s", r.status, r.body)
	} else {
		r.json(t, &cov)
	}
	covered := map[string]float64{}
	for _, row := range cov.Rows {
		covered[row.Code] = row.Coverage
	}
	if len(a.Grids) != 4 {
		t.Fatalf("%d grids assessed; want 4: %+v", len(a.Grids), a.Grids)
	}
	for _, g := range a.Grids {
		if g.Reports.Received != stats[g.Code].Received || g.Reports.ClosedOnTime != stats[g.Code].ClosedOnTime {
			t.Errorf("%s: reports %+v; the indicators say %+v", g.Code, g.Reports, stats[g.Code])
		}
		// Three days measured, one of them walked: the mean is a third of
		// that day's.
		if g.MeasuredDays != 3 || g.Coverage == nil || !near(*g.Coverage, covered[g.Code]/3) {
			t.Errorf("%s: %d days measured, coverage %v; want 3 and a third of %v", g.Code, g.MeasuredDays, derefFloat(g.Coverage), covered[g.Code])
		}
		if walked := g.Code == "PG11" || g.Code == "PG21"; walked != (g.PatrolledDays == 1) || walked != (covered[g.Code] > 0) {
			t.Errorf("%s: patrolled %d days, coverage that day %v", g.Code, g.PatrolledDays, covered[g.Code])
		}
	}
	if a.Grids[0].Code != "PG11" || a.Grids[0].Filed != 3 || a.Grids[0].Reports.Received != 4 || a.Grids[0].Workers != 1 {
		t.Errorf("PG11: %+v; want 3 filed by its worker of 4 received", a.Grids[0])
	}

	t.Run("a street's dispatcher gets the street's", func(t *testing.T) {
		var s gridmap.Assessment
		r := do(t, "GET", ts.url+"/v1/assessment?"+strings.ReplaceAll(window, "+", "%2B"), "", street...)
		if r.json(t, &s); r.status != 200 || len(s.Grids) != 2 || s.Grids[0].Code != "PG21" || len(s.Workers) != 2 {
			t.Errorf("PS2's assessment: %d grids %+v, workers %+v", len(s.Grids), s.Grids, s.Workers)
		}
	})

	t.Run("each table downloads as CSV", func(t *testing.T) {
		for of, rows := range map[string]int{"workers": 5, "grids": 4, "leaders": len(a.Leaders)} {
			r := do(t, "GET", ts.url+"/v1/assessment?of="+of+"&"+strings.ReplaceAll(window, "+", "%2B"), "", append(dispatcher, "Accept", "text/csv")...)
			recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
			if r.status != 200 || err != nil || len(recs) != rows+1 {
				t.Errorf("CSV of %s: %d, %d records (%v); want a header and %d rows:\n%s", of, r.status, len(recs), err, rows, r.body)
			}
		}
	})

	t.Run("bad queries say what to fix, and measure nothing", func(t *testing.T) {
		var runs int
		countRuns := func() int {
			t.Helper()
			var n int
			if err := pgtest.Shared(t).Pool.QueryRow(context.Background(), `SELECT count(*) FROM patrol_day_runs`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		runs = countRuns()
		defer func() {
			if n := countRuns(); n != runs {
				t.Errorf("%d days kept after the bad queries; %d before", n, runs)
			}
		}()
		for _, tc := range []struct {
			query  string
			header []string
			status int
			says   string
		}{
			{window, viewer, 403, "dispatcher role"},
			{window + "&of=people", dispatcher, 400, "workers, grids or leaders"},
			{"layer=" + w.layer + "&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", dispatcher, 400, "366"},
			{"layer=" + w.layer + "&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", dispatcher, 400, "must be after"},
			{"layer=nosuch", dispatcher, 404, "nosuch"},
			{window + "&level=street", dispatcher, 400, "leave level out"},
			{"layer=" + w.layer + "&from=2026-01-01", dispatcher, 400, "from"},
		} {
			r := do(t, "GET", ts.url+"/v1/assessment?"+strings.ReplaceAll(tc.query, "+", "%2B"), "", tc.header...)
			if r.status != tc.status || !strings.Contains(string(r.body), tc.says) {
				t.Errorf("%s: %d %s; want %d saying %q", tc.query, r.status, r.body, tc.status, tc.says)
			}
		}
	})

	t.Run("API.md's /v1/patrol", func(t *testing.T) {
		for _, tc := range []struct {
			query string
			codes string
		}{{"", "PG11 PG12 PG21 PG22"}, {"&parent=PS1", "PG11 PG12"}, {"&parent=PD", "PG11 PG12 PG21 PG22"}, {"&grid=PG21", "PG21"}} {
			var c gridmap.PatrolCoverage
			r := do(t, "GET", ts.url+"/v1/patrol?layer="+w.layer+"&date="+day.Format(time.DateOnly)+tc.query, "", dispatcher...)
			r.json(t, &c)
			var codes []string
			for _, row := range c.Rows {
				codes = append(codes, row.Code)
				if row.Coverage != covered[row.Code] {
					t.Errorf("%s: %s covered %v; /v1/patrol/coverage says %v", tc.query, row.Code, row.Coverage, covered[row.Code])
				}
			}
			if r.status != 200 || strings.Join(codes, " ") != tc.codes {
				t.Errorf("/v1/patrol%s: %d %v; want %s", tc.query, r.status, codes, tc.codes)
			}
		}
		if r := do(t, "GET", ts.url+"/v1/patrol?layer="+w.layer+"&parent=PS9", "", dispatcher...); r.status != 404 {
			t.Errorf("an unknown parent: %d %s; want 404", r.status, r.body)
		}
	})
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func derefFloat(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
