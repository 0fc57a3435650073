package server

import (
	"encoding/json"
	"fmt"
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

// TestParseBatchInPieces: a large body read in pieces on several
// goroutines gives the points, and the errors, of one read in one piece,
// wherever the trouble is.
func TestParseBatchInPieces(t *testing.T) {
	big := func(n int, point func(i int) string, after string) string {
		var b strings.Builder
		b.WriteString(`{"layer":"demo","points":[`)
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(point(i))
		}
		b.WriteString("]" + after + "}")
		return b.String()
	}
	plain := func(i int) string { return fmt.Sprintf("[%.6f,%.6f]", -74+float64(i)*1e-5, 40+float64(i%977)*1e-4) }
	cases := []struct{ name, body string }{
		{"plain", big(50_000, plain, "")},
		{"spaces and altitudes", big(40_000, func(i int) string {
			return fmt.Sprintf(" [ %g ,\n%g , %d ] ", float64(i)*0.001, float64(i%90), i)
		}, "")},
		{"fields after the points", big(50_000, plain, `,"crs":"gcj02","tolerance_m":5`)},
		{"a bad point late", big(50_000, func(i int) string {
			if i == 41_234 {
				return "[1]"
			}
			return plain(i)
		}, "")},
		{"a bad point first", big(50_000, func(i int) string {
			if i == 0 {
				return `{"lon":1}`
			}
			return plain(i)
		}, "")},
		{"a string among the points", big(50_000, func(i int) string {
			if i == 30_000 {
				return `"[1,2],"`
			}
			return plain(i)
		}, "")},
		{"a trailing comma", big(50_000, plain, ",")},
		{"too many points", big(gridmap.MaxLookupPoints+1, func(int) string { return "[1,2]" }, "")},
		{"too many points and a bad one after", big(gridmap.MaxLookupPoints+5, func(i int) string {
			if i == gridmap.MaxLookupPoints+3 {
				return "[x]"
			}
			return "[1,2]"
		}, "")},
		{"unterminated", big(50_000, plain, "")[:700_000]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, werr := parseBatch([]byte(c.body))
			got, gerr := parseBatchOn([]byte(c.body), 4)
			if fmt.Sprint(werr) != fmt.Sprint(gerr) {
				t.Fatalf("error %v, in one piece %v", gerr, werr)
			}
			if werr != nil {
				return
			}
			sc := &jsonScanner{b: []byte(c.body), i: strings.Index(c.body, `"points":`) + len(`"points":`)}
			if _, _, ok := sc.pointsInPieces(4); !ok {
				t.Error("the body was read in one piece, not in pieces")
			}
			if len(got.points) != len(want.points) || got.crs != want.crs || got.layer != want.layer {
				t.Fatalf("%d points crs %q layer %q, in one piece %d %q %q", len(got.points), got.crs, got.layer, len(want.points), want.crs, want.layer)
			}
			for i := range want.points {
				if got.points[i] != want.points[i] {
					t.Fatalf("point %d: %v, in one piece %v", i, got.points[i], want.points[i])
				}
			}
		})
	}
}
