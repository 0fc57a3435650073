package server

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/gridmap/gridmap"
)

// TestSearch finds grids by code prefix and name substring, and reports by
// id and external id, the caller's jurisdiction only.
func TestSearch(t *testing.T) {
	ts := newTestServer(t, Config{})
	walkWorld(t, ts, "srch")
	if r := do(t, "PUT", ts.url+"/v1/categories/srch-litter", `{"name":"Litter","departments":[],"limit":{"value":2,"clock":"working_days"}}`); r.status/100 != 2 {
		t.Fatalf("category: %d %s", r.status, r.body)
	}
	r := do(t, "POST", ts.url+"/v1/reports", `{"external_id":"hotline-20261129-0042","category":"srch-litter","location":{"type":"Point","coordinates":[121.005,31.005]}}`)
	var rep gridmap.Report
	r.json(t, &rep)
	if r.status != 201 {
		t.Fatalf("report: %d %s", r.status, r.body)
	}
	search := func(q string, header ...string) (gridmap.SearchResult, int) {
		var res gridmap.SearchResult
		r := do(t, "GET", ts.url+"/v1/search?layer=srch&q="+url.QueryEscape(q), "", header...)
		if r.status == 200 {
			r.json(t, &res)
		}
		return res, r.status
	}
	if res, _ := search("S1"); len(res.Grids) != 1 || res.Grids[0].Code != "S1" || res.Grids[0].BBox[0] != 121 {
		t.Errorf("code S1: %+v", res.Grids)
	}
	if res, _ := search("网格"); len(res.Grids) != 3 {
		t.Errorf("name 网格: %+v, want D, S1 and S2", res.Grids)
	}
	if res, _ := search("%"); len(res.Grids) != 0 {
		t.Errorf("%% is no wildcard: %+v", res.Grids)
	}
	for _, q := range []string{strconv.FormatInt(rep.ID, 10), "hotline-20261129"} {
		if res, _ := search(q); len(res.Reports) == 0 || res.Reports[0].ID != rep.ID || res.Reports[0].Primary != "S1" {
			t.Errorf("report by %q: %+v", q, res.Reports)
		}
	}
	other := bearer(ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: "srch", Code: "S2"}))
	if res, _ := search("hotline-20261129", other...); len(res.Reports) != 0 {
		t.Errorf("street S2's viewer finds S1's report: %+v", res.Reports)
	}
	if _, status := search(""); status != 400 {
		t.Errorf("empty q: %d, want 400", status)
	}
	if _, status := search("S1", noAuth...); status != 401 {
		t.Errorf("search without credentials: %d, want 401", status)
	}
}
