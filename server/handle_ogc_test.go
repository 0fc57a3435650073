package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

type ogcFeatures struct {
	Type           string
	NumberMatched  int64 `json:"numberMatched"`
	NumberReturned int64 `json:"numberReturned"`
	Links          []ogcLink
	Features       []struct {
		ID         any
		Geometry   json.RawMessage
		Properties map[string]any
	}
}

func (f *ogcFeatures) link(rel string) string {
	for _, l := range f.Links {
		if l.Rel == rel {
			return l.Href
		}
	}
	return ""
}

func (f *ogcFeatures) ids() []string {
	var out []string
	for _, x := range f.Features {
		out = append(out, fmt.Sprint(x.ID))
	}
	return out
}

// ogcWorld is a district of five streets side by side (OS1 west to OS5
// east) with free attributes, at x0 to x0+0.05 E, 33.0-33.01 N.
func ogcWorld(t *testing.T, ts *testServer, layer string, x0 float64) {
	t.Helper()
	if r := do(t, "PUT", ts.url+"/v1/layers/"+layer, `{"name":"开放接口","kind":"comprehensive","levels":["district","street"]}`); r.status >= 300 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	fs := []string{feat("OD", "", fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,33],[%g,33],[%g,33.01],[%g,33.01],[%g,33]]]}`, x0, x0+0.05, x0+0.05, x0, x0))}
	for i := 1; i <= 5; i++ {
		x := x0 + float64(i-1)*0.01
		fs = append(fs, fmt.Sprintf(`{"type":"Feature","properties":{"code":"OS%d","name":"第%d网格","level":"street","parent":"OD","households":%d,"office":"站%d","staffed":%t},"geometry":%s}`,
			i, i, i*100, i, i%2 == 1, square(x, 33, 0.01)))
	}
	if r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/import", `{"type":"FeatureCollection","features":[`+strings.Join(fs, ",")+`]}`); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
}

func TestOGC(t *testing.T) {
	ts := newTestServer(t, Config{})
	layer := "ogc"
	ogcWorld(t, ts, layer, 126)
	items := ts.url + "/ogc/collections/" + layer + "/items"
	get := func(t *testing.T, u string, header ...string) *ogcFeatures {
		t.Helper()
		r := do(t, "GET", u, "", header...)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", u, r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, mediaGeoJSON) {
			t.Errorf("GET %s: Content-Type %q", u, ct)
		}
		var f ogcFeatures
		r.json(t, &f)
		return &f
	}

	t.Run("the landing page links to the API, the conformance classes and the data", func(t *testing.T) {
		var landing struct{ Links []ogcLink }
		do(t, "GET", ts.url+"/ogc", "").json(t, &landing)
		for _, rel := range []string{"self", "service-desc", "service-doc", "conformance", "data"} {
			if !slices.ContainsFunc(landing.Links, func(l ogcLink) bool { return l.Rel == rel && strings.HasPrefix(l.Href, ts.url) }) {
				t.Errorf("no %s link: %+v", rel, landing.Links)
			}
		}
		var conf struct{ ConformsTo []string }
		do(t, "GET", ts.url+"/ogc/conformance", "").json(t, &conf)
		for _, c := range []string{"/ogcapi-features-1/1.0/conf/core", "/conf/geojson", "/conf/oas30", "/ogcapi-features-3/1.0/conf/filter",
			"/ogcapi-features-3/1.0/conf/features-filter", "/cql2/1.0/conf/cql2-text", "/cql2/1.0/conf/basic-cql2"} {
			if !slices.ContainsFunc(conf.ConformsTo, func(s string) bool { return strings.HasSuffix(s, c) }) {
				t.Errorf("conformance lacks %s: %v", c, conf.ConformsTo)
			}
		}
	})

	t.Run("every layer is a collection with its extent", func(t *testing.T) {
		var cols struct{ Collections []ogcCollection }
		do(t, "GET", ts.url+"/ogc/collections", "").json(t, &cols)
		i := slices.IndexFunc(cols.Collections, func(c ogcCollection) bool { return c.ID == layer })
		if i < 0 {
			t.Fatalf("no collection %s", layer)
		}
		if b := cols.Collections[i].Extent.Spatial.BBox; len(b) != 1 || math.Abs(b[0][0]-126) > 1e-6 || math.Abs(b[0][2]-126.05) > 1e-6 || math.Abs(b[0][3]-33.01) > 1e-6 {
			t.Errorf("extent %v", b)
		}
		if !slices.ContainsFunc(cols.Collections, func(c ogcCollection) bool { return c.ID == gridmap.ReportsCollection }) {
			t.Errorf("an admin does not see the reports collection")
		}
		var one ogcCollection
		do(t, "GET", ts.url+"/ogc/collections/"+layer, "").json(t, &one)
		if one.ID != layer || one.StorageCRS != crs84 || len(one.Links) < 3 {
			t.Errorf("collection: %+v", one)
		}
		if r := do(t, "GET", ts.url+"/ogc/collections/no-such-layer", ""); r.status != 404 {
			t.Errorf("an unknown collection: %d", r.status)
		}
	})

	t.Run("pages through every feature by next links", func(t *testing.T) {
		var seen []string
		u := items + "?limit=2"
		for pages := 0; u != ""; pages++ {
			if pages > 5 {
				t.Fatal("too many pages")
			}
			f := get(t, u)
			if f.NumberMatched != 6 || f.NumberReturned != int64(len(f.Features)) {
				t.Fatalf("page %d: matched %d, returned %d of %d", pages, f.NumberMatched, f.NumberReturned, len(f.Features))
			}
			if pages > 0 && f.link("prev") == "" {
				t.Errorf("page %d has no prev link", pages)
			}
			seen = append(seen, f.ids()...)
			u = f.link("next")
		}
		if want := []string{"OD", "OS1", "OS2", "OS3", "OS4", "OS5"}; !slices.Equal(seen, want) {
			t.Errorf("paged through %v, want %v", seen, want)
		}
	})

	t.Run("filters: bbox, level, parent, properties, CQL2", func(t *testing.T) {
		for _, tc := range []struct {
			name, query string
			want        []string
		}{
			{"bbox", "bbox=126.005,33.001,126.015,33.002&level=street", []string{"OS1", "OS2"}},
			{"level", "level=district", []string{"OD"}},
			{"parent", "parent=OD&limit=3", []string{"OS1", "OS2", "OS3"}},
			{"a text attribute", "office=" + url.QueryEscape("站4"), []string{"OS4"}},
			{"a number attribute", "households=300", []string{"OS3"}},
			{"a boolean attribute", "staffed=false", []string{"OS2", "OS4"}},
			{"CQL2 comparison", "filter=" + url.QueryEscape("households >= 400 AND level = 'street'"), []string{"OS4", "OS5"}},
			{"CQL2 OR, NOT, LIKE", "filter=" + url.QueryEscape("code = 'OD' OR (NOT staffed = true AND name LIKE '%4%')"), []string{"OD", "OS4"}},
			{"CQL2 IN and BETWEEN", "filter=" + url.QueryEscape("code IN ('OS1','OS5') OR households BETWEEN 150 AND 250"), []string{"OS1", "OS2", "OS5"}},
			{"CQL2 S_INTERSECTS with a point", "filter=" + url.QueryEscape("S_INTERSECTS(geometry, POINT(126.025 33.005)) AND level = 'street'"), []string{"OS3"}},
			{"CQL2 S_INTERSECTS with a bbox", "filter=" + url.QueryEscape("S_INTERSECTS(geometry, BBOX(126.041, 33.001, 126.049, 33.009))"), []string{"OD", "OS5"}},
			{"SQL in a value is data", "filter=" + url.QueryEscape("name = 'x''; DROP TABLE grid_versions; --'"), nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := get(t, items+"?"+tc.query).ids(); !slices.Equal(got, tc.want) {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			})
		}
		var n int
		if err := pgtest.Shared(t).Pool.QueryRow(context.Background(), `SELECT count(*) FROM grid_versions WHERE layer_id = $1`, layer).Scan(&n); err != nil || n < 6 {
			t.Errorf("after a filter with SQL in it the grids are %d (%v)", n, err)
		}
	})

	t.Run("bad parameters get 400 saying what to fix", func(t *testing.T) {
		for _, tc := range []struct{ query, says string }{
			{"filter=" + url.QueryEscape("colour = 'red'"), `"colour"`},
			{"filter=" + url.QueryEscape("S_CONTAINS(geometry, POINT(1 2))"), "S_CONTAINS"},
			{"filter=" + url.QueryEscape("households = 'many'"), "households"},
			{"filter=" + url.QueryEscape("code = 'a' garbage"), "garbage"},
			{"filter-lang=cql2-json&filter=x", "cql2-text"},
			{"colour=red", `"colour"`},
			{"limit=0", "limit"},
			{"offset=-1", "offset"},
			{"bbox=1,2,3", "bbox"},
			{"crs=EPSG:3857", "CRS84"},
			{"datetime=yesterday", "datetime"},
			{"datetime=" + url.QueryEscape("2024-01-01T00:00:00Z/2024-02-01T00:00:00Z"), "instant"},
			{"households=lots", "number"},
			{"f=xml", "f=json"},
		} {
			r := do(t, "GET", items+"?"+tc.query, "")
			if r.status != 400 || !strings.Contains(r.errorOf(t).Message, tc.says) {
				t.Errorf("%s: %d %s, want 400 saying %s", tc.query, r.status, r.body, tc.says)
			}
		}
	})

	t.Run("one feature, and 404 for an unknown one", func(t *testing.T) {
		r := do(t, "GET", items+"/OS2", "")
		var f struct {
			ID         string
			Properties map[string]any
			Links      []ogcLink
		}
		r.json(t, &f)
		if r.status != 200 || f.ID != "OS2" || f.Properties["households"] != 200.0 || f.Properties["parent"] != "OD" || len(f.Links) == 0 {
			t.Errorf("OS2: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", items+"/NOPE", ""); r.status != 404 {
			t.Errorf("unknown feature: %d", r.status)
		}
	})

	t.Run("datetime before an edit gives the old outline", func(t *testing.T) {
		before := time.Now().UTC()
		time.Sleep(10 * time.Millisecond) // the edit's valid_from after it
		if r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/changesets", `{"reason":"划转","operations":[{"op":"transfer","from":"OS1","to":"OS2",
			"area":`+square(126.005, 33, 0.006)+`}]}`); r.status != 200 {
			t.Fatalf("changeset: %d %s", r.status, r.body)
		}
		area := func(geom json.RawMessage) float64 {
			var g struct{ Coordinates [][][][]float64 }
			if json.Unmarshal(geom, &g) != nil || len(g.Coordinates) == 0 {
				return 0
			}
			var a float64
			ring := g.Coordinates[0][0]
			for i := 0; i+1 < len(ring); i++ {
				a += ring[i][0]*ring[i+1][1] - ring[i+1][0]*ring[i][1]
			}
			return a / 2
		}
		now := get(t, items+"?code=OS1")
		then := get(t, items+"?code=OS1&datetime="+url.QueryEscape(before.Format(time.RFC3339Nano)))
		if len(now.Features) != 1 || len(then.Features) != 1 {
			t.Fatalf("OS1 now %d, then %d features", len(now.Features), len(then.Features))
		}
		if a, b := area(then.Features[0].Geometry), area(now.Features[0].Geometry); a < 0.99e-4 || b > 0.51e-4 {
			t.Errorf("OS1 covered %g square degrees before the edit and %g after, want 1e-4 and 0.5e-4", a, b)
		}
		if v := then.Features[0].Properties["version"]; v != 1.0 {
			t.Errorf("the version as of then: %v", v)
		}
		var one struct{ Properties struct{ Version int } }
		do(t, "GET", items+"/OS1?datetime="+url.QueryEscape(before.Format(time.RFC3339Nano)), "").json(t, &one)
		if one.Properties.Version != 1 {
			t.Errorf("items/OS1 as of then: version %d", one.Properties.Version)
		}
	})

	t.Run("queryables list the fields and the free attributes with their types", func(t *testing.T) {
		var q struct {
			Properties map[string]map[string]any
		}
		do(t, "GET", ts.url+"/ogc/collections/"+layer+"/queryables", "").json(t, &q)
		for name, typ := range map[string]string{"code": "string", "version": "integer", "households": "number", "office": "string", "staffed": "boolean"} {
			if q.Properties[name]["type"] != typ {
				t.Errorf("queryable %s: %v, want type %s", name, q.Properties[name], typ)
			}
		}
		if q.Properties["geometry"] == nil {
			t.Error("no geometry queryable")
		}
	})

	t.Run("the HTML view", func(t *testing.T) {
		r := do(t, "GET", items+"?f=html", "")
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "第3网格") {
			t.Errorf("items as HTML: %d %s", r.status, r.body)
		}
		r = do(t, "GET", ts.url+"/ogc/collections", "", "Accept", "text/html,application/xhtml+xml")
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), layer) {
			t.Errorf("a browser's collections: %s %s", r.header.Get("Content-Type"), r.body)
		}
	})

	t.Run("the OGC API document validates and lists every /ogc route", func(t *testing.T) {
		r := do(t, "GET", ts.url+"/ogc/api", "")
		doc, err := openapi3.NewLoader().LoadFromData(r.body)
		if err != nil {
			t.Fatal(err)
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Fatalf("invalid: %v", err)
		}
		for _, rt := range ts.echo.Routes() {
			if !strings.HasPrefix(rt.Path, "/ogc") {
				continue
			}
			p := ""
			for _, seg := range strings.Split(rt.Path, "/") {
				if name, ok := strings.CutPrefix(seg, ":"); ok {
					seg = "{" + name + "}"
				}
				p += "/" + seg
			}
			p = ogcAPIPath(strings.TrimPrefix(p, "/"))
			if doc.Paths.Find(p) == nil {
				t.Errorf("%s %s is not in /ogc/api", rt.Method, rt.Path)
			}
		}
	})
}

// TestOGCAccess: reports as a collection only for those who may read
// reports, each their jurisdiction's, by the time they were reported; a
// draft only for editors of the whole layer.
func TestOGCAccess(t *testing.T) {
	ts := newTestServer(t, Config{})
	layer := "ogca"
	ogcWorld(t, ts, layer, 127)
	for _, s := range []struct{ path, body string }{
		{"/v1/departments/ogc-cg", `{"name":"城管"}`},
		{"/v1/categories/ogc-01", `{"name":"市容环境","departments":["ogc-cg"],"limit":{"value":4,"clock":"working_hours"}}`},
	} {
		if r := do(t, "PUT", ts.url+s.path, s.body); r.status/100 != 2 {
			t.Fatalf("%s: %d %s", s.path, r.status, r.body)
		}
	}
	eventually(t, "the layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?layer="+layer+"&lon=127.005&lat=33.005", "").body), `"OS1"`)
	})
	for i, r := range []struct{ lon, at string }{{"127.005", "2026-03-01T10:00:00+08:00"}, {"127.015", "2026-03-05T10:00:00+08:00"}, {"127.045", "2026-04-01T10:00:00+08:00"}} {
		body := fmt.Sprintf(`{"external_id":"ogc-%d","category":"ogc-01","location":{"type":"Point","coordinates":[%s,33.005]},"reported_at":%q}`, i, r.lon, r.at)
		if res := do(t, "POST", ts.url+"/v1/reports", body); res.status != 201 && res.status != 200 {
			t.Fatalf("report %d: %d %s", i, res.status, res.body)
		}
	}
	reports := ts.url + "/ogc/collections/" + gridmap.ReportsCollection + "/items?limit=100&layer=" + layer
	externalIDs := func(t *testing.T, u string, header ...string) []string {
		t.Helper()
		r := do(t, "GET", u, "", header...)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", u, r.status, r.body)
		}
		var f ogcFeatures
		r.json(t, &f)
		var out []string
		for _, x := range f.Features {
			out = append(out, x.Properties["external_id"].(string))
		}
		slices.Sort(out)
		return out
	}
	if got := externalIDs(t, reports); !slices.Equal(got, []string{"ogc-0", "ogc-1", "ogc-2"}) {
		t.Errorf("an admin sees %v", got)
	}
	scoped := bearer(ts.token(t, gridmap.RoleViewer, &gridmap.Scope{Layer: layer, Code: "OS1"}))
	if got := externalIDs(t, reports, scoped...); !slices.Equal(got, []string{"ogc-0"}) {
		t.Errorf("a viewer of OS1 sees %v", got)
	}
	if got := externalIDs(t, reports+"&datetime="+url.QueryEscape("2026-03-01T00:00:00Z/2026-03-31T00:00:00Z")); !slices.Equal(got, []string{"ogc-0", "ogc-1"}) {
		t.Errorf("reported in March: %v", got)
	}
	if got := externalIDs(t, reports+"&datetime="+url.QueryEscape("2026-03-02T00:00:00Z/..")); !slices.Equal(got, []string{"ogc-1", "ogc-2"}) {
		t.Errorf("reported from 2 March: %v", got)
	}
	if got := externalIDs(t, reports+"&filter="+url.QueryEscape("reported_at >= TIMESTAMP('2026-03-31T00:00:00Z') OR grid = 'OS1'")); !slices.Equal(got, []string{"ogc-0", "ogc-2"}) {
		t.Errorf("a CQL2 filter on the reports: %v", got)
	}
	if r := do(t, "GET", reports, "", noAuth...); r.status != 401 {
		t.Errorf("anonymous reports: %d", r.status)
	}
	var cols struct{ Collections []ogcCollection }
	do(t, "GET", ts.url+"/ogc/collections", "", scoped...).json(t, &cols)
	if !slices.ContainsFunc(cols.Collections, func(c ogcCollection) bool { return c.ID == gridmap.ReportsCollection }) {
		t.Error("a viewer is not offered the reports")
	}

	// A draft: for editors of the whole layer only.
	if r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/import?draft=true", `{"type":"FeatureCollection","features":[`+
		feat("OS9", "OD", square(127.0, 33.0, 0.004))+`]}`); r.status != 200 {
		t.Fatalf("draft import: %d %s", r.status, r.body)
	}
	draft := ts.url + "/ogc/collections/" + layer + gridmap.DraftCollectionSuffix + "/items?limit=100"
	if ids := get(t, draft).ids(); !slices.Contains(ids, "OS9") || !slices.Contains(ids, "OS1") {
		t.Errorf("the draft holds %v", ids)
	}
	if r := do(t, "GET", draft, "", scoped...); r.status != 403 {
		t.Errorf("a scoped viewer reads the draft: %d", r.status)
	}
	if r := do(t, "GET", ts.url+"/ogc/collections/"+layer+"/items?code=OS9", ""); r.status != 200 || strings.Contains(string(r.body), `"OS9"`) {
		t.Errorf("the published layer shows the draft's grid: %s", r.body)
	}
	do(t, "GET", ts.url+"/ogc/collections", "").json(t, &cols)
	if !slices.ContainsFunc(cols.Collections, func(c ogcCollection) bool { return c.ID == layer+gridmap.DraftCollectionSuffix }) {
		t.Error("an admin is not offered the draft")
	}
}

func get(t *testing.T, u string, header ...string) *ogcFeatures {
	t.Helper()
	r := do(t, "GET", u, "", header...)
	if r.status != 200 {
		t.Fatalf("GET %s: %d %s", u, r.status, r.body)
	}
	var f ogcFeatures
	r.json(t, &f)
	return &f
}

// TestOGCConcurrentPaging: clients page through a layer at once over a
// pool of two connections while an editor changes it; every page is one
// snapshot (the codes in order, numberMatched as counted with them), and
// nothing is refused.
func TestOGCConcurrentPaging(t *testing.T) {
	db := pgtest.SharedWith(t, postgres.Options{MaxConns: 2})
	ts := newTestServerOn(t, Config{}, db)
	layer := "ogcc"
	ogcWorld(t, ts, layer, 128)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // an editor moves an edge back and forth, and adds and ends a district
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			x := 128.0095 + 0.001*float64(i%2)
			ring := fmt.Sprintf(`[[[128,33],[%g,33],[%g,33.01],[128,33.01],[128,33]]]`, x, x)
			ops := `{"op":"move_edge","code":"OS1","geometry":{"type":"Polygon","coordinates":` + ring + `}}`
			if i%2 == 0 {
				ops += `,{"op":"put","feature":` + feat("OE", "", square(128.2, 33, 0.01)) + `}`
			} else {
				ops += `,{"op":"delete","code":"OE"}`
			}
			r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/changesets", `{"reason":"微调","operations":[`+ops+`]}`)
			if r.status != 200 {
				errs <- fmt.Errorf("edit: %d %s", r.status, r.body)
				return
			}
		}
	}()
	var readers sync.WaitGroup
	for c := range 8 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for range 5 {
				var seen []string
				u := ts.url + "/ogc/collections/" + layer + "/items?limit=" + fmt.Sprint(1+c%3)
				for u != "" {
					r := do(t, "GET", u, "")
					if r.status != 200 {
						errs <- fmt.Errorf("reader %d: %d %s", c, r.status, r.body)
						return
					}
					var f ogcFeatures
					if err := json.Unmarshal(r.body, &f); err != nil || (f.NumberMatched != 6 && f.NumberMatched != 7) {
						errs <- fmt.Errorf("reader %d: matched %d (%v)", c, f.NumberMatched, err)
						return
					}
					// The count and the page come from one snapshot.
					offset := len(seen)
					if want := min(int64(1+c%3), f.NumberMatched-int64(offset)); f.NumberReturned != want || int64(len(f.Features)) != want {
						errs <- fmt.Errorf("reader %d at %d: matched %d, returned %d with %d features, want %d", c, offset, f.NumberMatched, f.NumberReturned, len(f.Features), want)
						return
					}
					seen = append(seen, f.ids()...)
					u = f.link("next")
				}
				// OE comes and goes between pages, so an offset may step
				// over a grid or come back to one; the order holds.
				if !slices.IsSorted(seen) {
					errs <- fmt.Errorf("reader %d paged through %v", c, seen)
					return
				}
			}
		}()
	}
	readers.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestOGCLinksAndNames: codes with characters that need escaping in a
// path, names with markup, attributes named like SQL and like the grid's
// own fields, report items, and the limits of a page.
func TestOGCLinksAndNames(t *testing.T) {
	ts := newTestServer(t, Config{})
	layer := "ogcl"
	if r := do(t, "PUT", ts.url+"/v1/layers/"+layer, `{"name":"链接","kind":"departmental","levels":["zone"]}`); r.status >= 300 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	zone := func(code, name, attrs string, x float64) string {
		return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":%q,"level":"zone"%s},"geometry":%s}`, code, name, attrs, square(x, 34, 0.01))
	}
	body := `{"type":"FeatureCollection","features":[` + strings.Join([]string{
		zone("Z;1/a b", "<b>一区</b>", `,"open?":1,"it's \\ odd":"yes","version":99`, 129),
		zone("Z,2", "二区", `,"open?":2`, 129.02),
	}, ",") + `]}`
	if r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	items := ts.url + "/ogc/collections/" + layer + "/items"

	t.Run("an item's link leads to it whatever its code holds", func(t *testing.T) {
		f := get(t, items+"?limit=1")
		next := f.link("next")
		if next == "" {
			t.Fatal("no next link")
		}
		r := do(t, "GET", items+"/"+url.PathEscape("Z;1/a b"), "")
		var one struct {
			ID         string
			Properties map[string]any
		}
		r.json(t, &one)
		if r.status != 200 || one.ID != "Z;1/a b" {
			t.Fatalf("Z;1/a b: %d %s", r.status, r.body)
		}
		if one.Properties["version"] != 1.0 {
			t.Errorf("an attribute named version overrode the grid's: %v", one.Properties["version"])
		}
		if strings.Count(string(r.body), `"version"`) != 1 {
			t.Errorf("version appears more than once: %s", r.body)
		}
		if got := get(t, next).ids(); !slices.Equal(got, []string{"Z;1/a b"}) {
			t.Errorf("the next page: %v", got)
		}
	})

	t.Run("attributes named with quotes, backslashes and question marks filter", func(t *testing.T) {
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{url.QueryEscape("open?") + "=2", []string{"Z,2"}},
			{url.QueryEscape(`it's \ odd`) + "=yes", []string{"Z;1/a b"}},
			{"filter=" + url.QueryEscape(`"open?" >= 1 AND "it's \ odd" = 'yes'`), []string{"Z;1/a b"}},
		} {
			if got := get(t, items+"?"+tc.query).ids(); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %v, want %v", tc.query, got, tc.want)
			}
		}
	})

	t.Run("the HTML view escapes names and links to items", func(t *testing.T) {
		r := do(t, "GET", items+"?f=html", "")
		page := string(r.body)
		if strings.Contains(page, "<b>一区</b>") || !strings.Contains(page, "&lt;b&gt;一区&lt;/b&gt;") {
			t.Errorf("the name is not escaped: %s", page)
		}
		if !strings.Contains(page, `/items/Z%3B1%2Fa%20b?f=html`) {
			t.Errorf("no escaped link to Z;1/a b: %s", page)
		}
		if r.header.Get("Vary") != "Accept" {
			t.Errorf("Vary %q", r.header.Get("Vary"))
		}
	})

	t.Run("a page is at most 10,000 features, and a bbox may carry heights", func(t *testing.T) {
		f := get(t, items+"?limit=20000&bbox=128.9,33.9,-10,129.015,34.1,10")
		if !slices.Equal(f.ids(), []string{"Z;1/a b"}) {
			t.Errorf("bbox with heights: %v", f.ids())
		}
		if self := f.link("self"); !strings.Contains(self, "limit=20000") {
			t.Errorf("self: %s", self)
		}
		r := do(t, "GET", items+"?limit=20000&offset=1", "")
		var page ogcFeatures
		r.json(t, &page)
		if prev := page.link("prev"); !strings.Contains(prev, "limit=10000") || !strings.Contains(prev, "offset=0") {
			t.Errorf("prev link of a clamped page: %s", prev)
		}
	})

	t.Run("reports: one by id, and grid parameters refused", func(t *testing.T) {
		reports := ts.url + "/ogc/collections/" + gridmap.ReportsCollection + "/items"
		for _, tc := range []struct {
			path   string
			status int
		}{
			{"/not-a-number", 404},
			{"/999999999999", 404},
			{"?level=zone", 400},
			{"?datetime=" + url.QueryEscape("2026-03-01T00:00:00Z/2026-02-01T00:00:00Z"), 400},
		} {
			if r := do(t, "GET", reports+tc.path, ""); r.status != tc.status {
				t.Errorf("%s: %d %s, want %d", tc.path, r.status, r.body, tc.status)
			}
		}
	})
}

// TestOGCPublicRead: with --public-read anonymous callers read the layers,
// not the reports nor the drafts, which are not offered to them either.
func TestOGCPublicRead(t *testing.T) {
	ts := newTestServer(t, Config{PublicRead: true})
	layer := "ogcp"
	ogcWorld(t, ts, layer, 130)
	if r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/import?draft=true", `{"type":"FeatureCollection","features":[`+
		feat("OS9", "OD", square(130, 33, 0.004))+`]}`); r.status != 200 {
		t.Fatalf("draft import: %d %s", r.status, r.body)
	}
	if f := get(t, ts.url+"/ogc/collections/"+layer+"/items", noAuth...); f.NumberMatched != 6 {
		t.Errorf("anonymous grids: %d", f.NumberMatched)
	}
	for _, path := range []string{
		"/ogc/collections/" + gridmap.ReportsCollection + "/items",
		"/ogc/collections/" + gridmap.ReportsCollection,
		"/ogc/collections/" + layer + gridmap.DraftCollectionSuffix + "/items",
		"/ogc/collections/" + layer + gridmap.DraftCollectionSuffix + "/queryables",
	} {
		if r := do(t, "GET", ts.url+path, "", noAuth...); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("anonymous %s: %d %s, want 401 with a challenge", path, r.status, r.body)
		}
	}
	var cols struct{ Collections []ogcCollection }
	do(t, "GET", ts.url+"/ogc/collections", "", noAuth...).json(t, &cols)
	for _, c := range cols.Collections {
		if c.ID == gridmap.ReportsCollection || strings.HasSuffix(c.ID, gridmap.DraftCollectionSuffix) {
			t.Errorf("anonymous callers are offered %s", c.ID)
		}
	}
	if !slices.ContainsFunc(cols.Collections, func(c ogcCollection) bool { return c.ID == layer }) {
		t.Errorf("anonymous callers are not offered %s", layer)
	}
}
