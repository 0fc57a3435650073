package server

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/gridmap/gridmap"
)

func TestParseBatch(t *testing.T) {
	cases := []struct {
		name, body string
		points     int
		code       string
		says       string
	}{
		{"points and options", `{"points": [[120.1, 30.2], [-73.9,40.7,12]], "crs": "gcj02", "layer": "demo", "tolerance_m": 10, "accuracy_m": null, "at": null}`, 2, "", ""},
		{"escaped layer name", `{"layer":"d\u0065mo","points":[]}`, 0, "", ""},
		{"no points", `{"layer":"demo"}`, 0, gridmap.EINVALID, "points is required"},
		{"point with one number", `{"points":[[1,2],[3]]}`, 0, gridmap.EINVALID, "points[1]"},
		{"point as an object", `{"points":[{"lon":1,"lat":2}]}`, 0, gridmap.EINVALID, "points[0]"},
		{"plus sign is not JSON", `{"points":[[+1,2]]}`, 0, gridmap.EINVALID, "points[0]"},
		{"unknown field", `{"points":[],"tolerance":3}`, 0, gridmap.EINVALID, "unknown field"},
		{"trailing data", `{"points":[]} x`, 0, gridmap.EINVALID, "after the JSON object"},
		{"not an object", `[[1,2]]`, 0, gridmap.EINVALID, "JSON object"},
		{"bad time", `{"points":[],"at":"noon"}`, 0, gridmap.EINVALID, "RFC 3339"},
		{"tolerance as text", `{"points":[],"tolerance_m":"5"}`, 0, gridmap.EINVALID, "tolerance_m"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := parseBatch([]byte(c.body))
			if gridmap.ErrorCode(err) != c.code || (err != nil && !strings.Contains(gridmap.ErrorMessage(err), c.says)) {
				t.Fatalf("error %v, want %q saying %q", err, c.code, c.says)
			}
			if err == nil && len(req.points) != c.points {
				t.Errorf("%d points, want %d", len(req.points), c.points)
			}
		})
	}
}

// FuzzParseBatch: any body either fails with a client error or gives points
// that agree with encoding/json's reading of the same body.
func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{`{"points":[[1,2]]}`, `{"points":[],"crs":"gcj02"}`, `{"points":[[1e3,-2.5,7]],"tolerance_m":3}`, `{`, `{"points":[[1,2],]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseBatch(body)
		if err != nil {
			if c := gridmap.ErrorCode(err); c != gridmap.EINVALID && c != gridmap.ETOOLARGE {
				t.Fatalf("error code %q for %q", c, body)
			}
			return
		}
		var std struct {
			Points [][]float64 `json:"points"`
		}
		if json.Unmarshal(body, &std) != nil {
			return // duplicate keys and the like: encoding/json is stricter on types only
		}
		if len(std.Points) != len(req.points) {
			t.Fatalf("%d points, encoding/json reads %d, in %q", len(req.points), len(std.Points), body)
		}
		for i, p := range req.points {
			if p[0] != std.Points[i][0] || p[1] != std.Points[i][1] || math.IsNaN(p[0]) {
				t.Fatalf("point %d: %v, encoding/json reads %v", i, p, std.Points[i])
			}
		}
	})
}
