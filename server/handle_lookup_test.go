package server

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
)

type lookupJSON struct {
	Lon    float64   `json:"lon"`
	Lat    float64   `json:"lat"`
	CRS    string    `json:"crs"`
	WGS84  []float64 `json:"wgs84"`
	Layers map[string]struct {
		Chain []struct {
			Code, Name, Level string
			Version           int
		} `json:"chain"`
		People   []gridmap.Person `json:"people"`
		CoOwners []struct {
			Code      string  `json:"code"`
			DistanceM float64 `json:"distance_m"`
			Reason    string  `json:"reason"`
		} `json:"co_owners"`
		Nearest *struct {
			Code      string  `json:"code"`
			DistanceM float64 `json:"distance_m"`
		} `json:"nearest"`
		DataVersion int64 `json:"data_version"`
	} `json:"layers"`
}

func (a lookupJSON) chain(layer string) string {
	var codes []string
	for _, g := range a.Layers[layer].Chain {
		codes = append(codes, g.Code)
	}
	return strings.Join(codes, ">")
}

func (a lookupJSON) coOwners(layer string) string {
	var s []string
	for _, c := range a.Layers[layer].CoOwners {
		s = append(s, c.Code+":"+c.Reason)
	}
	return strings.Join(s, ",")
}

// eventually retries check for up to two seconds: the lookup index follows
// the database by notification, a few milliseconds behind a commit.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	eventuallyWithin(t, 2*time.Second, what, check)
}

// eventuallyWithin is eventually with a longer wait, for layers whose
// rebuild takes seconds under the race detector.
func eventuallyWithin(t *testing.T, d time.Duration, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lookupLayer makes layer id: one district 0.02 x 0.01 degrees at
// (120, 30) near Hangzhou, split into streets A (west) and B (east) along
// longitude 120 + split.
func lookupLayer(t *testing.T, ts *testServer, id string, split float64) {
	t.Helper()
	if r := do(t, "PUT", ts.url+"/v1/layers/"+id, `{"levels":["district","street"]}`); r.status/100 != 2 {
		t.Fatalf("put layer: %d %s", r.status, r.body)
	}
	rect := func(x0, x1 float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,30],[%g,30],[%g,30.01],[%g,30.01],[%g,30]]]}`, x0, x1, x1, x0, x0)
	}
	body := `{"type":"FeatureCollection","features":[` + feat("D", "", rect(120, 120.02)) + "," +
		feat("A", "D", rect(120, 120+split)) + "," + feat("B", "D", rect(120+split, 120.02)) + "]}"
	if r := do(t, "POST", ts.url+"/v1/layers/"+id+"/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
}

func TestLookupAPI(t *testing.T) {
	ts := newTestServer(t, Config{})
	lookupLayer(t, ts, "lk", 0.01)
	get := func(query string) (lookupJSON, response) {
		r := do(t, "GET", ts.url+"/v1/lookup?"+query, "")
		var a lookupJSON
		if r.status == 200 {
			r.json(t, &a)
		}
		return a, r
	}
	eventually(t, "the new layer answers lookups", func() bool {
		a, _ := get("layer=lk&lon=120.005&lat=30.005")
		return a.chain("lk") == "D>A"
	})
	kx, _ := geo.MetresPerDegree(30.005)

	t.Run("metrics describe the lookup index", func(t *testing.T) {
		r := do(t, "GET", ts.url+"/metrics", "")
		if !strings.Contains(string(r.body), `gridmap_lookup_index_grids{layer="lk"} 3`) ||
			!strings.Contains(string(r.body), `gridmap_lookup_index_rebuilds_total{layer="lk"}`) ||
			// A layer of three grids is far below what is moved into
			// huge pages.
			!strings.Contains(string(r.body), `gridmap_lookup_index_huge_page_bytes{layer="lk"} 0`) {
			t.Errorf("metrics lack the index of lk:\n%s", r.body)
		}
	})
	t.Run("people of the finest grid come with the answer", func(t *testing.T) {
		if r := do(t, "PUT", ts.url+"/v1/layers/lk/grids/A/people", `{"people":[{"role":"grid_worker","name":"王芳","phone":"13900000001"}]}`); r.status != 200 {
			t.Fatalf("people: %d %s", r.status, r.body)
		}
		eventually(t, "people appear in the answer", func() bool {
			a, _ := get("layer=lk&lon=120.005&lat=30.005")
			p := a.Layers["lk"].People
			return len(p) == 1 && p[0].Name == "王芳"
		})
	})
	cases := []struct {
		name, query, chain, coOwners string
	}{
		{"inside, far from edges", "lon=120.005&lat=30.005", "D>A", ""},
		{"on the shared edge: lower code owns", "lon=120.01&lat=30.005", "D>A", "B:on_boundary"},
		{"10 m into B", fmt.Sprintf("lon=%.9f&lat=30.005", 120.01+10/kx), "D>B", "A:within_tolerance"},
		{"10 m into B with a 5 m tolerance", fmt.Sprintf("lon=%.9f&lat=30.005&tolerance_m=5", 120.01+10/kx), "D>B", ""},
		{"40 m into B with 50 m accuracy", fmt.Sprintf("lon=%.9f&lat=30.005&accuracy_m=50", 120.01+40/kx), "D>B", "A:within_accuracy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, r := get("layer=lk&" + c.query)
			if r.status != 200 || a.chain("lk") != c.chain || a.coOwners("lk") != c.coOwners {
				t.Errorf("got %d chain %q co-owners %q, want %q %q: %s", r.status, a.chain("lk"), a.coOwners("lk"), c.chain, c.coOwners, r.body)
			}
		})
	}
	t.Run("co-owner distance in metres", func(t *testing.T) {
		a, _ := get(fmt.Sprintf("layer=lk&lon=%.9f&lat=30.005", 120.01+10/kx))
		if co := a.Layers["lk"].CoOwners; len(co) != 1 || math.Abs(co[0].DistanceM-10) > 0.1 {
			t.Errorf("co-owners %+v, want A at 10 m", co)
		}
	})
	t.Run("outside: empty chain and the nearest grid", func(t *testing.T) {
		a, _ := get("layer=lk&lon=119.99&lat=30.005")
		n := a.Layers["lk"].Nearest
		if a.chain("lk") != "" || n == nil || n.Code != "A" || math.Abs(n.DistanceM-0.01*kx) > 1 {
			t.Errorf("chain %q nearest %+v, want none and A at %.0f m", a.chain("lk"), n, 0.01*kx)
		}
	})
	t.Run("every layer without layer=", func(t *testing.T) {
		a, _ := get("lon=120.005&lat=30.005")
		if a.chain("lk") != "D>A" {
			t.Errorf("layers %v lack lk", a.Layers)
		}
	})
	t.Run("gcj02 point lands where its WGS84 original does", func(t *testing.T) {
		// 0.003 degrees west of the edge: the GCJ-02 shift here (about 450 m
		// east) would put the unconverted point in B.
		gx, gy := geo.WGS84ToGCJ02(120.007, 30.005)
		a, r := get(fmt.Sprintf("layer=lk&crs=gcj02&lon=%.9f&lat=%.9f", gx, gy))
		if r.status != 200 || a.chain("lk") != "D>A" || a.CRS != "gcj02" || len(a.WGS84) != 2 ||
			math.Abs(a.WGS84[0]-120.007) > 1e-7 || math.Abs(a.WGS84[1]-30.005) > 1e-7 {
			t.Errorf("got %d %s", r.status, r.body)
		}
		raw, _ := get(fmt.Sprintf("layer=lk&lon=%.9f&lat=%.9f", gx, gy))
		if raw.chain("lk") != "D>B" {
			t.Errorf("unconverted GCJ-02 point in %q; the test needs it in B", raw.chain("lk"))
		}
	})
	t.Run("Hong Kong and Taipei are not shifted", func(t *testing.T) {
		for _, p := range [][2]float64{{114.158, 22.282}, {121.565, 25.033}} {
			for _, crs := range []string{"gcj02", "bd09"} {
				a, r := get(fmt.Sprintf("layer=lk&crs=%s&lon=%g&lat=%g", crs, p[0], p[1]))
				if r.status != 200 || len(a.WGS84) != 2 || a.WGS84[0] != p[0] || a.WGS84[1] != p[1] {
					t.Errorf("%s %v: %d %s", crs, p, r.status, r.body)
				}
			}
		}
	})

	bad := []struct {
		name, query string
		status      int
		says        string
	}{
		{"longitude out of range", "lon=200&lat=30", 400, "lon 200 must be"},
		{"latitude out of range", "lon=120&lat=-91", 400, "lat -91 must be"},
		{"not a number", "lon=abc&lat=30", 400, `lon "abc" must be a number`},
		{"NaN", "lon=NaN&lat=30", 400, "lon NaN must be"},
		{"missing latitude", "lon=120", 400, "lat is required"},
		{"unknown crs", "lon=120&lat=30&crs=utm50", 400, "crs"},
		{"negative tolerance", "lon=120&lat=30&tolerance_m=-1", 400, "tolerance_m"},
		{"bad time", "lon=120&lat=30&at=yesterday", 400, "RFC 3339"},
		{"unknown layer", "lon=120&lat=30&layer=nope", 404, "nope"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, r := get(c.query)
			if r.status != c.status || !strings.Contains(r.errorOf(t).Message, c.says) {
				t.Errorf("got %d %s, want %d saying %q", r.status, r.body, c.status, c.says)
			}
		})
	}

	t.Run("batch answers in order", func(t *testing.T) {
		r := do(t, "POST", ts.url+"/v1/lookup", `{"layer":"lk","points":[[120.015,30.005],[120.005, 30.005],[119.99,30.005]]}`)
		var res struct{ Results []lookupJSON }
		r.json(t, &res)
		if r.status != 200 || len(res.Results) != 3 || res.Results[0].chain("lk") != "D>B" || res.Results[1].chain("lk") != "D>A" ||
			res.Results[2].Layers["lk"].Nearest == nil {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	t.Run("a large batch matches single lookups", func(t *testing.T) {
		var pts []string
		for i := 0; i < 5000; i++ {
			pts = append(pts, fmt.Sprintf("[%.6f,%.6f]", 119.995+float64(i%100)*0.0003, 29.998+float64(i/100)*0.00028))
		}
		r := do(t, "POST", ts.url+"/v1/lookup", `{"layer":"lk","points":[`+strings.Join(pts, ",")+`]}`)
		var res struct{ Results []lookupJSON }
		r.json(t, &res)
		if r.status != 200 || len(res.Results) != 5000 {
			t.Fatalf("got %d with %d results", r.status, len(res.Results))
		}
		for _, i := range []int{0, 1234, 2048, 4095, 4999} {
			var p [2]float64
			json.Unmarshal([]byte(pts[i]), &p)
			a, _ := get(fmt.Sprintf("layer=lk&lon=%.6f&lat=%.6f", p[0], p[1]))
			if a.chain("lk") != res.Results[i].chain("lk") || res.Results[i].Lon != p[0] {
				t.Errorf("point %d: batch %q, single %q", i, res.Results[i].chain("lk"), a.chain("lk"))
			}
		}
	})
	t.Run("a batch over 100,000 points is refused with 413", func(t *testing.T) {
		body := `{"points":[` + strings.Repeat("[120.005,30.005],", gridmap.MaxLookupPoints) + `[120.005,30.005]]}`
		r := do(t, "POST", ts.url+"/v1/lookup", body)
		if r.status != 413 || !strings.Contains(r.errorOf(t).Message, "100000") {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	t.Run("a bad point fails the batch and says which", func(t *testing.T) {
		r := do(t, "POST", ts.url+"/v1/lookup", `{"points":[[120,30],[120,95]]}`)
		if r.status != 400 || !strings.Contains(r.errorOf(t).Message, "points[1]") {
			t.Errorf("got %d %s", r.status, r.body)
		}
		r = do(t, "POST", ts.url+"/v1/lookup", `{"points":[[120,30],[120]]}`)
		if r.status != 400 || !strings.Contains(r.errorOf(t).Message, "points[1]") {
			t.Errorf("got %d %s", r.status, r.body)
		}
		r = do(t, "POST", ts.url+"/v1/lookup", `{"pts":[[120,30]]}`)
		if r.status != 400 || !strings.Contains(r.errorOf(t).Message, "unknown field") {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})

	t.Run("as of a time before an edit", func(t *testing.T) {
		before := time.Now().UTC()
		time.Sleep(20 * time.Millisecond)
		lookupLayer(t, ts, "lk", 0.012) // the shared edge moves 0.002 degrees east
		eventually(t, "the edit reaches the index", func() bool {
			a, _ := get("layer=lk&lon=120.011&lat=30.005")
			return a.chain("lk") == "D>A"
		})
		a, r := get("layer=lk&lon=120.011&lat=30.005&at=" + before.Format(time.RFC3339Nano))
		if r.status != 200 || a.chain("lk") != "D>B" || a.coOwners("lk") != "" {
			t.Errorf("as of before the edit: %d %s", r.status, r.body)
		}
		a, _ = get("layer=lk&lon=120.01&lat=30.005&at=" + before.Format(time.RFC3339Nano))
		if a.chain("lk") != "D>A" || a.coOwners("lk") != "B:on_boundary" {
			t.Errorf("as of before the edit, on the old edge: %+v", a)
		}
		a, _ = get("layer=lk&lon=119.99&lat=30.005&at=" + before.Format(time.RFC3339Nano))
		if n := a.Layers["lk"].Nearest; n == nil || n.Code != "A" || math.Abs(n.DistanceM-0.01*kx) > 2 {
			t.Errorf("as of, outside: %+v", a.Layers["lk"])
		}
	})
}

// TestLookupJSONMatchesEncodingJSON holds the hand-written encoder to
// encoding/json: strings escape the same way, and an answer decodes to
// what was encoded.
func TestLookupJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "西湖区 北山街道", `quote " and \ backslash`, "new\nline\ttab\x01", "<b>&amp;</b>",
		"bad utf8 \xff\xfe end", "line\u2028sep"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
	var a gridmap.LookupAnswer
	a.Lon, a.Lat = 120.1, 30.2
	l := a.AddLayer("demo", 7)
	l.Chain = append(l.Chain, gridmap.GridRef{Code: "330106001", Name: "北山街道", Level: "street", Version: 2})
	l.People = []gridmap.Person{{Role: "grid_worker", Name: "王 \"芳\"", Phone: "139"}}
	l.CoOwners = append(l.CoOwners, gridmap.CoOwner{GridRef: gridmap.GridRef{Code: "330106002", Level: "street", Version: 1}, DistanceM: 12.34, Reason: gridmap.ReasonWithinTolerance})
	m := a.AddLayer("police", 3)
	a.SetNearest(m, gridmap.NearestGrid{GridRef: gridmap.GridRef{Code: "P1"}, DistanceM: 99.5})
	out := AppendLookupJSON(nil, &a, 120.1, 30.2, "")
	var got lookupJSON
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, out)
	}
	d, p := got.Layers["demo"], got.Layers["police"]
	if got.Lon != 120.1 || d.DataVersion != 7 || got.chain("demo") != "330106001" || d.Chain[0].Name != "北山街道" ||
		d.People[0].Name != "王 \"芳\"" || d.CoOwners[0].DistanceM != 12.34 || p.Nearest == nil || p.Nearest.DistanceM != 99.5 {
		t.Errorf("decoded %+v from %s", got, out)
	}
}
