package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb/encoding/mvt"
)

// hotspotWorld sets up a district of two streets, HA (west) and HB,
// 97.30-97.32 E and lat-lat+0.01 N (near 97.3 E 26.6 N no other test puts
// anything), with the categories hs and its child hs.sub, under layer id.
func hotspotWorld(t *testing.T, ts *testServer, id string, lat float64) {
	t.Helper()
	if r := do(t, "PUT", ts.url+"/v1/layers/"+id, `{"levels":["district","street"]}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	rect := func(x0, x1 float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`, x0, lat, x1, lat, x1, lat+0.01, x0, lat+0.01, x0, lat)
	}
	body := `{"type":"FeatureCollection","features":[` + feat("HD", "", rect(97.3, 97.32)) + "," +
		feat("HA", "HD", rect(97.3, 97.31)) + "," + feat("HB", "HD", rect(97.31, 97.32)) + "]}"
	if r := do(t, "POST", ts.url+"/v1/layers/"+id+"/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	for _, c := range []struct{ code, body string }{
		{"hs", `{"name":"hotspots","limit":{"value":2,"clock":"working_days"}}`},
		{"hs.sub", `{"name":"hotspots sub","parent":"hs","limit":{"value":2,"clock":"working_days"}}`},
	} {
		if r := do(t, "PUT", ts.url+"/v1/categories/"+c.code, c.body); r.status/100 != 2 {
			t.Fatalf("category %s: %d %s", c.code, r.status, r.body)
		}
	}
	eventually(t, "the layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?layer="+id+fmt.Sprintf("&lon=97.305&lat=%g", lat+0.005), "").body), `"HA"`)
	})
}

// hotspotReport is the body of a report at lon, lat.
func hotspotReport(id, category string, lon, lat float64, at time.Time) string {
	return fmt.Sprintf(`{"external_id":%q,"category":%q,"location":{"type":"Point","coordinates":[%g,%g]},"reported_at":%q}`,
		id, category, lon, lat, at.Format(time.RFC3339))
}

// hotCount sums the count of a hotspot tile's bins.
func hotCount(ls mvt.Layers) int {
	n := 0
	for _, p := range features(ls, gridmap.TileLayerHotspots) {
		n += int(p["count"].(float64))
	}
	return n
}

func TestHotspotTilesAPI(t *testing.T) {
	ts := newTestServer(t, Config{})
	hotspotWorld(t, ts, "hsa", 26.6)
	// 30 reports in HA (10 of them hs.sub), 20 in HB; one a day back from now.
	now := time.Now().Truncate(time.Second)
	for i := range 50 {
		lon, category := 97.3005+float64(i%30)*0.0003, "hs"
		if i >= 30 {
			lon = 97.3105 + float64(i-30)*0.0004
		}
		if i < 10 {
			category = "hs.sub"
		}
		if r := do(t, "POST", ts.url+"/v1/reports", hotspotReport(fmt.Sprintf("hsa-%d", i), category, lon, 26.605, now.Add(-time.Duration(i)*24*time.Hour))); r.status != 201 {
			t.Fatalf("report %d: %d %s", i, r.status, r.body)
		}
	}
	tile := tileAt(12, 97.31, 26.605)
	if tileAt(12, 97.3005, 26.605) != tile || tileAt(12, 97.3185, 26.605) != tile {
		t.Fatalf("the reports span more than z12 tile %s", tile)
	}
	url := ts.url + "/tiles/hotspots/" + tile + ".mvt"

	t.Run("TileJSON describes the hotspots layer and keeps the filters", func(t *testing.T) {
		r := do(t, "GET", ts.url+"/tiles/hotspots.json?category=hs&until=2026-01-01T00:00:00Z", "")
		if r.status != 200 || !strings.Contains(string(r.body), `/tiles/hotspots/{z}/{x}/{y}.mvt?category=hs\u0026until=2026-01-01T00:00:00Z"`) ||
			!strings.Contains(string(r.body), `"id":"hotspots"`) || !strings.Contains(string(r.body), `"count":"Number"`) {
			t.Errorf("tilejson: %d %s", r.status, r.body)
		}
	})

	first, ls := getTile(t, url+"?category=hs")
	t.Run("a tile counts the reports in square bins", func(t *testing.T) {
		if first.status != 200 || hotCount(ls) != 50 {
			t.Fatalf("tile: %d, %d reports counted, want 50", first.status, hotCount(ls))
		}
		if len(ls) != 1 || ls[0].Name != gridmap.TileLayerHotspots || len(ls[0].Features) < 2 {
			t.Fatalf("layers %v", ls)
		}
		if first.header.Get("Cache-Control") != "private, no-cache" || first.header.Get("ETag") == "" {
			t.Errorf("headers %v", first.header)
		}
	})

	t.Run("filters select the reports counted", func(t *testing.T) {
		for _, c := range []struct {
			query string
			want  int
		}{
			{"category=hs.sub", 10},
			{"category=hs&since=" + now.Add(-9*24*time.Hour).Format(time.RFC3339), 10},
			{"category=hs&until=" + now.Add(-39*24*time.Hour).Format(time.RFC3339), 10},
			{"category=hs&since=" + now.Add(-39*24*time.Hour).Format(time.RFC3339) + "&until=" + now.Add(-29*24*time.Hour).Format(time.RFC3339), 10},
			{"category=hs&status=done", 0},
			{"category=hs&status=reported", 50},
		} {
			r, ls := getTile(t, url+"?"+strings.ReplaceAll(c.query, "+", "%2B"))
			if r.status != 200 || hotCount(ls) != c.want {
				t.Errorf("%s: %d, %d reports counted, want %d", c.query, r.status, hotCount(ls), c.want)
			}
		}
	})

	t.Run("a scoped caller counts its street's reports only", func(t *testing.T) {
		dispatcher := bearer(ts.token(t, gridmap.RoleDispatcher, &gridmap.Scope{Layer: "hsa", Code: "HA"}))
		if r, ls := getTile(t, url+"?category=hs", dispatcher...); r.status != 200 || hotCount(ls) != 30 {
			t.Errorf("HA's dispatcher: %d, %d reports counted, want 30", r.status, hotCount(ls))
		}
	})

	t.Run("bad requests say what to fix", func(t *testing.T) {
		for _, c := range []struct {
			path   string
			status int
			says   string
		}{
			{"/tiles/hotspots/12/0/0.mvt?status=lost", 400, "status \"lost\" must be open, done or one of"},
			{"/tiles/hotspots/12/0/0.mvt?since=yesterday", 400, "since \"yesterday\" must be an RFC 3339 time"},
			{"/tiles/hotspots/12/0/0.mvt?until=2026-13-01", 400, "until \"2026-13-01\" must be an RFC 3339 time"},
			{"/tiles/hotspots/12/0/0.mvt?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", 400, "until (2026-01-01T00:00:00Z) must come after since"},
			{"/tiles/hotspots/12/0/0.mvt?category=no-such", 400, "category \"no-such\" does not exist"},
			{"/tiles/hotspots/12/0/0.mvt?category=a%20b", 400, "must be a category code"},
			{"/tiles/hotspots/12/4096/0.mvt", 400, "tile x \"4096\" must be a whole number from 0 to 4095"},
			{"/tiles/hotspots.json?status=lost", 400, "status \"lost\""},
		} {
			r := do(t, "GET", ts.url+c.path, "")
			if r.status != c.status || !strings.Contains(r.errorOf(t).Message, c.says) {
				t.Errorf("%s: %d %s, want %d saying %q", c.path, r.status, r.body, c.status, c.says)
			}
		}
		if r := do(t, "GET", url, "", noAuth...); r.status != 401 {
			t.Errorf("an anonymous hotspot tile: %d, want 401", r.status)
		}
	})

	t.Run("a new report changes the tile it falls in, not one elsewhere", func(t *testing.T) {
		elsewhere := ts.url + "/tiles/hotspots/" + tileAt(12, 20, 20) + ".mvt?category=hs"
		before, _ := getTile(t, elsewhere)
		if r := do(t, "POST", ts.url+"/v1/reports", hotspotReport("hsa-new", "hs", 97.315, 26.605, now)); r.status != 201 {
			t.Fatalf("report: %d %s", r.status, r.body)
		}
		eventually(t, "the hotspot tile counts the new report", func() bool {
			r, ls := getTile(t, url+"?category=hs")
			return hotCount(ls) == 51 && r.header.Get("ETag") != first.header.Get("ETag")
		})
		if r := do(t, "GET", elsewhere, "", "Accept-Encoding", "gzip", "If-None-Match", before.header.Get("ETag")); r.status != http.StatusNotModified {
			t.Errorf("a hotspot tile elsewhere: %d", r.status)
		}
		if r := do(t, "GET", url+"?category=hs", "", "Accept-Encoding", "gzip", "If-None-Match", first.header.Get("ETag")); r.status != 200 {
			t.Errorf("the old ETag of the changed tile: %d, want 200", r.status)
		}
	})
}

// TestHotspotTilesManyClientsSmallPool: 16 clients load hotspot tiles at
// zooms 10-16 over and over while 4 others file 60 reports, on a pool of
// two connections. Every request succeeds, and once filing ends the tiles
// count every report.
func TestHotspotTilesManyClientsSmallPool(t *testing.T) {
	db := pgtest.SharedWith(t, postgres.Options{MaxConns: 2})
	ts := newTestServerOn(t, Config{}, db)
	hotspotWorld(t, ts, "hsm", 26.7)
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(url string) error {
		res, err := client.Get(url)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			return fmt.Errorf("GET %s: %d %s", url, res.StatusCode, b)
		}
		if _, err := mvt.UnmarshalGzipped(b); err != nil && res.Header.Get("Content-Encoding") == "gzip" {
			return fmt.Errorf("GET %s does not decode: %w", url, err)
		}
		return nil
	}
	var urls []string
	for z := 10; z <= 16; z++ {
		for _, lon := range []float64{97.3005, 97.309, 97.3185} {
			for _, q := range []string{"", "?category=hs", "?status=open"} {
				urls = append(urls, ts.url+"/tiles/hotspots/"+tileAt(z, lon, 26.705)+".mvt"+q)
			}
		}
	}
	const writers, perWriter = 4, 15
	errs := make(chan error, 1000)
	done := make(chan struct{})
	var readers, filers sync.WaitGroup
	for c := range 16 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := c; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if err := get(urls[i%len(urls)]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for w := range writers {
		filers.Add(1)
		go func() {
			defer filers.Done()
			for i := range perWriter {
				body := hotspotReport(fmt.Sprintf("hsm-%d-%d", w, i), "hs", 97.3005+float64(w*perWriter+i)*0.0003, 26.705, time.Now())
				res, err := client.Post(ts.url+"/v1/reports", "application/json", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 201 {
					errs <- fmt.Errorf("report %d/%d: %d %s", w, i, res.StatusCode, b)
					return
				}
			}
		}()
	}
	filers.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	url := ts.url + "/tiles/hotspots/" + tileAt(12, 97.31, 26.705) + ".mvt?category=hs"
	eventually(t, "the z12 tile counts every report filed", func() bool {
		_, ls := getTile(t, url)
		return hotCount(ls) == writers*perWriter
	})
}
