package server

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
)

func TestRecurringProblems(t *testing.T) {
	ts := newTestServer(t, Config{})
	setUpReportLayer(t, ts, "recu", 136.5)
	for _, code := range []string{"rec-a", "rec-b"} {
		if r := do(t, "PUT", ts.url+"/v1/categories/"+code, `{"name":"`+code+`","limit":{"value":4,"clock":"urgent_hours"}}`); r.status/100 != 2 {
			t.Fatalf("category %s: %d %s", code, r.status, r.body)
		}
	}
	run := time.Now().UnixNano()
	march := time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai)
	// Ten reports of rec-a within 30 m of each other over a month, in
	// street RECUA, and as many in RECUB, 1 km east.
	cluster := func(lon, lat float64, name string) []int64 {
		var ids []int64
		for i := range 10 {
			dx, dy := float64(i%3)*4, float64(i/3)*4 // metres: at most 8 by 12 apart
			r := reportAt(t, ts, fmt.Sprintf("rec-%s-%d-%d", name, run, i), "rec-a",
				lon+dx/(111_000*math.Cos(lat*math.Pi/180)), lat+degreesNorth(dy), march.Add(time.Duration(i)*3*24*time.Hour))
			ids = append(ids, r.ID)
		}
		return ids
	}
	inA := cluster(136.505, 31.505, "a")
	inB := cluster(136.515, 31.505, "b")
	farAway := reportAt(t, ts, fmt.Sprintf("rec-far-%d", run), "rec-a", 136.505, 31.505+degreesNorth(200), march.Add(10*24*time.Hour))
	otherKind := reportAt(t, ts, fmt.Sprintf("rec-other-%d", run), "rec-b", 136.505, 31.505, march.Add(10*24*time.Hour))

	window := "layer=recu&from=2026-03-01T00:00:00%2B08:00&to=2026-04-01T00:00:00%2B08:00"
	problems := func(t *testing.T, query string, header ...string) []gridmap.RecurringProblem {
		t.Helper()
		r := do(t, "GET", ts.url+"/v1/recurring?"+query, "", header...)
		if r.status != 200 {
			t.Fatalf("GET /v1/recurring?%s: %d %s", query, r.status, r.body)
		}
		var body struct{ Problems []gridmap.RecurringProblem }
		r.json(t, &body)
		return body.Problems
	}
	t.Run("ten reports of one category within 30 m over a month form one recurring problem", func(t *testing.T) {
		ps := problems(t, window+"&category=rec-a&within_m=30&min=10")
		if len(ps) != 2 {
			t.Fatalf("%d problems, want 2 (one a street): %+v", len(ps), ps)
		}
		for _, p := range ps {
			want, grid, lon := inA, "RECUA", 136.505
			if slices.Contains(p.Members, inB[0]) {
				want, grid, lon = inB, "RECUB", 136.515
			}
			if p.Count != 10 || !slices.Equal(p.Members, want) || p.Category != "rec-a" || !slices.Equal(p.Grids, []string{grid}) {
				t.Errorf("problem %+v, want members %v in %s", p, want, grid)
			}
			if !p.First.Equal(march) || !p.Last.Equal(march.Add(27*24*time.Hour)) {
				t.Errorf("first %s last %s", p.First, p.Last)
			}
			center, ok := p.Center.Geometry().(orb.Point)
			if !ok || geo.Distance(center, orb.Point{lon, 31.505}) > 15 || p.RadiusM <= 0 || p.RadiusM > 15 {
				t.Errorf("center %v radius %v m, want within 15 m of %v", p.Center.Geometry(), p.RadiusM, lon)
			}
		}
	})
	t.Run("a report 200 m away or of another category is no member", func(t *testing.T) {
		for _, p := range problems(t, window+"&min=10") {
			if slices.Contains(p.Members, farAway.ID) || slices.Contains(p.Members, otherKind.ID) {
				t.Errorf("problem %+v holds report %d or %d", p, farAway.ID, otherKind.ID)
			}
		}
		if ps := problems(t, window+"&category=rec-a&min=11"); len(ps) != 0 {
			t.Errorf("min=11: %+v, want none", ps)
		}
		if ps := problems(t, "layer=recu&category=rec-a&from=2026-04-01T00:00:00Z&to=2026-05-01T00:00:00Z"); len(ps) != 0 {
			t.Errorf("April: %+v, want none", ps)
		}
	})
	t.Run("a scoped caller sees only the problems of its subtree", func(t *testing.T) {
		for _, c := range []struct {
			code string
			want []int64
		}{{"RECUA", inA}, {"RECUB", inB}} {
			token := ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: "recu", Code: c.code})
			ps := problems(t, window+"&category=rec-a", bearer(token)...)
			if len(ps) != 1 || !slices.Equal(ps[0].Members, c.want) {
				t.Errorf("scoped to %s: %+v, want one problem of %v", c.code, ps, c.want)
			}
		}
	})
	for _, bad := range []struct{ query, names string }{
		{"within_m=abc", "within_m"},
		{"within_m=0", "within_m"},
		{"within_m=5000", "within_m"},
		{"min=1", "min"},
		{"min=ten", "min"},
		{"from=yesterday", "from"},
		{"from=2026-04-01T00:00:00Z&to=2026-03-01T00:00:00Z", "before"},
		{"from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "shorter window"},
		{"category=no-such-category", "no-such-category"},
	} {
		t.Run(bad.query+" is a 400 naming "+bad.names, func(t *testing.T) {
			r := do(t, "GET", ts.url+"/v1/recurring?"+bad.query, "")
			if e := r.errorOf(t); r.status != 400 || e.Code != gridmap.EINVALID || !strings.Contains(e.Message, bad.names) {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
}
