package server

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
)

func TestEditingAPI(t *testing.T) {
	ts := newTestServer(t, Config{})
	base := ts.url + "/v1/layers/api-edit"
	fc := `{"type":"FeatureCollection","features":[` + strings.Join([]string{
		feat("D", "", square(0, 0, 2)),
		feat("S1", "D", square(0, 0, 1)), feat("S2", "D", square(1, 0, 1)),
		feat("S3", "D", square(0, 1, 1)), feat("S4", "D", square(1, 1, 1)),
	}, ",") + `]}`
	if r := do(t, "POST", base+"/import?levels=district,street", fc); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	street := func(geom string) string {
		return `{"type":"Feature","properties":{"level":"street","parent":"D"},"geometry":` + geom + `}`
	}
	loaded := time.Now()
	time.Sleep(20 * time.Millisecond)

	t.Run("overlapping a sibling is a 422 naming both, and nothing changes", func(t *testing.T) {
		r := do(t, "PUT", base+"/grids/S1", street(square(0, 0, 1.5)))
		e := r.errorOf(t)
		if r.status != 422 || len(e.Details) == 0 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if !strings.Contains(string(r.body), `"overlaps_sibling"`) || !strings.Contains(string(r.body), `"area_m2"`) || !strings.Contains(string(r.body), `"where"`) {
			t.Errorf("details %s", r.body)
		}
		if r := do(t, "GET", base+"/grids/S1", ""); r.header.Get("ETag") != `"1"` {
			t.Errorf("refused write changed the grid: ETag %s", r.header.Get("ETag"))
		}
	})
	t.Run("a dry run reports problems with a 200 and writes nothing", func(t *testing.T) {
		body := `{"dry_run":true,"operations":[{"op":"put","feature":` + strings.Replace(street(square(0, 0, 1.5)), `"level"`, `"code":"S1","level"`, 1) + `}]}`
		r := do(t, "POST", base+"/changesets", body)
		var res gridmap.ChangesetResult
		r.json(t, &res)
		if r.status != 200 || res.Applied || len(res.Problems) == 0 || res.Problems[0].Kind != gridmap.ProblemOverlapsSibling {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("a stale If-Match is a 412", func(t *testing.T) {
		r := do(t, "PUT", base+"/grids/S1", street(square(0, 0, 1)), "If-Match", `"9"`)
		if r.status != 412 || r.errorOf(t).Code != gridmap.EPRECONDITION {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("a changeset moves the edge between two streets", func(t *testing.T) {
		body := `{"reason":"move the edge","operations":[{"op":"move_edge","code":"S1","if_match":1,
			"geometry":{"type":"Polygon","coordinates":[[[0,0],[1.25,0],[1.25,1],[0,1],[0,0]]]}}]}`
		dry := do(t, "POST", base+"/changesets", strings.Replace(body, `"reason"`, `"dry_run":true,"reason"`, 1))
		var res gridmap.ChangesetResult
		dry.json(t, &res)
		if dry.status != 200 || res.Applied || res.Impact.AreaMovedM2 <= 0 {
			t.Fatalf("dry run: %d %s", dry.status, dry.body)
		}
		r := do(t, "POST", base+"/changesets", body)
		r.json(t, &res)
		if r.status != 200 || !res.Applied || res.Versions["S1"] != 2 || res.Versions["S2"] != 2 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var cov map[string][]map[string]any
		do(t, "GET", base+"/coverage?parent=D", "").json(t, &cov)
		if len(cov["gaps"])+len(cov["overlaps"])+len(cov["outside"]) != 0 {
			t.Errorf("coverage after moving the edge: %v", cov)
		}
	})
	t.Run("history and as-of", func(t *testing.T) {
		var hist struct {
			Features []struct{ Properties map[string]any }
		}
		do(t, "GET", base+"/grids/S1/history", "").json(t, &hist)
		if len(hist.Features) != 2 || hist.Features[1].Properties["reason"] != "move the edge" || hist.Features[0].Properties["valid_to"] == nil {
			t.Fatalf("history %+v", hist)
		}
		var past struct {
			Properties map[string]any
			Geometry   struct{ Coordinates [][][][2]float64 }
		}
		r := do(t, "GET", base+"/grids/S1?at="+url.QueryEscape(loaded.Format(time.RFC3339Nano)), "")
		r.json(t, &past)
		if r.status != 200 || past.Properties["version"] != 1.0 {
			t.Errorf("as of before the change: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", base+"/grids/S1?at=yesterday", ""); r.status != 400 {
			t.Errorf("bad at: %d", r.status)
		}
	})
	t.Run("split into given parts", func(t *testing.T) {
		half := func(x float64) string {
			return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,1],[%g,1],[%g,2],[%g,2],[%g,1]]]}`, x, x+0.5, x+0.5, x, x)
		}
		short := `{"operations":[{"op":"split","code":"S3","new_codes":["S3A","S3B"],"parts":[` + half(0) + `,` + half(0.2) + `]}]}`
		if r := do(t, "POST", base+"/changesets", short); r.status != 400 || !strings.Contains(r.errorOf(t).Message, "uncovered") {
			t.Errorf("parts that leave a hole: %d %s", r.status, r.body)
		}
		r := do(t, "POST", base+"/changesets", `{"operations":[{"op":"split","code":"S3","new_codes":["S3A","S3B"],"parts":[`+half(0)+`,`+half(0.5)+`]}]}`)
		var res gridmap.ChangesetResult
		r.json(t, &res)
		if r.status != 200 || res.Versions["S3A"] != 1 || res.Versions["S3B"] != 1 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var cov map[string][]map[string]any
		do(t, "GET", base+"/coverage?parent=D", "").json(t, &cov)
		if len(cov["gaps"])+len(cov["overlaps"])+len(cov["outside"]) != 0 {
			t.Errorf("coverage after the split: %v", cov)
		}
	})
	t.Run("delete leaves a gap the coverage report shows", func(t *testing.T) {
		if r := do(t, "DELETE", base+"/grids/S4", "", "If-Match", `"1"`); r.status != 204 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if r := do(t, "GET", base+"/grids/S4", ""); r.status != 404 {
			t.Errorf("deleted grid: %d", r.status)
		}
		var cov map[string][]map[string]any
		r := do(t, "GET", base+"/coverage", "")
		r.json(t, &cov)
		if len(cov["gaps"]) != 1 || cov["gaps"][0]["type"] != "Polygon" || fmt.Sprint(cov["gaps"][0]["codes"]) != "[D]" {
			t.Errorf("coverage %s", r.body)
		}
	})
	t.Run("malformed changesets are 400s", func(t *testing.T) {
		for _, body := range []string{`{"operations":[]}`, `{"operations":[{"op":"explode"}]}`, `{"operations":[{"op":"split","code":"S1"}]}`, `{"operatoins":[]}`} {
			if r := do(t, "POST", base+"/changesets", body); r.status != 400 {
				t.Errorf("%s: %d %s", body, r.status, r.body)
			}
		}
	})
}

// PUT /v1/layers/{layer}/grids/{code} answers 201 when it creates a grid,
// a code deleted earlier included, and 200 when it replaces one.
func TestPutGridAnswers201WhenItCreates(t *testing.T) {
	ts := newTestServer(t, Config{})
	base := ts.url + "/v1/layers/api-put-status"
	if r := do(t, "PUT", base, `{"levels":["district","street"]}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	district := feat("D", "", square(10, 10, 2))
	steps := []struct {
		name, method, code, body string
		status                   int
		etag                     string
	}{
		{"a new code is created", "PUT", "D", district, 201, `"1"`},
		{"putting it again replaces it", "PUT", "D", district, 200, `"2"`},
		{"delete", "DELETE", "D", "", 204, ""},
		{"a deleted code put again is created anew", "PUT", "D", district, 201, `"3"`},
		{"and then replaced", "PUT", "D", district, 200, `"4"`},
	}
	for _, st := range steps {
		r := do(t, st.method, base+"/grids/"+st.code, st.body)
		if r.status != st.status || r.header.Get("ETag") != st.etag {
			t.Errorf("%s: %d ETag %s, want %d %s: %s", st.name, r.status, r.header.Get("ETag"), st.status, st.etag, r.body)
		}
	}
}
