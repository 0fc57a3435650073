package geo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridmap/gridmap"
)

// polygonOf is a GeoJSON Polygon of n vertices tracing the unit square.
func polygonOf(n int) string {
	var b strings.Builder
	b.WriteString(`{"type":"Polygon","coordinates":[[`)
	for i := range n - 1 {
		fmt.Fprintf(&b, "[%g,0],", float64(i)/float64(n))
	}
	b.WriteString("[0,0]]]}")
	return b.String()
}

func TestFeatureReaderLimits(t *testing.T) {
	feature := func(code, geometry string) string {
		return `{"type":"Feature","properties":{"code":"` + code + `","level":"grid"},"geometry":` + geometry + `}`
	}
	t.Run("a feature past the vertex limit is rejected, naming the limit, and the others read on", func(t *testing.T) {
		fs, err := readAll(t, `{"type":"FeatureCollection","features":[`+feature("a", square)+","+
			feature("b", polygonOf(gridmap.MaxVertices+1))+","+feature("c", square)+`]}`, DefaultFieldMap)
		if err != nil || len(fs) != 3 {
			t.Fatalf("%d features, %v", len(fs), err)
		}
		if fs[0].DecodeError != "" || fs[2].DecodeError != "" || fs[2].Code != "c" {
			t.Errorf("the features around it: %+v %+v", fs[0], fs[2])
		}
		if b := fs[1]; b.Code != "b" || b.Geometry != nil ||
			!strings.Contains(b.DecodeError, "Polygon has 150,001 vertices; at most 150,000 are accepted per geometry") {
			t.Errorf("the feature past the limit: code %q, geometry %v, %q", b.Code, b.Geometry != nil, b.DecodeError)
		}
	})
	t.Run("a feature at the limit is read", func(t *testing.T) {
		fs, err := readAll(t, feature("a", polygonOf(gridmap.MaxVertices)), DefaultFieldMap)
		if err != nil || len(fs) != 1 || fs[0].DecodeError != "" {
			t.Fatalf("%v %+v", err, fs)
		}
	})
	deep := strings.Repeat("[", gridmap.MaxJSONDepth) + strings.Repeat("]", gridmap.MaxJSONDepth)
	for _, tt := range []struct {
		name, input, code, message string
	}{
		{"properties nested past the limit stop the stream", `{"type":"FeatureCollection","features":[` + feature("a", square) + `,
			{"type":"Feature","properties":{"code":"b","deep":` + deep + `},"geometry":null}]}`,
			gridmap.EUNPROCESSABLE, "at most 64 levels are accepted (reading feature 1)"},
		{"an array 10,000 deep in a geometry", feature("a", `{"type":"Polygon","coordinates":`+strings.Repeat("[", 10_000)+`}`),
			gridmap.EUNPROCESSABLE, "more than 64 deep"},
		{"an escaped NUL stops the stream", feature("a\\u0000", square), gridmap.EINVALID, `\u0000`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := readAll(t, tt.input, DefaultFieldMap)
			if gridmap.ErrorCode(err) != tt.code || !strings.Contains(gridmap.ErrorMessage(err), tt.message) {
				t.Errorf("got %v after %d features, want %s saying %q", err, len(fs), tt.code, tt.message)
			}
		})
	}
}

// The real boundaries read whole: the NYC boroughs, the largest of them
// about 29,000 vertices.
func TestFeatureReaderNYCBoroughs(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "shared", "data", "nyc", "L1_boroughs.geojson"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("NYC data not found")
	} else if err != nil {
		t.Fatal(err)
	}
	fs, err := readAll(t, string(data), FieldMap{Code: "borocode"})
	if err != nil || len(fs) != 5 {
		t.Fatalf("%d boroughs, %v", len(fs), err)
	}
	for _, f := range fs {
		if f.DecodeError != "" || f.Geometry == nil {
			t.Errorf("borough %s: %s", f.Code, f.DecodeError)
		}
	}
}

func TestToWGS84OutOfRange(t *testing.T) {
	for _, crs := range []string{gridmap.CRSWGS84, gridmap.CRSGCJ02, gridmap.CRSBD09} {
		for _, p := range [][2]float64{{1e308, 30}, {120, -1e308}, {180.000001, 30}, {120, 90.5}} {
			if _, _, err := ToWGS84(crs, p[0], p[1]); gridmap.ErrorCode(err) != gridmap.EINVALID {
				t.Errorf("%s %v: %v, want EINVALID", crs, p, err)
			}
		}
	}
}
