package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/paulmach/orb/geojson"
)

func rectangle(x0, y0, x1, y1 float64) string {
	return `{"type":"Polygon","coordinates":[[[` + strings.Join([]string{
		ftoa(x0) + "," + ftoa(y0), ftoa(x1) + "," + ftoa(y0), ftoa(x1) + "," + ftoa(y1), ftoa(x0) + "," + ftoa(y1), ftoa(x0) + "," + ftoa(y0),
	}, "],[") + `]]]}`
}

func ftoa(f float64) string { b, _ := json.Marshal(f); return string(b) }

func TestDraftsAPI(t *testing.T) {
	ts := newTestServer(t, Config{})
	base := ts.url + "/v1/layers/api-draft"
	fc := func(features ...string) string {
		return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`
	}
	if r := do(t, "POST", base+"/import?levels=district,street", fc(
		feat("D", "", rectangle(110, 20, 110.02, 20.01)),
		feat("S1", "D", rectangle(110, 20, 110.01, 20.01)),
		feat("S2", "D", rectangle(110.01, 20, 110.02, 20.01)))); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	finest := func() string {
		var a lookupJSON
		r := do(t, "GET", ts.url+"/v1/lookup?layer=api-draft&lon=110.0105&lat=20.005", "")
		if r.status != 200 || json.Unmarshal(r.body, &a) != nil || len(a.Layers["api-draft"].Chain) == 0 {
			return ""
		}
		chain := a.Layers["api-draft"].Chain
		return chain[len(chain)-1].Code
	}
	eventuallyWithin(t, 10*time.Second, "the layer reaches the lookup index", func() bool { return finest() == "S2" })
	overlapping := fc(feat("S1", "D", rectangle(110, 20, 110.012, 20.01)), feat("S2", "D", rectangle(110.01, 20, 110.02, 20.01)))

	t.Run("an overlapping import loads as a draft; the published layer and lookups stay", func(t *testing.T) {
		r := do(t, "POST", base+"/import?draft=true", overlapping)
		var res gridmap.ImportResult
		r.json(t, &res)
		if r.status != 200 || !res.Draft || len(res.Problems) != 1 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r = do(t, "GET", base+"/draft", "")
		var sum gridmap.DraftSummary
		r.json(t, &sum)
		if r.status != 200 || len(sum.Problems) != 1 || sum.Problems[0].Kind != gridmap.ProblemOverlapsSibling || sum.Problems[0].Where == nil {
			t.Errorf("summary %d %s", r.status, r.body)
		}
		if got := finest(); got != "S2" {
			t.Errorf("lookup answers %s from the draft", got)
		}
		if r := do(t, "GET", base+"/grids/S1", ""); r.header.Get("ETag") != `"1"` {
			t.Errorf("published S1: %s", r.header.Get("ETag"))
		}
		r = do(t, "GET", base+"/draft/grids", "")
		var grids geojson.FeatureCollection
		if r.status != 200 || json.Unmarshal(r.body, &grids) != nil || len(grids.Features) != 3 {
			t.Errorf("draft grids %d %s", r.status, r.body)
		}
		// draft=true on the layer's own routes reads and edits the draft,
		// for editors of the whole layer only.
		r = do(t, "GET", base+"/grids?draft=true", "")
		grids = geojson.FeatureCollection{}
		if r.status != 200 || json.Unmarshal(r.body, &grids) != nil || len(grids.Features) != 3 {
			t.Errorf("grids?draft=true %d %s", r.status, r.body)
		}
		viewer := bearer(ts.token(t, gridmap.RoleViewer, nil))
		for _, path := range []string{"/grids?draft=true", "/export?draft=true"} {
			if r := do(t, "GET", base+path, "", viewer...); r.status != 403 {
				t.Errorf("a viewer's %s: %d %s", path, r.status, r.body)
			}
		}
		if r := do(t, "POST", base+"/changesets?draft=true", `{"reason":"draft edit","dry_run":true,"operations":[{"op":"delete","code":"S1"}]}`); r.status != 200 {
			t.Errorf("changesets?draft=true: %d %s", r.status, r.body)
		}
		var cov struct{ Overlaps []map[string]any }
		r = do(t, "GET", base+"/coverage?draft=true", "")
		if r.status != 200 || json.Unmarshal(r.body, &cov) != nil || len(cov.Overlaps) != 1 {
			t.Errorf("coverage?draft=true: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", base+"/coverage?draft=true", "", viewer...); r.status != 403 {
			t.Errorf("a viewer's coverage?draft=true: %d %s", r.status, r.body)
		}
	})
	t.Run("a dirty draft is not published", func(t *testing.T) {
		r := do(t, "POST", base+"/publish", `{"reason":"too early"}`)
		if e := r.errorOf(t); r.status != 422 || len(e.Details) != 1 {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("resolve, then publish: lookups follow", func(t *testing.T) {
		if r := do(t, "POST", base+"/draft/resolve", `{"overlap":["S1","S2"],"give_to":"S1"}`); r.status != 200 {
			t.Fatalf("resolve: %d %s", r.status, r.body)
		}
		r := do(t, "POST", base+"/publish", `{"reason":"clean"}`)
		var res gridmap.PublishResult
		r.json(t, &res)
		if r.status != 200 || res.Versions["S1"] != 2 || res.Versions["S2"] != 2 {
			t.Fatalf("publish: %d %s", r.status, r.body)
		}
		eventuallyWithin(t, 10*time.Second, "the published draft reaches the lookup index", func() bool { return finest() == "S1" })
		if r := do(t, "GET", base+"/draft", ""); r.status != 404 {
			t.Errorf("draft after publish: %d", r.status)
		}
	})
	t.Run("a draft changeset takes the changeset operations", func(t *testing.T) {
		if r := do(t, "POST", base+"/import?draft=true", overlapping); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r := do(t, "POST", base+"/draft/changesets", `{"reason":"fix","operations":[{"op":"put","feature":`+
			`{"type":"Feature","properties":{"code":"S2"},"geometry":`+rectangle(110.012, 20, 110.02, 20.01)+`}}]}`)
		var res gridmap.ChangesetResult
		r.json(t, &res)
		if r.status != 200 || !res.Applied || len(res.Problems) != 0 {
			t.Errorf("%d %s", r.status, r.body)
		}
		if r := do(t, "DELETE", base+"/draft", ""); r.status != 204 {
			t.Errorf("discard: %d %s", r.status, r.body)
		}
	})
	t.Run("export streams every grid as a GeoJSON file", func(t *testing.T) {
		r := do(t, "GET", base+"/export?format=geojson", "")
		var fcol geojson.FeatureCollection
		if r.status != 200 || json.Unmarshal(r.body, &fcol) != nil || len(fcol.Features) != 3 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if d := r.header.Get("Content-Disposition"); d != `attachment; filename="api-draft.geojson"` {
			t.Errorf("Content-Disposition %q", d)
		}
		if r := do(t, "GET", base+"/export?format=shp", ""); r.status != 400 {
			t.Errorf("format=shp: %d", r.status)
		}
		if r := do(t, "GET", base+"/export?draft=true", ""); r.status != 404 {
			t.Errorf("export of a missing draft: %d", r.status)
		}
		scoped := bearer(ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: "api-draft", Code: "S2"}))
		r = do(t, "GET", base+"/export", "", scoped...)
		fcol = geojson.FeatureCollection{}
		if r.status != 200 || json.Unmarshal(r.body, &fcol) != nil || len(fcol.Features) != 1 || fcol.Features[0].Properties["code"] != "S2" {
			t.Errorf("scoped export: %d %s", r.status, r.body)
		}
	})
	t.Run("a scoped editor publishes only inside its scope", func(t *testing.T) {
		if r := do(t, "POST", base+"/import?draft=true", overlapping); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		editor := bearer(ts.token(t, gridmap.RoleEditor, &gridmap.Scope{Layer: "api-draft", Code: "S2"}))
		if r := do(t, "POST", base+"/publish", `{"allow":["overlaps_sibling"]}`, editor...); r.status != 403 {
			t.Errorf("scoped publish: %d %s", r.status, r.body)
		}
		if r := do(t, "POST", base+"/draft/resolve", `{"overlap":["S1","S2"],"give_to":"S2"}`, editor...); r.status != 403 {
			t.Errorf("scoped resolve reaching S1: %d %s", r.status, r.body)
		}
		if r := do(t, "DELETE", base+"/draft", ""); r.status != 204 {
			t.Errorf("discard: %d %s", r.status, r.body)
		}
	})
}
