package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// Borough codes of the NYC hierarchy (borough > NTA > tract).
const (
	manhattan = "1"
	brooklyn  = "3"
)

// nycScopeWorld is the NYC hierarchy in a database of its own, with a
// category for reports, and the lookup index holding it.
func nycScopeWorld(t *testing.T) (*testServer, *postgres.DB) {
	t.Helper()
	pgtest.NYCDir(t)
	db := pgtest.NewDB(t)
	pgtest.LoadNYCHierarchy(t, db, "nyc")
	ts := newTestServerOn(t, Config{}, db)
	for _, s := range []struct{ path, body string }{
		{"/v1/departments/dsny", `{"name":"Department of Sanitation"}`},
		{"/v1/categories/litter", `{"name":"Litter","departments":["dsny"],"limit":{"value":3,"clock":"working_days"}}`},
	} {
		if r := do(t, "PUT", ts.url+s.path, s.body); r.status/100 != 2 {
			t.Fatalf("%s: %d %s", s.path, r.status, r.body)
		}
	}
	eventuallyWithin(t, time.Minute, "the NYC tracts reach the lookup index", func() bool {
		var a lookupJSON
		r := do(t, "GET", ts.url+"/v1/lookup?layer=nyc&lon=-73.9855&lat=40.758", "")
		return r.status == 200 && json.Unmarshal(r.body, &a) == nil && len(a.Layers["nyc"].Chain) == 3
	})
	return ts, db
}

// edgeMove is a move_edge of tract a into its neighbour b: a grows by a
// small bite of b around the middle of their shared edge.
func edgeMove(t *testing.T, db *postgres.DB, borough string) (a, b, op string) {
	t.Helper()
	var geom string
	err := db.Pool.QueryRow(context.Background(), `
		WITH pair AS (
		  SELECT x.code AS a, y.code AS b, x.geom AS ga, y.geom AS gb,
		         ST_LineMerge(ST_Intersection(ST_Boundary(x.geom), ST_Boundary(y.geom))) AS edge
		  FROM grids x JOIN grids y ON x.layer_id = y.layer_id AND x.parent_code = y.parent_code AND x.code < y.code AND x.geom && y.geom
		  WHERE x.layer_id = 'nyc' AND x.level = 'tract' AND left(x.code, 1) = $1
		    AND ST_Length(ST_Intersection(ST_Boundary(x.geom), ST_Boundary(y.geom))) > 0.004
		  ORDER BY x.code, y.code LIMIT 1)
		SELECT a, b, ST_AsGeoJSON(ST_Union(ga, ST_Intersection(gb, ST_Buffer(ST_LineInterpolatePoint(edge, 0.5), 0.0003)))) FROM pair
		WHERE GeometryType(edge) = 'LINESTRING'`, borough).Scan(&a, &b, &geom)
	if err != nil {
		t.Fatalf("two neighbouring tracts in borough %s: %v", borough, err)
	}
	return a, b, fmt.Sprintf(`{"op":"move_edge","code":%q,"geometry":%s}`, a, geom)
}

func gridVersion(t *testing.T, db *postgres.DB, code string) int {
	t.Helper()
	var v int
	if err := db.Pool.QueryRow(context.Background(), `SELECT version FROM grids WHERE layer_id = 'nyc' AND code = $1`, code).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestScopedCallersStayInTheirBorough: an editor scoped to Manhattan moves
// an edge there, and is refused, with nothing written, for Brooklyn and for
// a changeset mixing both; a dispatcher scoped to Manhattan sees only
// Manhattan's reports in the list, the live feed, the reports tiles and
// Open311, and may move only those; a scoped reporter files only there.
func TestScopedCallersStayInTheirBorough(t *testing.T) {
	ts, db := nycScopeWorld(t)
	scope := &gridmap.Scope{Layer: "nyc", Code: manhattan}
	editor := bearer(ts.token(t, gridmap.RoleEditor, scope))
	dispatcher := bearer(ts.token(t, gridmap.RoleDispatcher, scope))
	reporter := bearer(ts.token(t, gridmap.RoleReporter, scope))
	changesets := ts.url + "/v1/layers/nyc/changesets"

	t.Run("editor", func(t *testing.T) {
		ma, mb, inside := edgeMove(t, db, manhattan)
		ba, bb, outside := edgeMove(t, db, brooklyn)
		before := map[string]int{}
		for _, c := range []string{ma, mb, ba, bb} {
			before[c] = gridVersion(t, db, c)
		}
		r := do(t, "POST", changesets, `{"reason":"another borough","operations":[`+outside+`]}`, editor...)
		if r.status != 403 || !strings.Contains(r.errorOf(t).Message, "operation 0") {
			t.Fatalf("Brooklyn edge by Manhattan's editor: %d %s, want 403 naming operation 0", r.status, r.body)
		}
		r = do(t, "POST", changesets, `{"reason":"both","operations":[`+inside+`,`+outside+`]}`, editor...)
		if r.status != 403 || !strings.Contains(r.errorOf(t).Message, "operation 1 (move_edge)") {
			t.Fatalf("mixed changeset: %d %s, want 403 naming operation 1", r.status, r.body)
		}
		for _, c := range []string{ma, mb, ba, bb} {
			if v := gridVersion(t, db, c); v != before[c] {
				t.Errorf("refused changesets wrote tract %s: version %d -> %d", c, before[c], v)
			}
		}
		r = do(t, "POST", changesets, `{"reason":"inside","dry_run":true,"operations":[`+outside+`]}`, editor...)
		if r.status != 403 {
			t.Errorf("a dry run outside the scope: %d, want 403", r.status)
		}
		r = do(t, "POST", changesets, `{"reason":"inside Manhattan","operations":[`+inside+`]}`, editor...)
		if r.status != 200 {
			t.Fatalf("Manhattan edge by Manhattan's editor: %d %s", r.status, r.body)
		}
		if gridVersion(t, db, ma) != before[ma]+1 || gridVersion(t, db, mb) != before[mb]+1 {
			t.Errorf("the Manhattan move wrote no new versions")
		}
		// One grid at a time: the borough itself belongs to the city.
		for _, w := range []struct{ method, path, body string }{
			{"PUT", "/v1/layers/nyc/grids/" + ba + "/people", `{"people":[{"role":"grid_worker","name":"Kim"}]}`},
			{"DELETE", "/v1/layers/nyc/grids/" + bb, ""},
			{"DELETE", "/v1/layers/nyc/grids/" + manhattan, ""},
		} {
			if r := do(t, w.method, ts.url+w.path, w.body, editor...); r.status != 403 {
				t.Errorf("%s %s by Manhattan's editor: %d %s, want 403", w.method, w.path, r.status, r.body)
			}
		}
		if r := do(t, "PUT", ts.url+"/v1/layers/nyc/grids/"+ma+"/people", `{"people":[{"role":"grid_worker","name":"Rivera"}]}`, editor...); r.status/100 != 2 {
			t.Errorf("people of a Manhattan tract: %d %s", r.status, r.body)
		}
		if r := do(t, "POST", ts.url+"/v1/layers/nyc/import", `{"type":"FeatureCollection","features":[]}`, editor...); r.status != 403 {
			t.Errorf("a scoped editor's import: %d, want 403", r.status)
		}
	})

	t.Run("dispatcher and reporter", func(t *testing.T) {
		points := map[string][2]float64{
			"m-times-square": {-73.9855, 40.758}, "m-harlem": {-73.9465, 40.8116}, "m-village": {-74.0030, 40.7336},
			"b-prospect-park": {-73.9690, 40.6602}, "b-williamsburg": {-73.9571, 40.7081}, "b-coney-island": {-73.9707, 40.5755},
		}
		ids := map[string]int64{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for name, p := range points {
			wg.Add(1)
			go func(name string, p [2]float64) {
				defer wg.Done()
				body := fmt.Sprintf(`{"external_id":"scope-%s","category":"litter","location":{"type":"Point","coordinates":[%g,%g]}}`, name, p[0], p[1])
				r := do(t, "POST", ts.url+"/v1/reports", body)
				var rep gridmap.Report
				if r.status != 201 || json.Unmarshal(r.body, &rep) != nil {
					t.Errorf("report %s: %d %s", name, r.status, r.body)
					return
				}
				mu.Lock()
				ids[name] = rep.ID
				mu.Unlock()
			}(name, p)
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		var inScope, outside []int64
		for name, id := range ids {
			if strings.HasPrefix(name, "m-") {
				inScope = append(inScope, id)
			} else {
				outside = append(outside, id)
			}
		}
		slices.Sort(inScope)

		// The list.
		var page struct {
			Reports []gridmap.Report `json:"reports"`
		}
		do(t, "GET", ts.url+"/v1/reports?limit=1000", "", dispatcher...).json(t, &page)
		var listed []int64
		for _, r := range page.Reports {
			listed = append(listed, r.ID)
		}
		slices.Sort(listed)
		if !slices.Equal(listed, inScope) {
			t.Errorf("Manhattan's dispatcher lists %v, want %v", listed, inScope)
		}
		var all struct {
			Reports []gridmap.Report `json:"reports"`
		}
		do(t, "GET", ts.url+"/v1/reports?limit=1000", "").json(t, &all)
		if len(all.Reports) != len(points) {
			t.Errorf("the admin lists %d reports, want %d", len(all.Reports), len(points))
		}

		// One report, its history and its moves.
		for _, id := range outside {
			u := ts.url + "/v1/reports/" + strconv.FormatInt(id, 10)
			for _, req := range []struct{ method, path, body string }{{"GET", "", ""}, {"GET", "/events", ""}, {"POST", "/events", `{"action":"register"}`}} {
				if r := do(t, req.method, u+req.path, req.body, dispatcher...); r.status != 403 {
					t.Errorf("%s report %d%s (Brooklyn) by Manhattan's dispatcher: %d, want 403", req.method, id, req.path, r.status)
				}
			}
			var rep gridmap.Report
			do(t, "GET", u, "").json(t, &rep)
			if rep.Status != gridmap.StatusReported {
				t.Errorf("a refused move changed report %d: %s", id, rep.Status)
			}
		}
		r := do(t, "POST", ts.url+"/v1/reports/"+strconv.FormatInt(inScope[0], 10)+"/events", `{"action":"register","actor":"desk 3"}`, dispatcher...)
		var moved gridmap.Report
		if r.status != 200 || json.Unmarshal(r.body, &moved) != nil || moved.Status != gridmap.StatusRegistered {
			t.Fatalf("Manhattan report moved by Manhattan's dispatcher: %d %s", r.status, r.body)
		}

		// The live feed from the start: every Manhattan event, no other.
		events, stop := openStream(t, ts.url, "0", dispatcher...)
		defer stop()
		seen := map[int64]int{}
		timeout := time.After(10 * time.Second)
		for len(seen) < len(inScope) || seen[inScope[0]] < 2 {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatal("stream ended")
				}
				if ev, ok := reportEventOf(e); ok {
					seen[ev.ReportID]++
					if ev.Actor != "" && strings.HasPrefix(ev.Actor, "token:dispatcher-") && !strings.HasSuffix(ev.Actor, " for desk 3") {
						t.Errorf("actor %q: want the token for desk 3", ev.Actor)
					}
				}
			case <-timeout:
				t.Fatalf("feed of Manhattan's dispatcher after 10 s: %v, want events of %v", seen, inScope)
			}
		}
		for _, id := range outside {
			if seen[id] > 0 {
				t.Errorf("Manhattan's dispatcher was sent Brooklyn report %d", id)
			}
		}

		// The reports tiles: a z9 tile holding both boroughs.
		tile := tileAt(9, -73.97, 40.70)
		if tileAt(9, -73.9855, 40.758) != tile || tileAt(9, -73.9707, 40.5755) != tile {
			t.Fatalf("z9 tile %s does not hold both boroughs' points", tile)
		}
		count := func(header ...string) int {
			_, ls := getTile(t, ts.url+"/tiles/reports/"+tile+".mvt", header...)
			n := 0
			for _, f := range features(ls, "reports") {
				n += int(f["count"].(float64))
			}
			return n
		}
		if n, all := count(dispatcher...), count(); n != len(inScope) || all != len(points) {
			t.Errorf("reports tile counts %d for Manhattan's dispatcher and %d for the admin; want %d and %d", n, all, len(inScope), len(points))
		}

		// Open311.
		var requests []struct {
			ID string `json:"service_request_id"`
		}
		do(t, "GET", ts.url+"/open311/v2/requests.json", "", dispatcher...).json(t, &requests)
		var open311 []int64
		for _, q := range requests {
			id, _ := strconv.ParseInt(q.ID, 10, 64)
			open311 = append(open311, id)
		}
		slices.Sort(open311)
		if !slices.Equal(open311, inScope) {
			t.Errorf("Open311 requests for Manhattan's dispatcher: %v, want %v", open311, inScope)
		}

		// A scoped reporter files reports in its borough only.
		r = do(t, "POST", ts.url+"/v1/reports", `{"external_id":"scope-reporter-b","category":"litter","location":{"type":"Point","coordinates":[-73.969,40.6602]}}`, reporter...)
		if r.status != 403 {
			t.Errorf("Brooklyn report by Manhattan's reporter: %d %s, want 403", r.status, r.body)
		}
		r = do(t, "POST", ts.url+"/v1/reports", `{"external_id":"scope-reporter-m","category":"litter","location":{"type":"Point","coordinates":[-73.9855,40.758]}}`, reporter...)
		if r.status != 201 {
			t.Errorf("Manhattan report by Manhattan's reporter: %d %s", r.status, r.body)
		}
		var n int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM reports WHERE external_id = 'scope-reporter-b'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("the refused report was stored (%d, %v)", n, err)
		}
	})
}
