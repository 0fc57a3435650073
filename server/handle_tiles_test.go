package server

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap/tiles"
	"github.com/paulmach/orb/encoding/mvt"
)

// getTile fetches a tile as a browser would (gzip accepted) and decodes it.
func getTile(t *testing.T, url string, header ...string) (response, mvt.Layers) {
	t.Helper()
	r := do(t, "GET", url, "", append([]string{"Accept-Encoding", "gzip, deflate, br"}, header...)...)
	if r.status != 200 {
		return r, nil
	}
	if r.header.Get("Content-Encoding") != "gzip" || r.header.Get("Content-Type") != MVTContentType {
		t.Fatalf("%s: Content-Encoding %q, Content-Type %q", url, r.header.Get("Content-Encoding"), r.header.Get("Content-Type"))
	}
	ls, err := mvt.UnmarshalGzipped(r.body)
	if err != nil {
		t.Fatalf("%s does not decode: %v", url, err)
	}
	return r, ls
}

func features(ls mvt.Layers, name string) []map[string]any {
	var out []map[string]any
	for _, l := range ls {
		if l.Name == name {
			for _, f := range l.Features {
				out = append(out, f.Properties)
			}
		}
	}
	return out
}

func tileAt(z int, lon, lat float64) string {
	x, y, _, _ := tiles.Covering(z, [4]float64{lon, lat, lon, lat}, 0)
	return fmt.Sprintf("%d/%d/%d", z, x, y)
}

func TestTilesAPI(t *testing.T) {
	ts := newTestServer(t, Config{})
	// A district split into two streets, near 100.3 E 25.6 N, where no other
	// test puts anything.
	if r := do(t, "PUT", ts.url+"/v1/layers/tl", `{"levels":["district","street"]}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	rect := func(x0, x1 float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,25.6],[%g,25.6],[%g,25.61],[%g,25.61],[%g,25.6]]]}`, x0, x1, x1, x0, x0)
	}
	body := `{"type":"FeatureCollection","features":[` + feat("TD", "", rect(100.3, 100.32)) + "," +
		feat("TA", "TD", rect(100.3, 100.31)) + "," + feat("TB", "TD", rect(100.31, 100.32)) + "]}"
	if r := do(t, "POST", ts.url+"/v1/layers/tl/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}

	t.Run("TileJSON describes the layer", func(t *testing.T) {
		var tj struct {
			TileJSON     string     `json:"tilejson"`
			Tiles        []string   `json:"tiles"`
			Bounds       [4]float64 `json:"bounds"`
			MaxZoom      int        `json:"maxzoom"`
			VectorLayers []struct {
				ID     string            `json:"id"`
				Fields map[string]string `json:"fields"`
			} `json:"vector_layers"`
		}
		r := do(t, "GET", ts.url+"/tiles/tl.json", "")
		r.json(t, &tj)
		if r.status != 200 || tj.TileJSON != "3.0.0" || len(tj.Tiles) != 1 || tj.Tiles[0] != ts.url+"/tiles/tl/{z}/{x}/{y}.mvt" {
			t.Fatalf("tilejson: %d %s", r.status, r.body)
		}
		if tj.Bounds != [4]float64{100.3, 25.6, 100.32, 25.61} {
			t.Errorf("bounds %v", tj.Bounds)
		}
		if len(tj.VectorLayers) != 2 || tj.VectorLayers[0].ID != "grids" || tj.VectorLayers[0].Fields["code"] != "String" || tj.VectorLayers[1].ID != "labels" {
			t.Errorf("vector_layers %s", r.body)
		}
		r = do(t, "GET", ts.url+"/tiles/reports.json?status=open", "")
		if r.status != 200 || !strings.Contains(string(r.body), `/tiles/reports/{z}/{x}/{y}.mvt?status=open"`) {
			t.Errorf("reports tilejson keeps the filter: %d %s", r.status, r.body)
		}
	})

	overA := ts.url + "/tiles/tl/" + tileAt(14, 100.305, 25.605) + ".mvt"
	far := ts.url + "/tiles/tl/" + tileAt(14, 100.5, 25.8) + ".mvt"
	first, ls := getTile(t, overA)
	t.Run("a tile carries grids and labels", func(t *testing.T) {
		if first.status != 200 {
			t.Fatalf("tile: %d %s", first.status, first.body)
		}
		got := map[string]string{}
		for _, p := range features(ls, "grids") {
			got[fmt.Sprint(p["code"])] = fmt.Sprint(p["level"])
		}
		if got["TD"] != "district" || got["TA"] != "street" || len(got) != 2 {
			t.Errorf("grids in the tile over TA: %v", got)
		}
		if len(features(ls, "labels")) == 0 {
			t.Error("no labels")
		}
		if first.header.Get("ETag") == "" || first.header.Get("Cache-Control") != "no-cache" || first.header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("headers %v", first.header)
		}
	})

	t.Run("a current ETag gets 304", func(t *testing.T) {
		r := do(t, "GET", overA, "", "Accept-Encoding", "gzip", "If-None-Match", first.header.Get("ETag"))
		if r.status != http.StatusNotModified || len(r.body) != 0 {
			t.Errorf("revalidation: %d (%d bytes)", r.status, len(r.body))
		}
		if r := do(t, "GET", overA, "", "If-None-Match", `"something-else"`); r.status != 200 {
			t.Errorf("another ETag: %d", r.status)
		}
	})

	t.Run("clients without gzip get the tile uncompressed", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		req, _ := http.NewRequest("GET", overA, nil)
		req.Header.Set("Authorization", "Bearer "+ts.admin)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		zr, _ := gzip.NewReader(bytes.NewReader(first.body))
		want, _ := io.ReadAll(zr)
		if res.Header.Get("Content-Encoding") != "" || !bytes.Equal(raw, want) {
			t.Errorf("uncompressed tile: encoding %q, %d bytes, want %d", res.Header.Get("Content-Encoding"), len(raw), len(want))
		}
	})

	t.Run("bad requests say what to fix", func(t *testing.T) {
		for _, c := range []struct {
			path   string
			status int
			says   string
		}{
			{"/tiles/tl/3/8/0.mvt", 400, "tile x \"8\" must be a whole number from 0 to 7"},
			{"/tiles/tl/23/0/0.mvt", 400, "from 0 to 22"},
			{"/tiles/tl/1/0/0.png", 404, ".mvt"},
			{"/tiles/no-such-layer/1/0/0.mvt", 404, "no-such-layer"},
			{"/tiles/no-such-layer.json", 404, "no-such-layer"},
			{"/tiles/tl/1/0/0.mvt?status=open", 400, "filter the \"reports\" and \"hotspots\" tilesets only"},
			{"/tiles/reports/1/0/0.mvt?status=lost", 400, "status \"lost\" must be open, done or one of"},
			{"/tiles/reports/1/0/0.mvt?since=yesterday", 400, "RFC 3339"},
		} {
			r := do(t, "GET", ts.url+c.path, "")
			if r.status != c.status || !strings.Contains(r.errorOf(t).Message, c.says) {
				t.Errorf("%s: %d %s, want %d saying %q", c.path, r.status, r.body, c.status, c.says)
			}
		}
	})

	t.Run("an edit changes the tiles over it and no others", func(t *testing.T) {
		farBefore, _ := getTile(t, far)
		if farBefore.status != 200 {
			t.Fatalf("far tile: %d", farBefore.status)
		}
		edge := ts.url + "/tiles/tl/" + tileAt(14, 100.3101, 25.605) + ".mvt"
		edgeBefore, _ := getTile(t, edge)
		// TA takes a strip of TB.
		cs := `{"reason":"test","operations":[{"op":"move_edge","code":"TA","geometry":` + rect(100.3, 100.3102) + `}]}`
		if r := do(t, "POST", ts.url+"/v1/layers/tl/changesets", cs); r.status != 200 {
			t.Fatalf("move_edge: %d %s", r.status, r.body)
		}
		eventually(t, "the tile over the moved edge changes its ETag", func() bool {
			r, _ := getTile(t, edge, "If-None-Match", edgeBefore.header.Get("ETag"))
			return r.status == 200 && r.header.Get("ETag") != edgeBefore.header.Get("ETag")
		})
		r := do(t, "GET", far, "", "Accept-Encoding", "gzip", "If-None-Match", farBefore.header.Get("ETag"))
		if r.status != http.StatusNotModified {
			t.Errorf("a tile far from the edit: %d, ETag %s -> %s", r.status, farBefore.header.Get("ETag"), r.header.Get("ETag"))
		}
	})

	t.Run("a level's zoom range decides where it is drawn", func(t *testing.T) {
		before, _ := getTile(t, overA)
		if r := do(t, "PUT", ts.url+"/v1/layers/tl", `{"levels":["district","street"],"zooms":{"street":[15,22]}}`); r.status != 200 ||
			!strings.Contains(string(r.body), `"street":[15,22]`) {
			t.Fatalf("layer: %d %s", r.status, r.body)
		}
		eventually(t, "streets leave the z14 tile", func() bool {
			r, ls := getTile(t, overA)
			codes := []string{}
			for _, p := range features(ls, "grids") {
				codes = append(codes, fmt.Sprint(p["code"]))
			}
			return r.header.Get("ETag") != before.header.Get("ETag") && strings.Join(codes, ",") == "TD"
		})
		if r := do(t, "PUT", ts.url+"/v1/layers/tl", `{"levels":["district","street"]}`); r.status != 200 {
			t.Fatalf("layer: %d %s", r.status, r.body)
		}
	})

	t.Run("reports cluster at 10 and stand alone at 16", func(t *testing.T) {
		if r := do(t, "PUT", ts.url+"/v1/categories/tiles", `{"name":"tiles","limit":{"value":4,"clock":"working_hours"}}`); r.status/100 != 2 {
			t.Fatalf("category: %d %s", r.status, r.body)
		}
		for i := range 40 {
			lon, lat := 100.301+float64(i%8)*0.002, 25.601+float64(i/8)*0.0015
			// Every fourth was filed long ago: past its 4 working hours.
			at := time.Now().Format(time.RFC3339)
			if i%4 == 0 {
				at = "2025-01-06T09:00:00+08:00"
			}
			report := fmt.Sprintf(`{"external_id":"tile-%d","category":"tiles","location":{"type":"Point","coordinates":[%g,%g]},"urgent":%v,"reported_at":%q}`, i, lon, lat, i%5 == 0, at)
			if r := do(t, "POST", ts.url+"/v1/reports", report); r.status != 201 {
				t.Fatalf("report %d: %d %s", i, r.status, r.body)
			}
		}
		z10 := ts.url + "/tiles/reports/" + tileAt(10, 100.305, 25.605) + ".mvt?category=tiles"
		r, ls := getTile(t, z10)
		clusters := features(ls, "reports")
		total, urgent, overdue := 0.0, 0.0, 0.0
		for _, p := range clusters {
			total += p["count"].(float64)
			urgent += p["urgent"].(float64)
			overdue += p["overdue"].(float64)
			if p["id"] != nil {
				t.Errorf("a cluster at 10 carries an id: %v", p)
			}
		}
		if total != 40 || urgent != 8 || overdue != 10 || len(clusters) >= 40 || len(clusters) == 0 {
			t.Errorf("z10: %d clusters counting %g reports (%g urgent, %g overdue); want fewer than 40 clusters counting 40 (8 urgent, 10 overdue)",
				len(clusters), total, urgent, overdue)
		}
		_, single := getTile(t, ts.url+"/tiles/reports/"+tileAt(16, 100.301, 25.601)+".mvt?category=tiles")
		singles := features(single, "reports")
		if len(singles) == 0 || singles[0]["id"] == nil || singles[0]["status"] != "reported" || singles[0]["category"] != "tiles" || singles[0]["count"] != nil {
			t.Errorf("z16: %v", singles)
		}
		// tile-0 was filed long ago, tile-1 now; at 16 they stand alone.
		_, pair := getTile(t, ts.url+"/tiles/reports/"+tileAt(16, 100.302, 25.601)+".mvt?category=tiles")
		lateness := map[bool]int{}
		for _, p := range append(singles, features(pair, "reports")...) {
			late, ok := p["overdue"].(bool)
			if !ok {
				t.Errorf("z16 report without overdue: %v", p)
			}
			lateness[late]++
		}
		if lateness[true] == 0 || lateness[false] == 0 {
			t.Errorf("z16: overdue and on-time reports: %v", lateness)
		}
		if _, none := getTile(t, z10+"&status=done"); len(features(none, "reports")) != 0 {
			t.Errorf("status=done shows %v", features(none, "reports"))
		}

		// A new report changes the tile it falls in, not one elsewhere.
		elsewhere := ts.url + "/tiles/reports/" + tileAt(10, 20, 20) + ".mvt"
		before, _ := getTile(t, elsewhere)
		report := `{"external_id":"tile-new","category":"tiles","location":{"type":"Point","coordinates":[100.306,25.606]}}`
		if r := do(t, "POST", ts.url+"/v1/reports", report); r.status != 201 {
			t.Fatalf("report: %d %s", r.status, r.body)
		}
		eventually(t, "the report tile counts the new report", func() bool {
			r2, ls := getTile(t, z10)
			n := 0.0
			for _, p := range features(ls, "reports") {
				n += p["count"].(float64)
			}
			return n == 41 && r2.header.Get("ETag") != r.header.Get("ETag")
		})
		if r := do(t, "GET", elsewhere, "", "Accept-Encoding", "gzip", "If-None-Match", before.header.Get("ETag")); r.status != http.StatusNotModified {
			t.Errorf("a report tile elsewhere: %d", r.status)
		}
	})

	t.Run("metrics count tiles by tileset and zoom", func(t *testing.T) {
		m := string(do(t, "GET", ts.url+"/metrics", "").body)
		for _, want := range []string{`gridmap_tile_requests_total{outcome="hit",tileset="tl",z="14"}`, `gridmap_tile_requests_total{outcome="not_modified",tileset="tl",z="14"}`,
			`gridmap_tile_render_seconds_count{tileset="reports",z="10"}`, `gridmap_tile_bytes_total{tileset="tl",z="14"}`, "gridmap_tile_cache_bytes", "gridmap_tile_blocks_bytes"} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"": false, "gzip": true, "gzip, deflate, br": true, "br;q=1.0, gzip;q=0.8": true, "GZIP": true,
		"gzip;q=0": false, "gzip; q=0.000": false, "*": true, "deflate, br": false, "identity": false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", header, got, want)
		}
	}
}
