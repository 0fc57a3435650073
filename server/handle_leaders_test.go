package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// checkInAnswer is the answer of POST /v1/checkins.
type checkInAnswer struct {
	ID        int64
	Lon, Lat  float64
	Visit     bool
	Imprecise bool
	Layer     *string
	Grid      *string
	DistanceM *float64 `json:"distance_m"`
}

// checkIn posts a check-in as the session of header and decodes a 201.
func checkIn(t *testing.T, ts *testServer, body map[string]any, header []string) checkInAnswer {
	t.Helper()
	b, _ := json.Marshal(body)
	r := do(t, "POST", ts.url+"/v1/checkins", string(b), header...)
	if r.status != 201 {
		t.Fatalf("check-in %s: %d %s", b, r.status, r.body)
	}
	var a checkInAnswer
	r.json(t, &a)
	return a
}

// sessionHeader signs in and returns the headers of the session's writes.
func sessionHeader(t *testing.T, ts *testServer, username, password string) []string {
	t.Helper()
	ck, csrf := signIn(t, ts, username, password)
	return []string{"Cookie", ck.Name + "=" + ck.Value, csrfHeader, csrf}
}

// gcjWorld is a layer p17gcj of two grids at Urumqi, in mainland China
// where GCJ-02 shifts coordinates: A around the WGS84 point w, B around
// w shifted to GCJ-02, each too small to reach the other. A GCJ-02
// check-in at the shifted point belongs in A; read as WGS84 it would land
// in B.
func gcjWorld(t *testing.T, ts *testServer) (w, g [2]float64) {
	t.Helper()
	w = [2]float64{87.61, 43.81}
	g[0], g[1] = geo.WGS84ToGCJ02(w[0], w[1])
	side := max(math.Abs(g[0]-w[0]), math.Abs(g[1]-w[1])) / 2
	if side < 0.0005 {
		t.Fatalf("the GCJ-02 shift at %v is only %v, %v: too small for the test", w, g[0]-w[0], g[1]-w[1])
	}
	if r := do(t, "PUT", ts.url+"/v1/layers/p17gcj", `{"levels":["grid"],"tolerance_m":0}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	f := func(code string, c [2]float64) string {
		return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":%q,"level":"grid"},"geometry":%s}`,
			code, code, square(c[0]-side/2, c[1]-side/2, side))
	}
	if r := do(t, "POST", ts.url+"/v1/layers/p17gcj/import", `{"type":"FeatureCollection","features":[`+f("p17gcj-A", w)+","+f("p17gcj-B", g)+`]}`); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	return w, g
}

// requiredByHand is perMonth visits over [from, to) in Shanghai's months,
// for a window spanning at most two months.
func requiredByHand(perMonth int, from, to time.Time) float64 {
	f, e := from.In(shanghai), to.In(shanghai)
	monthHours := func(t time.Time) float64 {
		start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, shanghai)
		return start.AddDate(0, 1, 0).Sub(start).Hours()
	}
	if f.Month() == e.Month() {
		return math.Round(float64(perMonth)*to.Sub(from).Hours()/monthHours(f)*100) / 100
	}
	split := time.Date(e.Year(), e.Month(), 1, 0, 0, 0, 0, shanghai)
	return math.Round((float64(perMonth)*split.Sub(from).Hours()/monthHours(f)+float64(perMonth)*to.Sub(split).Hours()/monthHours(e))*100) / 100
}

// TestLeaderCheckIns: a check-in in an assigned grid (or one below it) is
// a visit; one 300 m outside is recorded with its distance as PostGIS
// measures it; a GCJ-02 check-in is converted first and lands in the
// right grid; bad check-ins are 400s that store nothing; reports filed or
// resolved during a visit count as on-site work; the leaders' figures
// equal the hand-counted ones, and a scoped caller sees the leaders of its
// area.
func TestLeaderCheckIns(t *testing.T) {
	ts := newTestServer(t, Config{})
	db := pgtest.Shared(t)
	const id = "p17lead"
	partyWorld(t, ts, id)
	w, g := gcjWorld(t, ts)
	addAccount(t, ts, gridmap.Account{Username: "p17.leader", DisplayName: "包联领导", Role: gridmap.RoleDispatcher}, "leader password 17")
	addAccount(t, ts, gridmap.Account{Username: "p17.leader2", Role: gridmap.RoleReporter}, "leader password 17")
	addAccount(t, ts, gridmap.Account{Username: "p17.nobody", Role: gridmap.RoleReporter}, "leader password 17")
	addAccount(t, ts, gridmap.Account{Username: "p17.scoped", Role: gridmap.RoleReporter, Scope: &gridmap.Scope{Layer: id, Code: id + "-S0"}}, "leader password 17")

	assign := `{"grids":[{"layer":"p17lead","code":"p17lead-G00"},{"layer":"p17lead","code":"p17lead-G01"},{"layer":"p17lead","code":"p17lead-S1"},
		{"layer":"p17gcj","code":"p17gcj-A"},{"layer":"p17gcj","code":"p17gcj-B"}],"visits_per_month":8}`
	t.Run("assignments", func(t *testing.T) {
		for _, tc := range []struct {
			name, user, body string
			header           []string
			status           int
			says             string
		}{
			{"unknown grid", "p17.leader", strings.Replace(assign, "p17lead-G01", "p17lead-G77", 1), nil, 400, "p17lead-G77"},
			{"too many visits", "p17.leader", strings.Replace(assign, ":8", ":1000", 1), nil, 400, "visits_per_month"},
			{"no grids", "p17.leader", `{"visits_per_month":2}`, nil, 400, "grids is required"},
			{"a grid twice", "p17.leader", strings.Replace(assign, "p17lead-G01", "p17lead-G00", 1), nil, 400, "twice"},
			{"unknown account", "p17.nobody.at.all", assign, nil, 404, "p17.nobody.at.all"},
			{"not an admin", "p17.leader", assign, []string{"Authorization", "Bearer " + ts.token(t, gridmap.RoleEditor, nil)}, 403, "admin"},
			{"a scoped admin", "p17.leader", assign, []string{"Authorization", "Bearer " + ts.token(t, gridmap.RoleAdmin, &gridmap.Scope{Layer: id, Code: id + "-D"})}, 403, "whole service"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := do(t, "PUT", ts.url+"/v1/leaders/"+tc.user+"/assignments", tc.body, tc.header...)
				if r.status != tc.status || !strings.Contains(r.errorOf(t).Message, tc.says) {
					t.Errorf("%d %s; want %d saying %q", r.status, r.body, tc.status, tc.says)
				}
				if r := do(t, "GET", ts.url+"/v1/leaders/p17.leader/assignments", ""); r.status != 404 {
					t.Errorf("after a refused PUT the account is a leader: %d %s", r.status, r.body)
				}
			})
		}
		if r := do(t, "PUT", ts.url+"/v1/leaders/p17.leader/assignments", assign); r.status != 200 {
			t.Fatalf("PUT: %d %s", r.status, r.body)
		}
		if r := do(t, "PUT", ts.url+"/v1/leaders/p17.leader2/assignments", `{"grids":[{"layer":"p17lead","code":"p17lead-G10"}],"visits_per_month":4}`); r.status != 200 {
			t.Fatalf("PUT leader2: %d %s", r.status, r.body)
		}
		var a gridmap.LeaderAssignments
		r := do(t, "GET", ts.url+"/v1/leaders/p17.leader/assignments", "", sessionHeader(t, ts, "p17.leader", "leader password 17")...)
		r.json(t, &a)
		if r.status != 200 || len(a.Grids) != 5 || a.VisitsPerMonth != 8 || a.Grids[2].Code != "p17lead-G00" || a.Grids[2].Level != "grid" {
			t.Fatalf("GET as the leader: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", ts.url+"/v1/leaders/p17.leader/assignments", "", sessionHeader(t, ts, "p17.leader2", "leader password 17")...); r.status != 200 {
			t.Errorf("GET as another leader: %d %s", r.status, r.body)
		}
		s0 := []string{"Authorization", "Bearer " + ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: id, Code: id + "-S0"})}
		if r := do(t, "GET", ts.url+"/v1/leaders/p17.leader2/assignments", "", s0...); r.status != 404 {
			t.Errorf("GET a leader outside a scoped caller's area: %d %s", r.status, r.body)
		}
		var inS0 gridmap.LeaderAssignments
		r = do(t, "GET", ts.url+"/v1/leaders/p17.leader/assignments", "", s0...)
		if r.json(t, &inS0); r.status != 200 || fmt.Sprint(leaderCodes(inS0.Grids)) != "[p17lead-G00 p17lead-G01]" {
			t.Errorf("GET a leader inside a scoped caller's area: %d %s; want only its grids in S0", r.status, r.body)
		}
	})
	t.Run("one 404 for an account a scoped caller may not see", func(t *testing.T) {
		s0 := []string{"Authorization", "Bearer " + ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: id, Code: id + "-S0"})}
		var first string
		for _, user := range []string{"p17.nobody.at.all", "p17.nobody", "p17.leader2"} {
			r := do(t, "GET", ts.url+"/v1/leaders/"+user+"/assignments", "", s0...)
			msg := strings.Replace(r.errorOf(t).Message, user, "USER", 1)
			if first == "" {
				first = msg
			}
			if r.status != 404 || msg != first {
				t.Errorf("%s: %d %q; want 404 %q", user, r.status, msg, first)
			}
		}
	})
	t.Run("a scoped leader reads all its own grids", func(t *testing.T) {
		if r := do(t, "PUT", ts.url+"/v1/leaders/p17.scoped/assignments", `{"grids":[{"layer":"p17lead","code":"p17lead-G10"}],"visits_per_month":1}`); r.status != 200 {
			t.Fatalf("PUT: %d %s", r.status, r.body)
		}
		var a gridmap.LeaderAssignments
		r := do(t, "GET", ts.url+"/v1/leaders/p17.scoped/assignments", "", sessionHeader(t, ts, "p17.scoped", "leader password 17")...)
		if r.json(t, &a); r.status != 200 || len(a.Grids) != 1 {
			t.Errorf("GET own: %d %s", r.status, r.body)
		}
		if r := do(t, "PUT", ts.url+"/v1/leaders/p17.scoped/assignments", `{"grids":[]}`); r.status != 200 {
			t.Fatalf("PUT none: %d %s", r.status, r.body)
		}
	})

	leader := sessionHeader(t, ts, "p17.leader", "leader password 17")
	now := time.Now().Truncate(time.Second)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	x := partyWorlds[id]
	var outside int
	visited := map[string]bool{} // grid and day in Shanghai: visits count these
	visit := func(grid, t string) {
		at, _ := time.Parse(time.RFC3339, t)
		visited[grid+" "+at.In(shanghai).Format(time.DateOnly)] = true
	}

	t.Run("a check-in in an assigned grid is a visit", func(t *testing.T) {
		c := partyGridCentre(id, 0, 0)
		a := checkIn(t, ts, map[string]any{"lon": c[0], "lat": c[1], "accuracy_m": 10, "t": at(-90 * time.Minute), "note": "走访",
			"photo_url": "https://photos.example/1.jpg", "person": "p17.leader"}, leader)
		if !a.Visit || a.Grid == nil || *a.Grid != id+"-G00" || a.DistanceM != nil {
			t.Errorf("answer %+v", a)
		}
		visit(id+"-G00", at(-90*time.Minute))
	})
	t.Run("a check-in in a grid below an assigned one is a visit of it", func(t *testing.T) {
		c := partyGridCentre(id, 1, 1)
		a := checkIn(t, ts, map[string]any{"location": map[string]any{"type": "Point", "coordinates": c[:]}, "at": at(-30 * time.Minute)}, leader)
		if !a.Visit || a.Grid == nil || *a.Grid != id+"-S1" || *a.Layer != id {
			t.Errorf("answer %+v", a)
		}
		visit(id+"-S1", at(-30*time.Minute))
	})
	// 300 m west of G00's west edge (the district's), halfway up it.
	west := [2]float64{x - 300/(111320*math.Cos(29.75*math.Pi/180)), -29.75}
	t.Run("a check-in 300 m outside is outside, with its distance", func(t *testing.T) {
		a := checkIn(t, ts, map[string]any{"lon": west[0], "lat": west[1], "accuracy_m": 5, "t": at(-60 * time.Minute)}, leader)
		var want float64
		if err := db.Pool.QueryRow(context.Background(), `SELECT min(ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography))
			FROM grid_versions WHERE valid_to IS NULL AND layer_id || '/' || code = ANY($3)`, west[0], west[1],
			[]string{"p17lead/p17lead-G00", "p17lead/p17lead-G01", "p17lead/p17lead-S1", "p17gcj/p17gcj-A", "p17gcj/p17gcj-B"}).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if a.Visit || a.Grid != nil || a.DistanceM == nil || math.Abs(*a.DistanceM-want) > 0.05 || math.Abs(want-300) > 3 {
			t.Errorf("answer %+v; PostGIS measures %.2f m", a, want)
		}
		var stored float64
		if err := db.Pool.QueryRow(context.Background(), `SELECT distance_m FROM checkins WHERE id = $1`, a.ID).Scan(&stored); err != nil || math.Abs(stored-want) > 1e-6 {
			t.Errorf("stored distance %v (%v), want %v", stored, err, want)
		}
		outside++
	})
	t.Run("an accuracy past 100 m widens nothing", func(t *testing.T) {
		a := checkIn(t, ts, map[string]any{"lon": west[0], "lat": west[1], "accuracy_m": 280, "t": at(-45 * time.Minute)}, leader)
		if a.Visit || !a.Imprecise || a.DistanceM == nil {
			t.Errorf("300 m out with 280 m accuracy and 30 m tolerance: %+v", a)
		}
		outside++
		near := [2]float64{x - 60/(111320*math.Cos(29.75*math.Pi/180)), -29.75}
		a = checkIn(t, ts, map[string]any{"lon": near[0], "lat": near[1], "accuracy_m": 80, "t": at(-44 * time.Minute)}, leader)
		if !a.Visit || *a.Grid != id+"-G00" || a.Imprecise {
			t.Errorf("60 m out with 80 m accuracy: %+v", a)
		}
		visit(id+"-G00", at(-44*time.Minute))
	})
	t.Run("a GCJ-02 check-in is converted first", func(t *testing.T) {
		a := checkIn(t, ts, map[string]any{"lon": g[0], "lat": g[1], "crs": "gcj02", "t": at(0)}, leader)
		wx, wy := geo.GCJ02ToWGS84(g[0], g[1])
		if !a.Visit || *a.Grid != "p17gcj-A" || math.Abs(a.Lon-wx) > 1e-9 || math.Abs(a.Lat-wy) > 1e-9 || math.Abs(a.Lon-w[0]) > 1e-6 {
			t.Errorf("answer %+v; converted %v %v", a, wx, wy)
		}
		naive := checkIn(t, ts, map[string]any{"lon": g[0], "lat": g[1], "t": at(0)}, leader)
		if !naive.Visit || *naive.Grid != "p17gcj-B" {
			t.Errorf("the same numbers as WGS84: %+v", naive)
		}
		visit("p17gcj-A", at(0))
		visit("p17gcj-B", at(0))
	})
	t.Run("checking in again at a grid the same day is not another visit", func(t *testing.T) {
		c := partyGridCentre(id, 0, 0)
		if a := checkIn(t, ts, map[string]any{"lon": c[0], "lat": c[1], "t": at(-89 * time.Minute)}, leader); !a.Visit {
			t.Errorf("answer %+v", a)
		}
		visit(id+"-G00", at(-89*time.Minute))
	})
	t.Run("a retry with the same client_id stores nothing", func(t *testing.T) {
		c := partyGridCentre(id, 1, 0)
		body := map[string]any{"lon": c[0], "lat": c[1], "t": at(-20 * time.Minute), "client_id": "p17-phone/1"}
		first := checkIn(t, ts, body, leader)
		b, _ := json.Marshal(body)
		r := do(t, "POST", ts.url+"/v1/checkins", string(b), leader...)
		var again checkInAnswer
		if r.json(t, &again); r.status != 200 || again.ID != first.ID || !again.Visit || *again.Grid != id+"-S1" {
			t.Errorf("retry: %d %s; want 200 with check-in %d", r.status, r.body, first.ID)
		}
		visit(id+"-S1", at(-20*time.Minute))
	})
	t.Run("an old check-in is outside the window", func(t *testing.T) {
		c := partyGridCentre(id, 0, 1)
		if a := checkIn(t, ts, map[string]any{"lon": c[0], "lat": c[1], "t": at(-72 * time.Hour)}, leader); !a.Visit || *a.Grid != id+"-G01" {
			t.Errorf("answer %+v", a)
		}
	})

	t.Run("bad check-ins store nothing", func(t *testing.T) {
		count := func() int {
			var n int
			if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM checkins`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := count()
		c := partyGridCentre(id, 0, 0)
		for _, tc := range []struct {
			name   string
			body   string
			header []string
			status int
			says   string
		}{
			{"ftp photo", fmt.Sprintf(`{"lon":%g,"lat":%g,"photo_url":"ftp://photos.example/1.jpg"}`, c[0], c[1]), leader, 400, "photo_url"},
			{"script photo", fmt.Sprintf(`{"lon":%g,"lat":%g,"photo_url":"javascript:alert(1)"}`, c[0], c[1]), leader, 400, "photo_url"},
			{"longitude out of range", `{"lon":200,"lat":-29}`, leader, 400, "lon 200"},
			{"no point", `{"note":"here"}`, leader, 400, `"lon" and "lat"`},
			{"both forms", fmt.Sprintf(`{"lon":%g,"lat":%g,"location":{"type":"Point","coordinates":[1,2]}}`, c[0], c[1]), leader, 400, "one of the two"},
			{"unknown crs", fmt.Sprintf(`{"lon":%g,"lat":%g,"crs":"utm50"}`, c[0], c[1]), leader, 400, "crs"},
			{"in the future", fmt.Sprintf(`{"lon":%g,"lat":%g,"t":%q}`, c[0], c[1], at(time.Hour)), leader, 400, "future"},
			{"negative accuracy", fmt.Sprintf(`{"lon":%g,"lat":%g,"accuracy_m":-1}`, c[0], c[1]), leader, 400, "accuracy_m"},
			{"unknown field", fmt.Sprintf(`{"lon":%g,"lat":%g,"altitude":3}`, c[0], c[1]), leader, 400, "altitude"},
			{"not a leader", fmt.Sprintf(`{"lon":%g,"lat":%g}`, c[0], c[1]), sessionHeader(t, ts, "p17.nobody", "leader password 17"), 403, "not a leader"},
			{"a token", fmt.Sprintf(`{"lon":%g,"lat":%g}`, c[0], c[1]), nil, 403, "token"},
			{"a viewer", fmt.Sprintf(`{"lon":%g,"lat":%g}`, c[0], c[1]), []string{"Authorization", "Bearer " + ts.token(t, gridmap.RoleViewer, nil)}, 403, "reporter"},
			{"another person", fmt.Sprintf(`{"lon":%g,"lat":%g,"person":"p17.leader2"}`, c[0], c[1]), leader, 403, `person "p17.leader2" is not you`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := do(t, "POST", ts.url+"/v1/checkins", tc.body, tc.header...)
				if r.status != tc.status || !strings.Contains(r.errorOf(t).Message, tc.says) {
					t.Errorf("%d %s; want %d saying %q", r.status, r.body, tc.status, tc.says)
				}
				if after := count(); after != before {
					t.Errorf("check-ins went from %d to %d", before, after)
				}
			})
		}
	})

	t.Run("on-site work and the leaders' figures", func(t *testing.T) {
		filed, _ := filePartyReport(t, ts, id, "onsite-filed", partyGridCentre(id, 0, 0), leader...)
		resolved, _ := filePartyReport(t, ts, id, "onsite-resolved", partyGridCentre(id, 0, 0))
		moveReport(t, ts.url, resolved, "register", "dispatch", "start")
		if r := do(t, "POST", fmt.Sprintf("%s/v1/reports/%d/events", ts.url, resolved), `{"action":"resolve"}`, leader...); r.status != 200 {
			t.Fatalf("resolve as the leader: %d %s", r.status, r.body)
		}
		other, _ := filePartyReport(t, ts, id, "onsite-other", partyGridCentre(id, 0, 0))
		moveReport(t, ts.url, other, "register", "dispatch", "start", "resolve")
		// Filed by the leader during visits, but in none of the visited grids.
		elsewhere, _ := filePartyReport(t, ts, id, "onsite-elsewhere", partyGridCentre(id, 0, 1), leader...)
		var linked []int64
		rows, err := db.Pool.Query(context.Background(), `SELECT DISTINCT report_id FROM checkin_reports WHERE report_id = ANY($1) ORDER BY 1`,
			[]int64{filed, resolved, other, elsewhere})
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			_ = rows.Scan(&id)
			linked = append(linked, id)
		}
		if fmt.Sprint(linked) != fmt.Sprint([]int64{filed, resolved}) {
			t.Errorf("linked reports %v, want %v", linked, []int64{filed, resolved})
		}

		from, to := now.Add(-24*time.Hour), now.Add(time.Hour)
		q := "?layer=" + id + "&from=" + url.QueryEscape(from.UTC().Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.UTC().Format(time.RFC3339))
		var st gridmap.LeaderStats
		r := do(t, "GET", ts.url+"/v1/leaders"+q, "")
		r.json(t, &st)
		rows1 := map[string]gridmap.LeaderRow{}
		for _, row := range st.Rows {
			rows1[row.Username] = row
		}
		l1, l2 := rows1["p17.leader"], rows1["p17.leader2"]
		if r.status != 200 || l1.Visits != len(visited) || l1.Outside != outside || l1.OnSiteReports != 2 ||
			fmt.Sprint(l1.NotVisited) != "[p17lead-G01]" || len(l1.Grids) != 5 || l1.DisplayName != "包联领导" ||
			l1.RequiredVisits != requiredByHand(8, from, to) {
			t.Errorf("leader: %+v; want %d visits, %d outside, 2 on site, [p17lead-G01] not visited, %v required (%d %s)",
				l1, len(visited), outside, requiredByHand(8, from, to), r.status, r.body)
		}
		if l2.Visits != 0 || l2.Outside != 0 || l2.OnSiteReports != 0 || fmt.Sprint(l2.NotVisited) != "[p17lead-G10]" ||
			l2.RequiredVisits != requiredByHand(4, from, to) {
			t.Errorf("leader2: %+v", l2)
		}
		csvRows := getCSV(t, ts.url+"/v1/leaders"+q)
		if len(csvRows) != len(st.Rows)+1 || strings.Join(csvRows[0], ",") != strings.Join(leadersCSVHeader, ",") {
			t.Errorf("CSV: %q", csvRows)
		}

		for _, tc := range []struct {
			scope string
			want  string
			grids string // p17.leader's, as the scope sees them
		}{{id + "-S0", "[p17.leader]", "[p17lead-G00 p17lead-G01] [p17lead-G01]"},
			{id + "-S1", "[p17.leader p17.leader2]", "[p17lead-S1] []"}} {
			var scoped gridmap.LeaderStats
			tok := []string{"Authorization", "Bearer " + ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: id, Code: tc.scope})}
			do(t, "GET", ts.url+"/v1/leaders"+q, "", tok...).json(t, &scoped)
			var names []string
			for _, row := range scoped.Rows {
				names = append(names, row.Username)
			}
			if fmt.Sprint(names) != tc.want {
				t.Errorf("scoped to %s: %v, want %s", tc.scope, names, tc.want)
			}
			if len(scoped.Rows) > 0 {
				if got := fmt.Sprint(leaderCodes(scoped.Rows[0].Grids), " ", scoped.Rows[0].NotVisited); got != tc.grids {
					t.Errorf("scoped to %s, p17.leader's grids and those not visited: %s, want %s", tc.scope, got, tc.grids)
				}
			}
		}
		if r := do(t, "GET", ts.url+"/v1/leaders?from="+url.QueryEscape(to.Format(time.RFC3339))+"&to="+url.QueryEscape(from.Format(time.RFC3339)), ""); r.status != 400 {
			t.Errorf("an empty window: %d %s", r.status, r.body)
		}
	})
}

// leaderCodes are the codes of grids.
func leaderCodes(grids []gridmap.LeaderGrid) []string {
	codes := []string{}
	for _, g := range grids {
		codes = append(codes, g.Code)
	}
	return codes
}

// TestPartyManyClients: leaders check in and editors PUT party
// organisations at once, over a pool of 3 connections; every answer is
// right and every write is stored once.
func TestPartyManyClients(t *testing.T) {
	db := pgtest.SharedWith(t, postgres.Options{MaxConns: 3})
	ts := newTestServerOn(t, Config{}, db)
	const id, leaders, checkIns, puts = "p17many", 6, 8, 10
	partyWorld(t, ts, id)
	headers := make([][]string, leaders)
	for i := range leaders {
		name := fmt.Sprintf("p17.many%d", i)
		addAccount(t, ts, gridmap.Account{Username: name, Role: gridmap.RoleReporter}, "many leaders 17")
		body := fmt.Sprintf(`{"grids":[{"layer":%q,"code":"%s-G%d%d"}],"visits_per_month":2}`, id, id, i%2, (i/2)%2)
		if r := do(t, "PUT", ts.url+"/v1/leaders/"+name+"/assignments", body); r.status != 200 {
			t.Fatalf("assign %s: %d %s", name, r.status, r.body)
		}
		headers[i] = sessionHeader(t, ts, name, "many leaders 17")
	}
	var wg sync.WaitGroup
	errs := make(chan error, leaders*checkIns+4*puts)
	for i := range leaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, g := i%2, (i/2)%2
			c := partyGridCentre(id, s, g)
			for k := range checkIns {
				lon := c[0]
				if k%2 == 1 {
					lon = partyWorlds[id] - 0.01 // about 960 m west of the district: outside
				}
				b := fmt.Sprintf(`{"lon":%g,"lat":%g}`, lon, c[1])
				res, err := doAsync("POST", ts.url+"/v1/checkins", b, headers[i])
				if err != nil {
					errs <- err
					continue
				}
				var a checkInAnswer
				if err := json.Unmarshal(res.body, &a); err != nil || res.status != 201 {
					errs <- fmt.Errorf("leader %d check-in %d: %d %s", i, k, res.status, res.body)
					continue
				}
				wantGrid := fmt.Sprintf("%s-G%d%d", id, s, g)
				if k%2 == 0 && (!a.Visit || a.Grid == nil || *a.Grid != wantGrid) || k%2 == 1 && (a.Visit || a.DistanceM == nil || *a.DistanceM < 500) {
					errs <- fmt.Errorf("leader %d check-in %d: %s", i, k, res.body)
				}
			}
		}()
	}
	for gi := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, g := gi/2, gi%2
			for k := range puts {
				b := fmt.Sprintf(`{"kind":"group","name":"党小组 %d","secretary":{"name":"书记 %d"},"street":"%s-S%d"}`, k, k, id, s)
				res, err := doAsync("PUT", fmt.Sprintf("%s/v1/layers/%s/grids/%s-G%d%d/party", ts.url, id, id, s, g), b, nil)
				if err != nil {
					errs <- err
				} else if want := map[bool]int{true: 201, false: 200}[k == 0]; res.status != want {
					errs <- fmt.Errorf("grid %d PUT %d: %d %s", gi, k, res.status, res.body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var n, v int
	if err := db.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM checkins c JOIN accounts a ON a.id = c.account_id WHERE a.username LIKE 'p17.many%'),
		(SELECT sum(version) FROM party_orgs WHERE layer_id = $1)`, id).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != leaders*checkIns || v != 4*puts {
		t.Errorf("stored %d check-ins (want %d), versions add up to %d (want %d)", n, leaders*checkIns, v, 4*puts)
	}
}

// doAsync is do for goroutines other than the test's.
func doAsync(method, u, body string, header []string) (response, error) {
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, b}, err
}
