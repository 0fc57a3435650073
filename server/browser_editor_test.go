package server

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestEditor redraws a street in the boundary editor in a real browser:
// the vertex at the top of the edge it shares with the next street is
// dragged into that street and the draft published. Both streets then
// have a new version, their district is still covered exactly, and the
// lookup gives the moved area to the street that grew.
func TestEditor(t *testing.T) {
	ts := newTestServer(t, Config{})
	layer := "edt"
	rect := func(x0, y0, x1, y1 float64) string {
		return `{"type":"Polygon","coordinates":[[[` + num(x0) + `,` + num(y0) + `],[` + num(x1) + `,` + num(y0) + `],[` + num(x1) + `,` + num(y1) + `],[` + num(x0) + `,` + num(y1) + `],[` + num(x0) + `,` + num(y0) + `]]]}`
	}
	body := `{"type":"FeatureCollection","features":[` + strings.Join([]string{
		feat("ED", "", rect(125.0, 32.0, 125.02, 32.01)),
		feat("ES1", "ED", rect(125.0, 32.0, 125.01, 32.01)),
		feat("ES2", "ED", rect(125.01, 32.0, 125.02, 32.01)),
	}, ",") + `]}`
	if r := do(t, "PUT", ts.url+"/v1/layers/"+layer, `{"name":"编辑测试","kind":"comprehensive","levels":["district","street"]}`); r.status >= 300 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/v1/layers/"+layer+"/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	owner := func(lon, lat float64) string { return finestOwner(t, ts, layer, lon, lat) }
	eventually(t, "the layer reaches the lookup index", func() bool { return owner(125.005, 32.005) == "ES1" })
	if got := owner(125.0105, 32.009); got != "ES2" {
		t.Fatalf("before the edit the place belongs to %q, want ES2", got)
	}

	// A second layer, holding only a district, and a file of two streets
	// under it that overlap by a strip: the draft import.
	draftLayer := "edd"
	if r := do(t, "PUT", ts.url+"/v1/layers/"+draftLayer, `{"name":"草稿测试","kind":"comprehensive","levels":["district","street"]}`); r.status >= 300 {
		t.Fatalf("draft layer: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/v1/layers/"+draftLayer+"/import", `{"type":"FeatureCollection","features":[`+feat("DD", "", rect(125.1, 32.0, 125.12, 32.01))+`]}`); r.status != 200 {
		t.Fatalf("draft layer import: %d %s", r.status, r.body)
	}
	draftFile := filepath.Join(t.TempDir(), "streets.geojson")
	streets := `{"type":"FeatureCollection","features":[` + feat("DS1", "DD", rect(125.1, 32.0, 125.111, 32.01)) + "," + feat("DS2", "DD", rect(125.109, 32.0, 125.12, 32.01)) + `]}`
	if err := os.WriteFile(draftFile, []byte(streets), 0o600); err != nil {
		t.Fatal(err)
	}

	// A third layer: a street of 5,000 vertices (a circle) and its district,
	// for the frame rate of a drag.
	bigLayer := "edv"
	if r := do(t, "PUT", ts.url+"/v1/layers/"+bigLayer, `{"name":"大网格","kind":"comprehensive","levels":["district","street"]}`); r.status >= 300 {
		t.Fatalf("big layer: %d %s", r.status, r.body)
	}
	var ring strings.Builder
	for i := 0; i <= 5000; i++ {
		a := 2 * math.Pi * float64(i%5000) / 5000
		if i > 0 {
			ring.WriteByte(',')
		}
		ring.WriteString("[" + num(math.Round((125.2+0.01*math.Cos(a))*1e7)/1e7) + "," + num(math.Round((32.0+0.008*math.Sin(a))*1e7)/1e7) + "]")
	}
	circle := `{"type":"Polygon","coordinates":[[` + ring.String() + `]]}`
	if r := do(t, "POST", ts.url+"/v1/layers/"+bigLayer+"/import", `{"type":"FeatureCollection","features":[`+
		feat("VD", "", rect(125.18, 31.98, 125.22, 32.02))+","+feat("VS", "VD", circle)+`]}`); r.status != 200 {
		t.Fatalf("big layer import: %d %s", r.status, r.body)
	}

	// A fourth: a district of two streets, the first with an attribute, for
	// a transfer and the attributes form.
	transferLayer := "edx"
	if r := do(t, "PUT", ts.url+"/v1/layers/"+transferLayer, `{"name":"划转测试","kind":"comprehensive","levels":["district","street"]}`); r.status >= 300 {
		t.Fatalf("transfer layer: %d %s", r.status, r.body)
	}
	xs1 := `{"type":"Feature","properties":{"code":"XS1","name":"西门街道","level":"street","parent":"XD","office":"西门社区工作站","population":3000},"geometry":` + rect(125.3, 32.0, 125.31, 32.01) + `}`
	if r := do(t, "POST", ts.url+"/v1/layers/"+transferLayer+"/import", `{"type":"FeatureCollection","features":[`+
		feat("XD", "", rect(125.3, 32.0, 125.32, 32.01))+","+xs1+","+feat("XS2", "XD", rect(125.31, 32.0, 125.32, 32.01))+`]}`); r.status != 200 {
		t.Fatalf("transfer layer import: %d %s", r.status, r.body)
	}

	user := "liu.editor." + strconv.FormatInt(time.Now().UnixNano(), 36)
	addAccount(t, ts, gridmap.Account{Username: user, DisplayName: "刘编辑", Role: gridmap.RoleEditor}, "correct horse battery")
	runBrowser(t, "editor.test.mjs", ts.url,
		"GRIDMAP_USER="+user, "GRIDMAP_PASSWORD=correct horse battery",
		"GRIDMAP_LAYER="+layer, "GRIDMAP_GRID=ES1", "GRIDMAP_VERTEX=125.01,32.01", "GRIDMAP_VERTEX_TO=125.012,32.01",
		"GRIDMAP_DISTRICT=125.0,32.0,125.02,32.01", "GRIDMAP_NEIGHBOUR=ES2",
		"GRIDMAP_DRAFT_LAYER="+draftLayer, "GRIDMAP_DRAFT_FILE="+draftFile,
		"GRIDMAP_TRANSFER_LAYER="+transferLayer, "GRIDMAP_TRANSFER_EDGE=125.31",
		"GRIDMAP_BIG_LAYER="+bigLayer, "GRIDMAP_BIG_GRID=VS", "GRIDMAP_BIG_VERTEX=125.21,32.0")

	// ES1 was reshaped twice (the second editor's change was refused), ES2
	// reshaped once and then split.
	var g struct{ Properties struct{ Version int } }
	do(t, "GET", ts.url+"/v1/layers/"+layer+"/grids/ES1", "").json(t, &g)
	if g.Properties.Version != 3 {
		t.Errorf("ES1 is at version %d, want 3", g.Properties.Version)
	}
	if r := do(t, "GET", ts.url+"/v1/layers/"+layer+"/grids/ES2", ""); r.status != 404 {
		t.Errorf("ES2 after the split: %d, want 404", r.status)
	}
	db := pgtest.Shared(t)
	var before, after float64
	if err := db.Pool.QueryRow(context.Background(), `SELECT ST_Area(geom::geography) FROM grid_versions WHERE layer_id = $1 AND code = 'ES2' AND version = 2`, layer).Scan(&before); err != nil {
		t.Fatal(err)
	}
	// The parts as first published (ES1's later change moved their edge).
	if err := db.Pool.QueryRow(context.Background(), `SELECT sum(ST_Area(geom::geography)) FROM grid_versions WHERE layer_id = $1 AND code IN ('ES2-1', 'ES2-2') AND version = 1`, layer).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if math.Abs(after-before) > before*1e-4 {
		t.Errorf("the parts of ES2 cover %.1f m2, ES2 covered %.1f m2", after, before)
	}
	var cov gridmap.Coverage
	do(t, "GET", ts.url+"/v1/layers/"+layer+"/coverage?parent=ED", "").json(t, &cov)
	if len(cov.Gaps)+len(cov.Overlaps)+len(cov.Outside) != 0 {
		t.Errorf("the district is no longer covered exactly: %+v", cov)
	}
	eventuallyWithin(t, 20*time.Second, "the lookup gives the moved area to ES1", func() bool { return owner(125.0105, 32.009) == "ES1" })
	// The parts of ES2 were merged back into ES2-1 (多格合一).
	if r := do(t, "GET", ts.url+"/v1/layers/"+layer+"/grids/ES2-2", ""); r.status != 404 {
		t.Errorf("ES2-2 after the merge: %d, want 404", r.status)
	}
	eventuallyWithin(t, 20*time.Second, "the lookup gives the merged street", func() bool { return owner(125.015, 32.0025) == "ES2-1" && owner(125.015, 32.0075) == "ES2-1" })
	var es1 struct {
		Properties struct{ People []gridmap.Person }
	}
	do(t, "GET", ts.url+"/v1/layers/"+layer+"/grids/ES1", "").json(t, &es1)
	if len(es1.Properties.People) != 1 || es1.Properties.People[0].Name != "张三" || es1.Properties.People[0].Phone != "13900000001" {
		t.Errorf("ES1's people: %+v", es1.Properties.People)
	}

	// The draft's streets are live, the strip they both claimed with one of them.
	draftOwner := func(lon float64) string { return finestOwner(t, ts, draftLayer, lon, 32.005) }
	eventuallyWithin(t, 20*time.Second, "the published draft reaches the lookup", func() bool { return draftOwner(125.105) == "DS1" && draftOwner(125.115) == "DS2" })
	if got := draftOwner(125.11); got != "DS1" && got != "DS2" {
		t.Errorf("the strip belongs to %q", got)
	}
	// The square's part in XS1 went to XS2, and XS1 carries the attributes
	// the form gave it.
	transferOwner := func(lon, lat float64) string { return finestOwner(t, ts, transferLayer, lon, lat) }
	eventuallyWithin(t, 20*time.Second, "the transferred area reaches the lookup", func() bool { return transferOwner(125.308, 32.003) == "XS2" })
	if got := transferOwner(125.308, 32.006); got != "XS1" {
		t.Errorf("outside the transferred area the owner is %q, want XS1", got)
	}
	var xs struct {
		Properties map[string]any
	}
	do(t, "GET", ts.url+"/v1/layers/"+transferLayer+"/grids/XS1", "").json(t, &xs)
	if xs.Properties["households"] != 120.0 || xs.Properties["office"] != "东门社区工作站" || xs.Properties["population"] != 3000.0 {
		t.Errorf("XS1's attributes: households %v (%T), office %v, population %v (%T)", xs.Properties["households"], xs.Properties["households"],
			xs.Properties["office"], xs.Properties["population"], xs.Properties["population"])
	}
	if xs.Properties["name"] != "西门街道" {
		t.Errorf("XS1's name after an edit of its attributes: %v", xs.Properties["name"])
	}
	var xcov gridmap.Coverage
	do(t, "GET", ts.url+"/v1/layers/"+transferLayer+"/coverage?parent=XD", "").json(t, &xcov)
	if len(xcov.Gaps)+len(xcov.Overlaps)+len(xcov.Outside) != 0 {
		t.Errorf("after the transfer the district is not covered exactly: %+v", xcov)
	}
	var dcov gridmap.Coverage
	do(t, "GET", ts.url+"/v1/layers/"+draftLayer+"/coverage?parent=DD", "").json(t, &dcov)
	if len(dcov.Gaps)+len(dcov.Overlaps)+len(dcov.Outside) != 0 {
		t.Errorf("the published draft does not cover its district exactly: %+v", dcov)
	}
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// finestOwner is the code of the finest grid of layer the lookup gives for
// a place, "" for none.
func finestOwner(t *testing.T, ts *testServer, layer string, lon, lat float64) string {
	var a lookupJSON
	r := do(t, "GET", ts.url+"/v1/lookup?layer="+layer+"&lon="+num(lon)+"&lat="+num(lat), "")
	if r.status != 200 || json.Unmarshal(r.body, &a) != nil || len(a.Layers[layer].Chain) == 0 {
		return ""
	}
	chain := a.Layers[layer].Chain
	return chain[len(chain)-1].Code
}
