package server

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gridmap/gridmap"
)

// TestReportCategoryFilter files a report in each of the categories 1, its
// child 1.1, 10 and 1_0 near 104.06 E 30.605 N, where no other test puts
// anything, and filters them by category in the report list and the
// reports tiles.
func TestReportCategoryFilter(t *testing.T) {
	ts := newTestServer(t, Config{})
	rect := `{"type":"Polygon","coordinates":[[[104.05,30.6],[104.07,30.6],[104.07,30.61],[104.05,30.61],[104.05,30.6]]]}`
	if r := do(t, "PUT", ts.url+"/v1/layers/catapi", `{"levels":["district"]}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/v1/layers/catapi/import", `{"type":"FeatureCollection","features":[`+feat("CA", "", rect)+`]}`); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	eventually(t, "the layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?layer=catapi&lon=104.06&lat=30.605", "").body), `"CA"`)
	})
	codes := []string{"1", "1.1", "10", "1_0", "2"}
	for i, code := range codes {
		parent := ""
		if code == "1.1" {
			parent = `"parent":"1",`
		}
		if r := do(t, "PUT", ts.url+"/v1/categories/"+code, `{"name":"category `+code+`",`+parent+`"limit":{"value":1,"clock":"calendar_days"}}`); r.status != 201 {
			t.Fatalf("category %s: %d %s", code, r.status, r.body)
		}
		report := fmt.Sprintf(`{"external_id":"catapi-%s","category":%q,"description":"x","location":{"type":"Point","coordinates":[%g,30.605]}}`,
			code, code, 104.06+float64(i)*0.00005)
		if r := do(t, "POST", ts.url+"/v1/reports", report); r.status != 201 {
			t.Fatalf("report in %s: %d %s", code, r.status, r.body)
		}
	}
	tile := ts.url + "/tiles/reports/" + tileAt(16, 104.06, 30.605) + ".mvt"
	listed := func(t *testing.T, category string) []string {
		t.Helper()
		var body struct{ Reports []struct{ Category string } }
		r := do(t, "GET", ts.url+"/v1/reports?bbox=104.05,30.6,104.07,30.61&category="+url.QueryEscape(category), "")
		if r.status != 200 {
			t.Fatalf("GET /v1/reports?category=%s: %d %s", category, r.status, r.body)
		}
		r.json(t, &body)
		var got []string
		for _, rep := range body.Reports {
			got = append(got, rep.Category)
		}
		slices.Sort(got)
		return got
	}
	drawn := func(t *testing.T, category string) []string {
		t.Helper()
		r, ls := getTile(t, tile+"?category="+url.QueryEscape(category))
		if r.status != 200 {
			t.Fatalf("tile ?category=%s: %d %s", category, r.status, r.body)
		}
		var got []string
		for _, p := range features(ls, "reports") {
			got = append(got, fmt.Sprint(p["category"]))
		}
		slices.Sort(got)
		return got
	}

	for _, tc := range []struct{ name, category, want string }{
		{"a category brings its subcategories along", "1", "1,1.1"},
		{"10 is not a subcategory of 1", "10", "10"},
		{"underscore matches itself only", "1_0", "1_0"},
		{"a subcategory alone", "1.1", "1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := strings.Split(tc.want, ",")
			if got := listed(t, tc.category); !slices.Equal(got, want) {
				t.Errorf("GET /v1/reports?category=%s: %v, want %v", tc.category, got, want)
			}
			if got := drawn(t, tc.category); !slices.Equal(got, want) {
				t.Errorf("tile ?category=%s: %v, want %v", tc.category, got, want)
			}
		})
	}

	t.Run("an unknown category is a 400 that points to the list", func(t *testing.T) {
		for _, u := range []string{ts.url + "/v1/reports?category=nope", tile + "?category=nope"} {
			r := do(t, "GET", u, "")
			if r.status != 400 {
				t.Errorf("%s: %d %s, want 400", u, r.status, r.body)
				continue
			}
			if e := r.errorOf(t); e.Code != gridmap.EINVALID || !strings.Contains(e.Message, `"nope" does not exist`) || !strings.Contains(e.Message, "GET /v1/categories") {
				t.Errorf("%s: %+v", u, e)
			}
		}
	})

	t.Run("moving a subcategory to another parent moves its reports in cached tiles", func(t *testing.T) {
		drawn(t, "2") // cached with 2 alone
		if r := do(t, "PUT", ts.url+"/v1/categories/1.1", `{"name":"category 1.1","parent":"2","limit":{"value":1,"clock":"calendar_days"}}`); r.status != 200 {
			t.Fatalf("reparent: %d %s", r.status, r.body)
		}
		if got := listed(t, "2"); !slices.Equal(got, []string{"1.1", "2"}) {
			t.Errorf("GET /v1/reports?category=2 after the move: %v", got)
		}
		eventually(t, "the tiles of both parents follow the move", func() bool {
			return slices.Equal(drawn(t, "1"), []string{"1"}) && slices.Equal(drawn(t, "2"), []string{"1.1", "2"})
		})
	})
}
