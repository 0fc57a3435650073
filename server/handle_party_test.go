package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// partyWorlds places each partyWorld layer apart from the others' (and
// from every other test's): a one-degree district at lon x, lat -30.
var partyWorlds = map[string]float64{"p17party": 75, "p17lead": 76, "p17many": 77}

// partyWorld is a district D of two streets S0 (west) and S1 (east), each
// a column of two grids: Gs0 (south) and Gs1 (north) of street s, half a
// degree square; a department and the category id-cat; in the lookup
// index.
func partyWorld(t *testing.T, ts *testServer, id string) {
	t.Helper()
	if r := do(t, "PUT", ts.url+"/v1/layers/"+id, `{"levels":["district","street","grid"]}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	x := partyWorlds[id]
	f := func(code, level, parent, geom string) string {
		p := "null"
		if parent != "" {
			p = fmt.Sprintf("%q", parent)
		}
		return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":"%s 网格","level":%q,"parent":%s},"geometry":%s}`,
			code, code, level, p, geom)
	}
	column := func(x0 float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,-30],[%g,-30],[%g,-29],[%g,-29],[%g,-30]]]}`, x0, x0+0.5, x0+0.5, x0, x0)
	}
	features := []string{f("D", "district", "", square(x, -30, 1)), f("S0", "street", "D", column(x)), f("S1", "street", "D", column(x+0.5))}
	for s := 0; s < 2; s++ {
		for g := 0; g < 2; g++ {
			features = append(features, f(fmt.Sprintf("G%d%d", s, g), "grid", fmt.Sprintf("S%d", s), square(x+0.5*float64(s), -30+0.5*float64(g), 0.5)))
		}
	}
	// Codes are per layer: prefix them so that the layers' codes differ in
	// messages too.
	body := strings.NewReplacer(`"code":"`, `"code":"`+id+`-`, `"parent":"`, `"parent":"`+id+`-`).Replace(
		`{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`)
	if r := do(t, "POST", ts.url+"/v1/layers/"+id+"/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	for _, s := range []struct{ path, body string }{
		{"/v1/departments/" + id + "-dept", `{"name":"Party test department"}`},
		{"/v1/categories/" + id + "-cat", `{"name":"Party test category","departments":["` + id + `-dept"],"limit":{"value":3,"clock":"working_days"}}`},
	} {
		if r := do(t, "PUT", ts.url+s.path, s.body); r.status/100 != 2 {
			t.Fatalf("%s: %d %s", s.path, r.status, r.body)
		}
	}
	eventuallyWithin(t, 10*time.Second, "the party layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", fmt.Sprintf("%s/v1/lookup?layer=%s&lon=%g&lat=-29.25", ts.url, id, x+0.75), "").body), id+"-G11")
	})
}

// partyGridCentre is the centre of grid Gsg of partyWorld id.
func partyGridCentre(id string, s, g int) [2]float64 {
	return [2]float64{partyWorlds[id] + 0.5*float64(s) + 0.25, -30 + 0.5*float64(g) + 0.25}
}

// filePartyReport files a report of id-cat at p and returns its id and
// tier.
func filePartyReport(t *testing.T, ts *testServer, id, externalID string, p [2]float64, header ...string) (int64, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"external_id": id + "-" + externalID, "category": id + "-cat", "source": "test",
		"location": map[string]any{"type": "Point", "coordinates": p[:]}})
	r := do(t, "POST", ts.url+"/v1/reports", string(b), header...)
	if r.status != 201 {
		t.Fatalf("report %s: %d %s", externalID, r.status, r.body)
	}
	var created struct {
		ID         int64
		Assignment struct{ Tier string }
	}
	r.json(t, &created)
	return created.ID, created.Assignment.Tier
}

// partyRows reads the party organisations stored for a layer, as text,
// for checking that a refused request changed nothing.
func partyRows(t *testing.T, db *postgres.DB, layer string) string {
	t.Helper()
	var s string
	if err := db.Pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(grid_code || ':' || version || ':' || name || ':' || members::text, '|' ORDER BY grid_code), '')
		FROM party_orgs WHERE layer_id = $1`, layer).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPartyOrganisations: PUT, GET and DELETE of a grid's party
// organisation; each bad request a 400 (or 404, 412) that changes
// nothing; coverage equals an independent count; a scoped caller sees
// only its subtree.
func TestPartyOrganisations(t *testing.T) {
	ts := newTestServer(t, Config{})
	db := pgtest.Shared(t)
	const id = "p17party"
	partyWorld(t, ts, id)
	u := func(code string) string { return ts.url + "/v1/layers/" + id + "/grids/" + id + "-" + code + "/party" }
	good := `{"kind":"branch","name":"G00 功能型党支部","secretary":{"name":"王书记","phone":"138 0000 0000"},
		"members":[{"name":"李党员","role":"组织委员","phone":"139-0000-0000"},{"name":"赵党员"}],"street":"p17party-S0"}`

	r := do(t, "PUT", u("G00"), good)
	if r.status != 201 || r.header.Get("ETag") != `"1"` {
		t.Fatalf("PUT: %d %s (ETag %s)", r.status, r.body, r.header.Get("ETag"))
	}
	if r := do(t, "PUT", u("G01"), strings.Replace(good, "branch", "group", 1)); r.status != 201 {
		t.Fatalf("PUT G01: %d %s", r.status, r.body)
	}
	var got gridmap.PartyOrg
	r = do(t, "GET", u("G00"), "")
	r.json(t, &got)
	if r.status != 200 || got.Kind != "branch" || got.Secretary.Phone != "138 0000 0000" || len(got.Members) != 2 ||
		got.Members[0].Role != "组织委员" || got.Street != id+"-S0" || got.Version != 1 || got.Grid != id+"-G00" {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
	before := partyRows(t, db, id)

	t.Run("bad requests change nothing", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, url, body string
			header                  []string
			status                  int
			says                    string
		}{
			{"unknown kind", "PUT", u("G00"), strings.Replace(good, "branch", "committee", 1), nil, 400, "kind"},
			{"no name", "PUT", u("G00"), strings.Replace(good, `"name":"G00 功能型党支部"`, `"name":" "`, 1), nil, 400, "name is required"},
			{"no secretary", "PUT", u("G00"), strings.Replace(good, `"name":"王书记"`, `"name":""`, 1), nil, 400, "secretary.name"},
			{"member without a name", "PUT", u("G00"), strings.Replace(good, `{"name":"赵党员"}`, `{"role":"委员"}`, 1), nil, 400, "members[1].name"},
			{"bad phone", "PUT", u("G00"), strings.Replace(good, "139-0000-0000", "call me", 1), nil, 400, "members[0].phone"},
			{"street of another branch", "PUT", u("G00"), strings.Replace(good, "p17party-S0", "p17party-S1", 1), nil, 400, "p17party-S0"},
			{"secretary with an unknown field", "PUT", u("G00"), strings.Replace(good, `"name":"王书记"`, `"name":"王书记","age":50`, 1), nil, 400, "age"},
			{"grid as street", "PUT", u("G00"), strings.Replace(good, "p17party-S0", "p17party-G01", 1), nil, 400, "not a street-tier grid"},
			{"unknown field", "PUT", u("G00"), strings.Replace(good, `"kind"`, `"colour":"red","kind"`, 1), nil, 400, "colour"},
			{"body names another grid", "PUT", u("G00"), strings.Replace(good, `"kind"`, `"grid":"p17party-G10","kind"`, 1), nil, 400, "agree"},
			{"bad If-Match", "PUT", u("G00"), good, []string{"If-Match", "yesterday"}, 400, "If-Match"},
			{"stale If-Match", "PUT", u("G00"), good, []string{"If-Match", `"7"`}, 412, "version 1"},
			{"unknown grid", "PUT", u("G99"), good, nil, 404, "p17party-G99"},
			{"unknown layer", "PUT", ts.url + "/v1/layers/p17nope/grids/x/party", good, nil, 404, "p17nope"},
			{"delete stale", "DELETE", u("G00"), "", []string{"If-Match", `"3"`}, 412, "version 1"},
			{"delete none", "DELETE", u("G10"), "", nil, 404, "no party organisation"},
			{"get none", "GET", u("G10"), "", nil, 404, "no party organisation"},
			{"coverage without layer", "GET", ts.url + "/v1/party", "", nil, 400, "layer is required"},
			{"coverage of a bad level", "GET", ts.url + "/v1/party?layer=" + id + "&level=block", "", nil, 400, "district, street, grid"},
			{"coverage with bad missing", "GET", ts.url + "/v1/party?layer=" + id + "&missing=perhaps", "", nil, 400, "missing"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := do(t, tc.method, tc.url, tc.body, tc.header...)
				if r.status != tc.status || !strings.Contains(r.errorOf(t).Message, tc.says) {
					t.Errorf("%d %s; want %d saying %q", r.status, r.body, tc.status, tc.says)
				}
				if after := partyRows(t, db, id); after != before {
					t.Errorf("stored organisations changed:\n%s\nto\n%s", before, after)
				}
			})
		}
	})

	t.Run("If-Match and DELETE", func(t *testing.T) {
		r := do(t, "PUT", u("G00"), strings.Replace(good, "王书记", "钱书记", 1), "If-Match", `"1"`)
		if r.status != 200 || r.header.Get("ETag") != `"2"` {
			t.Fatalf("PUT with If-Match: %d %s", r.status, r.body)
		}
		if r := do(t, "PUT", u("G10"), strings.Replace(good, "p17party-S0", "p17party-S1", 1), "If-Match", `"0"`); r.status != 201 {
			t.Fatalf("PUT G10 with If-Match 0: %d %s", r.status, r.body)
		}
		if r := do(t, "DELETE", u("G10"), "", "If-Match", `"1"`); r.status != 204 {
			t.Fatalf("DELETE: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", u("G10"), ""); r.status != 404 {
			t.Fatalf("GET after DELETE: %d %s", r.status, r.body)
		}
	})

	t.Run("coverage equals an independent count", func(t *testing.T) {
		var want struct{ grids, with int }
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*), count(p.grid_code) FROM grid_versions g
			LEFT JOIN party_orgs p ON p.layer_id = g.layer_id AND p.grid_code = g.code
			WHERE g.layer_id = $1 AND g.level = 'grid' AND g.valid_to IS NULL`, id).Scan(&want.grids, &want.with); err != nil {
			t.Fatal(err)
		}
		var cov gridmap.PartyCoverage
		r := do(t, "GET", ts.url+"/v1/party?layer="+id, "")
		r.json(t, &cov)
		if r.status != 200 || cov.Level != "grid" || cov.Grids != want.grids || cov.WithParty != want.with || want.with != 2 ||
			cov.Coverage == nil || *cov.Coverage != float64(want.with)/float64(want.grids) || len(cov.Rows) != want.grids {
			t.Fatalf("coverage %s; want %d grids, %d with one", r.body, want.grids, want.with)
		}
		if cov.Rows[0].Code != id+"-G00" || cov.Rows[0].Party == nil || cov.Rows[0].Party.Secretary.Name != "钱书记" || cov.Rows[2].Party != nil {
			t.Errorf("rows: %s", r.body)
		}
		var missing gridmap.PartyCoverage
		do(t, "GET", ts.url+"/v1/party?layer="+id+"&missing=true", "").json(t, &missing)
		if missing.Grids != want.grids || len(missing.Rows) != want.grids-want.with || missing.Rows[0].Code != id+"-G10" {
			t.Errorf("missing=true: %+v", missing)
		}
		rows := getCSV(t, ts.url+"/v1/party?layer="+id)
		if len(rows) != want.grids+1 || strings.Join(rows[0], ",") != strings.Join(partyCSVHeader, ",") ||
			rows[1][0] != id+"-G00" || rows[1][2] != "true" || rows[1][7] != "2" || rows[3][2] != "false" {
			t.Errorf("CSV: %q", rows)
		}
	})

	t.Run("a scoped caller sees only its subtree", func(t *testing.T) {
		tok := []string{"Authorization", "Bearer " + ts.token(t, gridmap.RoleEditor, &gridmap.Scope{Layer: id, Code: id + "-S1"})}
		var cov gridmap.PartyCoverage
		r := do(t, "GET", ts.url+"/v1/party?layer="+id, "", tok...)
		r.json(t, &cov)
		if r.status != 200 || cov.Grids != 2 || cov.WithParty != 0 || len(cov.Rows) != 2 || cov.Rows[0].Code != id+"-G10" {
			t.Errorf("scoped coverage: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", u("G00"), "", tok...); r.status != 403 {
			t.Errorf("scoped GET outside: %d %s", r.status, r.body)
		}
		before := partyRows(t, db, id)
		if r := do(t, "PUT", u("G00"), good, tok...); r.status != 403 {
			t.Errorf("scoped PUT outside: %d %s", r.status, r.body)
		}
		if after := partyRows(t, db, id); after != before {
			t.Errorf("a refused scoped PUT changed %s to %s", before, after)
		}
		if r := do(t, "PUT", u("G11"), strings.Replace(good, "p17party-S0", "p17party-S1", 1), tok...); r.status != 201 {
			t.Errorf("scoped PUT inside: %d %s", r.status, r.body)
		}
		viewer := []string{"Authorization", "Bearer " + ts.token(t, gridmap.RoleViewer, nil)}
		if r := do(t, "PUT", u("G11"), good, viewer...); r.status != 403 {
			t.Errorf("viewer PUT: %d %s", r.status, r.body)
		}
	})

	t.Run("SQL fragments in parameters find nothing and change nothing", func(t *testing.T) {
		before := partyRows(t, db, id)
		for _, f := range []string{`'; DELETE FROM party_orgs; --`, `p17party' OR '1'='1`, `%`, "\x00"} {
			p, q := url.PathEscape(f), url.QueryEscape(f)
			for _, tc := range []struct {
				path string
				want int
			}{
				{"/v1/layers/" + id + "/grids/" + p + "/party", 404},
				{"/v1/layers/" + p + "/grids/x/party", 404},
				{"/v1/party?layer=" + q, 404},
				{"/v1/party?layer=" + id + "&level=" + q, 400},
				{"/v1/party/meetings?layer=" + id + "&street=" + q, 200},
				{"/v1/leaders?layer=" + q, 404},
				{"/v1/leaders/" + p + "/assignments", 404},
			} {
				want := tc.want
				if f == "\x00" {
					want = 400
				}
				if r := do(t, "GET", ts.url+tc.path, ""); r.status != want {
					t.Errorf("GET %s: %d %s, want %d", tc.path, r.status, r.body, want)
				}
			}
		}
		if after := partyRows(t, db, id); after != before {
			t.Errorf("stored organisations changed:\n%s\nto\n%s", before, after)
		}
	})

	t.Run("API.md's body: street left out, secretary as a name", func(t *testing.T) {
		r := do(t, "PUT", u("G10"), `{"kind":"group","name":"G10 党小组","secretary":"张书记","members":[{"name":"孙党员"}]}`)
		var p gridmap.PartyOrg
		if r.json(t, &p); r.status != 201 || p.Street != id+"-S1" || p.Secretary.Name != "张书记" || p.Secretary.Phone != "" {
			t.Errorf("PUT: %d %s; want 201 with street %s-S1 and secretary 张书记", r.status, r.body, id)
		}
		if err := db.Pool.QueryRow(context.Background(), `SELECT street_code FROM party_orgs WHERE layer_id = $1 AND grid_code = $2`,
			id, id+"-G10").Scan(&p.Street); err != nil || p.Street != id+"-S1" {
			t.Errorf("stored street %q (%v)", p.Street, err)
		}
	})

	t.Run("two creates with If-Match 0 at once: one is 412", func(t *testing.T) {
		body := strings.Replace(good, "p17party-S0", "p17party-S1", 1)
		for round := range 20 {
			if r := do(t, "DELETE", u("G10"), ""); r.status != 204 && r.status != 404 {
				t.Fatalf("DELETE: %d %s", r.status, r.body)
			}
			start := make(chan struct{})
			statuses := make(chan int, 2)
			for range 2 {
				go func() {
					<-start
					res, err := doAsync("PUT", u("G10"), body, []string{"If-Match", `"0"`})
					if err != nil {
						t.Error(err)
					}
					statuses <- res.status
				}()
			}
			close(start)
			a, b := <-statuses, <-statuses
			if min(a, b) != 201 || max(a, b) != 412 {
				t.Fatalf("round %d: %d and %d; want one 201 and one 412", round, a, b)
			}
		}
	})

	t.Run("writes are audit-logged", func(t *testing.T) {
		eventually(t, "the party PUT in the audit log", func() bool {
			entries, _, err := ts.access.AuditLog(context.Background(), gridmap.AuditFilter{Target: "/v1/layers/" + id + "/grids/" + id + "-G00/party", Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Action == "PUT /v1/layers/:layer/grids/:code/party" && e.Status == 200 {
					return true
				}
			}
			return false
		})
	})
}

// TestJointMeeting: a meeting records a consult event on each report,
// escalates the one marked, and refuses a report of the grid tier (422)
// changing nothing.
func TestJointMeeting(t *testing.T) {
	ts := newTestServer(t, Config{})
	db := pgtest.Shared(t)
	const id = "p17party"
	partyWorld(t, ts, id)
	x := partyWorlds[id]
	// On the edge between the streets: owners in both, the district tier.
	up, tierUp := filePartyReport(t, ts, id, "meet-up", [2]float64{x + 0.5, -29.75})
	kept, tierKept := filePartyReport(t, ts, id, "meet-kept", [2]float64{x + 0.5, -29.25})
	low, tierLow := filePartyReport(t, ts, id, "meet-low", partyGridCentre(id, 0, 0))
	other, _ := filePartyReport(t, ts, id, "meet-other", partyGridCentre(id, 1, 1))
	if tierUp != gridmap.TierDistrict || tierKept != gridmap.TierDistrict || tierLow != gridmap.TierGrid {
		t.Fatalf("tiers %s %s %s: the world is not as the test needs", tierUp, tierKept, tierLow)
	}
	moveReport(t, ts.url, up, "register")
	counts := func() string {
		var s string
		if err := db.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM party_meetings WHERE layer_id = $1) || '/' ||
			(SELECT count(*) FROM report_events WHERE report_id = ANY($2)) || '/' ||
			(SELECT string_agg(tier || status, ',' ORDER BY id) FROM reports WHERE id = ANY($2))`, id, []int64{up, kept, low, other}).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	meeting := func(items string) string {
		return `{"layer":"` + id + `","street":"` + id + `-S0","held_at":"2026-01-05T15:00:00+08:00","title":"第一季度联席会议",
			"attendees":["街道党工委","社区党委","城管执法队"],"items":[` + items + `]}`
	}
	before := counts()
	for _, tc := range []struct {
		name, body string
		status     int
		says       string
	}{
		{"a report of the grid tier", meeting(fmt.Sprintf(`{"report":%d,"decision":"会商"},{"report":%d,"decision":"x"}`, up, low)), 422, fmt.Sprintf("report %d is at the grid tier", low)},
		{"a report of another street", meeting(fmt.Sprintf(`{"report":%d,"decision":"x"}`, other)), 422, fmt.Sprintf("report %d is not in street", other)},
		{"escalating a report not yet registered", meeting(fmt.Sprintf(`{"report":%d,"decision":"x","escalate":true}`, kept)), 422, fmt.Sprintf("report %d cannot be handed up", kept)},
		{"an unknown report", meeting(`{"report":999999999,"decision":"x"}`), 422, "report 999999999 does not exist"},
		{"a report twice", meeting(fmt.Sprintf(`{"report":%d},{"report":%d}`, up, up)), 400, "twice"},
		{"no items", meeting(""), 400, "items is required"},
		{"a grid as street", strings.Replace(meeting(fmt.Sprintf(`{"report":%d}`, up)), id+"-S0", id+"-G00", 1), 400, "street-tier"},
		{"no title", strings.Replace(meeting(fmt.Sprintf(`{"report":%d}`, up)), "第一季度联席会议", "", 1), 400, "title"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", ts.url+"/v1/party/meetings", tc.body)
			if r.status != tc.status || !strings.Contains(r.errorOf(t).Message, tc.says) {
				t.Errorf("%d %s; want %d saying %q", r.status, r.body, tc.status, tc.says)
			}
			if after := counts(); after != before {
				t.Errorf("a refused meeting changed %s to %s", before, after)
			}
		})
	}

	r := do(t, "POST", ts.url+"/v1/party/meetings", meeting(fmt.Sprintf(`{"report":%d,"decision":"提级至区级办理","escalate":true},{"report":%d,"decision":"街道牵头会商"}`, up, kept)))
	var m gridmap.Meeting
	r.json(t, &m)
	if r.status != 201 || m.ID == 0 || len(m.Items) != 2 || m.Items[0].Tier != gridmap.TierCity || m.Items[1].Tier != gridmap.TierDistrict ||
		m.Items[0].EventID == 0 || m.CreatedBy == "" {
		t.Fatalf("meeting: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		report  int64
		actions string
		tier    string
	}{{up, "report,register,consult,escalate", gridmap.TierCity}, {kept, "report,consult", gridmap.TierDistrict}} {
		var h struct{ Events []gridmap.ReportEvent }
		do(t, "GET", fmt.Sprintf("%s/v1/reports/%d/events", ts.url, tc.report), "").json(t, &h)
		var actions []string
		for _, e := range h.Events {
			actions = append(actions, e.Action)
		}
		if strings.Join(actions, ",") != tc.actions {
			t.Errorf("report %d events %v, want %s", tc.report, actions, tc.actions)
			continue
		}
		consult := h.Events[len(h.Events)-1]
		if tc.report == up {
			consult = h.Events[2]
		}
		var data struct {
			Meeting  int64
			Decision string
		}
		_ = json.Unmarshal(consult.Data, &data)
		if data.Meeting != m.ID || !strings.Contains(consult.Note, fmt.Sprintf("joint meeting %d", m.ID)) || consult.From != consult.To {
			t.Errorf("report %d consult event %+v (data %s)", tc.report, consult, consult.Data)
		}
		var rep struct{ Assignment struct{ Tier string } }
		do(t, "GET", fmt.Sprintf("%s/v1/reports/%d", ts.url, tc.report), "").json(t, &rep)
		if rep.Assignment.Tier != tc.tier {
			t.Errorf("report %d tier %s, want %s", tc.report, rep.Assignment.Tier, tc.tier)
		}
	}
	var list struct{ Meetings []gridmap.Meeting }
	r = do(t, "GET", ts.url+"/v1/party/meetings?layer="+id+"&street="+id+"-S0", "")
	r.json(t, &list)
	if r.status != 200 || len(list.Meetings) != 1 || list.Meetings[0].ID != m.ID || len(list.Meetings[0].Items) != 2 ||
		!list.Meetings[0].Items[0].Escalate || list.Meetings[0].Items[1].Decision != "街道牵头会商" || len(list.Meetings[0].Attendees) != 3 {
		t.Errorf("meetings: %d %s", r.status, r.body)
	}

	t.Run("only dispatchers of the street or above", func(t *testing.T) {
		before := counts()
		body := meeting(fmt.Sprintf(`{"report":%d,"decision":"x"}`, kept))
		for _, tc := range []struct {
			name   string
			role   string
			scope  *gridmap.Scope
			status int
		}{
			{"a reporter", gridmap.RoleReporter, nil, 403},
			{"a dispatcher of the other street", gridmap.RoleDispatcher, &gridmap.Scope{Layer: id, Code: id + "-S1"}, 403},
			{"a dispatcher of a grid of the street", gridmap.RoleDispatcher, &gridmap.Scope{Layer: id, Code: id + "-G00"}, 403},
		} {
			tok := []string{"Authorization", "Bearer " + ts.token(t, tc.role, tc.scope)}
			if r := do(t, "POST", ts.url+"/v1/party/meetings", body, tok...); r.status != tc.status {
				t.Errorf("%s: %d %s", tc.name, r.status, r.body)
			}
		}
		if after := counts(); after != before {
			t.Errorf("refused meetings changed %s to %s", before, after)
		}
		tok := []string{"Authorization", "Bearer " + ts.token(t, gridmap.RoleDispatcher, &gridmap.Scope{Layer: id, Code: id + "-S0"})}
		if r := do(t, "POST", ts.url+"/v1/party/meetings", body, tok...); r.status != 201 {
			t.Errorf("a dispatcher of the street: %d %s", r.status, r.body)
		}
	})
}
