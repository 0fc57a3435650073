package server

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/geojson"
)

// TestOGCWithGDAL reads /ogc with GDAL, the outside client most GIS tools
// build on: ogrinfo lists the layers, ogr2ogr copies the 2,165 NYC tracts
// into a GeoPackage page by page (next links) with the same codes and
// outlines, and a -where filter goes to the server as CQL2.
func TestOGCWithGDAL(t *testing.T) {
	for _, tool := range []string{"ogrinfo", "ogr2ogr"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (make test installs gdal-bin): %v", tool, err)
		}
	}
	dir := pgtest.NYCDir(t)
	db := pgtest.NewDB(t)
	ctx := context.Background()
	f, err := os.Open(filepath.Join(dir, "L3_tracts2010.geojson"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = postgres.NewGridStore(db).Import(ctx, "tracts", geo.NewFeatureReader(f, geo.FieldMap{Code: "boroct2010", Name: "ctlabel", DefaultLevel: "tract"}),
		gridmap.ImportOptions{MakeValid: true, Levels: []string{"tract"}})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServerOn(t, Config{}, db)
	// GDAL talks to the server through a recorder of what it asked.
	var mu sync.Mutex
	var asked []string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.RequestURI())
		mu.Unlock()
		ts.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	token := ts.token(t, gridmap.RoleViewer, nil)
	gdal := func(t *testing.T, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "GDAL_HTTP_HEADERS=Authorization: Bearer "+token, "CPL_DEBUG=OFF", "GDAL_HTTP_TIMEOUT=60")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v\n%s\n%s", name, args, err, out.String(), errOut.String())
		}
		return out.String()
	}
	endpoint := "OAPIF:" + front.URL + "/ogc"

	t.Run("ogrinfo lists the layers", func(t *testing.T) {
		out := gdal(t, "ogrinfo", "-ro", "-q", endpoint)
		if !strings.Contains(out, "tracts") {
			t.Errorf("ogrinfo does not list the tracts:\n%s", out)
		}
	})

	t.Run("ogr2ogr copies every tract with its code and outline", func(t *testing.T) {
		mu.Lock()
		asked = nil
		mu.Unlock()
		gpkg := filepath.Join(t.TempDir(), "tracts.gpkg")
		gdal(t, "ogr2ogr", "-f", "GPKG", gpkg, endpoint, "tracts", "-oo", "PAGE_SIZE=1000")
		mu.Lock()
		pages := 0
		for _, a := range asked {
			if strings.Contains(a, "/items") {
				pages++
			}
		}
		mu.Unlock()
		if pages < 3 {
			t.Errorf("GDAL fetched %d pages of items, want at least 3 for 2,165 tracts at 1,000 a page", pages)
		}
		copied := readGeoJSONCodes(t, gdal(t, "ogr2ogr", "-f", "GeoJSON", "/vsistdout/", gpkg, "-lco", "RFC7946=NO", "-lco", "COORDINATE_PRECISION=12"))
		want := map[string]orb.Geometry{}
		rows, err := db.Pool.Query(ctx, `SELECT code, ST_AsBinary(geom) FROM grid_versions WHERE layer_id = 'tracts' AND valid_to IS NULL`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var code string
			var b []byte
			if err := rows.Scan(&code, &b); err != nil {
				t.Fatal(err)
			}
			if want[code], err = wkb.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
		}
		if len(copied) != 2165 || len(want) != 2165 {
			t.Fatalf("copied %d tracts of %d", len(copied), len(want))
		}
		for code, g := range want {
			got, ok := copied[code]
			if !ok {
				t.Errorf("tract %s was not copied", code)
				continue
			}
			if !sameOutline(got, g, 1e-9) {
				t.Errorf("tract %s differs by more than 1e-9 degrees", code)
			}
		}
	})

	t.Run("a -where filter is sent as CQL2 and evaluated by the server", func(t *testing.T) {
		mu.Lock()
		asked = nil
		mu.Unlock()
		out := gdal(t, "ogr2ogr", "-f", "GeoJSON", "/vsistdout/", endpoint, "tracts", "-where", "code = '1000100' OR code = '3000100'")
		got := readGeoJSONCodes(t, out)
		if len(got) != 2 || got["1000100"] == nil || got["3000100"] == nil {
			t.Errorf("the filter gave %d tracts", len(got))
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.ContainsFunc(asked, func(a string) bool { return strings.Contains(a, "/items") && strings.Contains(a, "filter=") }) {
			t.Errorf("GDAL did not send the filter to the server; it asked:\n%s", strings.Join(asked, "\n"))
		}
	})
}

// readGeoJSONCodes maps the code property of a FeatureCollection's
// features to their geometries.
func readGeoJSONCodes(t *testing.T, text string) map[string]orb.Geometry {
	t.Helper()
	fc, err := geojson.UnmarshalFeatureCollection([]byte(text))
	if err != nil {
		t.Fatalf("not GeoJSON: %v\n%.500s", err, text)
	}
	out := map[string]orb.Geometry{}
	for _, f := range fc.Features {
		code, _ := f.Properties["code"].(string)
		out[code] = f.Geometry
	}
	return out
}

// sameOutline compares two polygonal geometries vertex by vertex.
func sameOutline(a, b orb.Geometry, tol float64) bool {
	flat := func(g orb.Geometry) []orb.Point {
		var out []orb.Point
		switch g := g.(type) {
		case orb.Polygon:
			for _, r := range g {
				out = append(out, r...)
			}
		case orb.MultiPolygon:
			for _, p := range g {
				for _, r := range p {
					out = append(out, r...)
				}
			}
		}
		return out
	}
	pa, pb := flat(a), flat(b)
	if len(pa) != len(pb) || len(pa) == 0 {
		return false
	}
	for i := range pa {
		if math.Abs(pa[i][0]-pb[i][0]) > tol || math.Abs(pa[i][1]-pb[i][1]) > tol {
			return false
		}
	}
	return true
}
