package server

import (
	"fmt"
	"strings"
	"testing"
)

func TestReportsAPI(t *testing.T) {
	ts := newTestServer(t, Config{})
	rect := func(x0, x1 float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,31.5],[%g,31.5],[%g,31.51],[%g,31.51],[%g,31.5]]]}`, x0, x1, x1, x0, x0)
	}
	if r := do(t, "PUT", ts.url+"/v1/layers/rk", `{"levels":["district","street"]}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	body := `{"type":"FeatureCollection","features":[` + feat("RD", "", rect(121.5, 121.52)) + "," +
		feat("RA", "RD", rect(121.5, 121.51)) + "," + feat("RB", "RD", rect(121.51, 121.52)) + "]}"
	if r := do(t, "POST", ts.url+"/v1/layers/rk/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	eventually(t, "the layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?layer=rk&lon=121.505&lat=31.505", "").body), `"RA"`)
	})

	setup := []struct {
		method, path, body string
		status             int
	}{
		{"PUT", "/v1/departments/cg", `{"name":"城管"}`, 201},
		{"PUT", "/v1/departments/cg", `{"name":"城市管理局"}`, 200},
		{"PUT", "/v1/departments/bad", `{"name":"x","layer":"no-such-layer"}`, 400},
		{"PUT", "/v1/categories/01", `{"name":"市容环境","departments":["cg"],"limit":{"value":4,"clock":"working_hours"}}`, 201},
		{"PUT", "/v1/categories/02", `{"name":"x","departments":["nobody"],"limit":{"value":4,"clock":"working_hours"}}`, 400},
		{"PUT", "/v1/categories/03", `{"name":"x","limit":{"value":4,"clock":"fortnights"}}`, 400},
		{"PUT", "/v1/calendar/2026-10-01", `{"working":false,"name":"国庆节"}`, 200},
		{"PUT", "/v1/calendar/2026-10-01", `{"name":"国庆节"}`, 400},
		{"PUT", "/v1/calendar/october", `{"working":false}`, 400},
	}
	for _, s := range setup {
		if r := do(t, s.method, ts.url+s.path, s.body); r.status != s.status {
			t.Errorf("%s %s: %d %s, want %d", s.method, s.path, r.status, r.body, s.status)
		}
	}
	if r := do(t, "GET", ts.url+"/v1/categories/01", ""); r.status != 200 || !strings.Contains(string(r.body), "市容环境") {
		t.Errorf("category: %d %s", r.status, r.body)
	}

	report := `{"external_id":"api-1","category":"01","description":"占道经营","location":{"type":"Point","coordinates":[121.505,31.505]},
		"source":"12345","reported_at":"2026-11-20T17:30:00+08:00"}`
	var created struct {
		ID         int64
		Status     string
		Assignment struct {
			Layer   string
			Primary struct{ Code string }
			Tier    string
			DueAt   string `json:"due_at"`
		}
	}
	r := do(t, "POST", ts.url+"/v1/reports", report)
	r.json(t, &created)
	if r.status != 201 || r.header.Get("Location") == "" || created.Assignment.Layer != "rk" || created.Assignment.Primary.Code != "RA" ||
		created.Status != "reported" || created.Assignment.DueAt != "2026-11-23T11:30:00+08:00" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var again struct{ ID int64 }
	r = do(t, "POST", ts.url+"/v1/reports", report)
	r.json(t, &again)
	if r.status != 200 || again.ID != created.ID {
		t.Errorf("retry: %d %s, want 200 with report %d", r.status, r.body, created.ID)
	}
	if r := do(t, "POST", ts.url+"/v1/reports", strings.Replace(report, "占道经营", "乱堆物料", 1)); r.status != 409 {
		t.Errorf("other content: %d %s, want 409", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/v1/reports", `{"external_id":"api-2","category":"01"}`); r.status != 422 ||
		!strings.Contains(r.errorOf(t).Message, "location is required") {
		t.Errorf("no location: %d %s", r.status, r.body)
	}
	id := fmt.Sprint(created.ID)
	if r := do(t, "GET", ts.url+"/v1/reports/"+id, ""); r.status != 200 || !strings.Contains(string(r.body), `"api-1"`) {
		t.Errorf("get: %d %s", r.status, r.body)
	}
	for _, q := range []string{"status=reported&limit=5", "bbox=121.5,31.5,121.51,31.51&status=open", "category=01&grid=RA"} {
		if r := do(t, "GET", ts.url+"/v1/reports?"+q, ""); r.status != 200 || !strings.Contains(string(r.body), `"api-1"`) {
			t.Errorf("list ?%s: %d %s", q, r.status, r.body)
		}
	}
	if r := do(t, "GET", ts.url+"/v1/reports?status=pending", ""); r.status != 400 || !strings.Contains(r.errorOf(t).Message, "open, done or one of") {
		t.Errorf("unknown status: %d %s, want 400 naming the statuses", r.status, r.body)
	}
	if r := do(t, "GET", ts.url+"/v1/reports?bbox=0,0,1,1", ""); r.status != 200 || strings.Contains(string(r.body), `"api-1"`) {
		t.Errorf("list outside the bbox: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/v1/reports/"+id+"/events", `{"action":"close"}`); r.status != 409 {
		t.Errorf("illegal move: %d %s, want 409", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/v1/reports/"+id+"/events", `{"action":"register","actor":"值班员","note":"立案"}`); r.status != 200 ||
		!strings.Contains(string(r.body), `"status":"registered"`) {
		t.Errorf("register: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", ts.url+"/v1/reports/"+id+"/events", ""); r.status != 200 || strings.Count(string(r.body), `"action"`) != 2 {
		t.Errorf("events: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", ts.url+"/v1/reports/999999999", ""); r.status != 404 {
		t.Errorf("missing report: %d", r.status)
	}
}
