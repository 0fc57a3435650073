package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestOpen311(t *testing.T) {
	ts := newTestServer(t, Config{})
	rect := `{"type":"Polygon","coordinates":[[[122.5,31],[122.51,31],[122.51,31.01],[122.5,31.01],[122.5,31]]]}`
	for _, s := range []struct{ method, path, body string }{
		{"PUT", "/v1/layers/os", `{"levels":["district","street"]}`},
		{"POST", "/v1/layers/os/import", `{"type":"FeatureCollection","features":[` + feat("OD", "", rect) + "," + feat("OA", "OD", rect) + "]}"},
		{"PUT", "/v1/departments/os-cg", `{"name":"城市管理局"}`},
		{"PUT", "/v1/categories/os01", `{"name":"占道经营","departments":["os-cg"],"limit":{"value":4,"clock":"working_hours"}}`},
	} {
		if r := do(t, s.method, ts.url+s.path, s.body); r.status/100 != 2 {
			t.Fatalf("%s: %d %s", s.path, r.status, r.body)
		}
	}
	eventually(t, "the layer reaches the index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?layer=os&lon=122.505&lat=31.005", "").body), `"OA"`)
	})
	form := "application/x-www-form-urlencoded"
	body := url.Values{"service_code": {"os01"}, "lat": {"31.005"}, "long": {"122.505"}, "description": {"路边摆摊"},
		"address_string": {"文三路 1 号"}, "email": {"a@example.com"}}.Encode()

	r := do(t, "POST", ts.url+"/open311/v2/requests.json", body, "Content-Type", form)
	var created []struct {
		ID     string `json:"service_request_id"`
		Notice string `json:"service_notice"`
	}
	r.json(t, &created)
	if r.status != 201 || len(created) != 1 || created[0].ID == "" || created[0].Notice == "" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var again []struct {
		ID string `json:"service_request_id"`
	}
	r = do(t, "POST", ts.url+"/open311/v2/requests.json", body, "Content-Type", form)
	r.json(t, &again)
	if r.status != 200 || again[0].ID != created[0].ID {
		t.Errorf("the same submission again: %d %s", r.status, r.body)
	}

	type request struct {
		ID     string  `json:"service_request_id"`
		Status string  `json:"status"`
		Agency string  `json:"agency_responsible"`
		Code   string  `json:"service_code"`
		Name   string  `json:"service_name"`
		Lat    float64 `json:"lat"`
	}
	var one []request
	r = do(t, "GET", ts.url+"/open311/v2/requests/"+created[0].ID+".json", "")
	r.json(t, &one)
	if r.status != 200 || len(one) != 1 || one[0].Agency != "城市管理局" || one[0].Status != "open" || one[0].Name != "占道经营" || one[0].Lat != 31.005 {
		t.Errorf("request: %d %s", r.status, r.body)
	}
	lists := []string{
		"service_request_id=" + created[0].ID,
		"service_code=os01&status=open",
		"bbox=122.5,31,122.51,31.01",
	}
	for _, q := range lists {
		var list []request
		r := do(t, "GET", ts.url+"/open311/v2/requests.json?"+q, "")
		r.json(t, &list)
		found := false
		for _, x := range list {
			found = found || x.ID == created[0].ID
		}
		if r.status != 200 || !found {
			t.Errorf("requests.json?%s: %d %s", q, r.status, r.body)
		}
	}
	var closed []request
	do(t, "GET", ts.url+"/open311/v2/requests.json?service_code=os01&status=closed", "").json(t, &closed)
	if len(closed) != 0 {
		t.Errorf("closed requests: %+v", closed)
	}
	var services []struct {
		Code string `json:"service_code"`
		Name string `json:"service_name"`
	}
	do(t, "GET", ts.url+"/open311/v2/services.json", "").json(t, &services)
	if !strings.Contains(fmt.Sprint(services), "os01 占道经营") {
		t.Errorf("services: %+v", services)
	}
	if r := do(t, "GET", ts.url+"/open311/v2/services/os01.json", ""); r.status != 200 {
		t.Errorf("service: %d %s", r.status, r.body)
	}
	bad := []struct {
		body   string
		status int
	}{
		{url.Values{"service_code": {"os01"}, "lat": {"31"}}.Encode(), 400},
		{url.Values{"service_code": {"nope"}, "lat": {"31.005"}, "long": {"122.505"}}.Encode(), 422},
		{url.Values{"lat": {"31.005"}, "long": {"122.505"}}.Encode(), 400},
	}
	for _, b := range bad {
		r := do(t, "POST", ts.url+"/open311/v2/requests.json", b.body, "Content-Type", form)
		var errs []struct {
			Code        int
			Description string
		}
		if r.status != b.status || json.Unmarshal(r.body, &errs) != nil || len(errs) != 1 || errs[0].Code != b.status || errs[0].Description == "" {
			t.Errorf("%s: %d %s, want %d in the Open311 error format", b.body, r.status, r.body, b.status)
		}
	}
}
