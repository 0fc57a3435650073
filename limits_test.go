package gridmap_test

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gridmap/gridmap"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// ringOf is a closed ring of n vertices around the unit square.
func ringOf(n int) orb.Ring {
	r := make(orb.Ring, n)
	for i := range n - 1 {
		f := float64(i) / float64(n-1) * 4
		switch side := int(f); side {
		case 0:
			r[i] = orb.Point{f, 0}
		case 1:
			r[i] = orb.Point{1, f - 1}
		case 2:
			r[i] = orb.Point{3 - f, 1}
		default:
			r[i] = orb.Point{0, 4 - f}
		}
	}
	r[n-1] = r[0]
	return r
}

func manySquares(n int) orb.MultiPolygon {
	mp := make(orb.MultiPolygon, n)
	for i := range mp {
		x := float64(i) * 2
		mp[i] = orb.Polygon{{{x, 0}, {x + 1, 0}, {x + 1, 1}, {x, 1}, {x, 0}}}
	}
	return mp
}

func TestCheckGeometrySize(t *testing.T) {
	half := gridmap.MaxVertices / 2
	tests := []struct {
		name    string
		g       orb.Geometry
		message string // "" when accepted
	}{
		{"no geometry", nil, ""},
		{"a point", orb.Point{1, 2}, ""},
		{"a polygon at the limit", orb.Polygon{ringOf(gridmap.MaxVertices)}, ""},
		{"a polygon one vertex past it", orb.Polygon{ringOf(gridmap.MaxVertices + 1)},
			"Polygon has 150,001 vertices; at most 150,000 are accepted per geometry"},
		{"parts counted together", orb.MultiPolygon{{ringOf(half)}, {ringOf(half), ringOf(2)}},
			"MultiPolygon has 150,002 vertices; at most 150,000"},
		{"a hostile polygon", orb.Polygon{ringOf(200_001)}, "Polygon has 200,001 vertices"},
		{"a line past the limit", orb.LineString(ringOf(gridmap.MaxVertices + 5)), "LineString has 150,005 vertices"},
		{"rings at the limit", manySquares(gridmap.MaxRings), ""},
		{"one ring past it", manySquares(gridmap.MaxRings + 1), "MultiPolygon has 10,001 rings; at most 10,000"},
		{"a collection counts its members", orb.Collection{orb.Polygon{ringOf(half)}, orb.LineString(ringOf(half + 1))},
			"Collection has 150,001 vertices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := gridmap.CheckGeometrySize(tt.g)
			switch {
			case tt.message == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.message != "" && (gridmap.ErrorCode(err) != gridmap.ETOOLARGE || !strings.Contains(gridmap.ErrorMessage(err), tt.message)):
				t.Errorf("got %v, want ETOOLARGE saying %q", err, tt.message)
			}
		})
	}
}

// The largest real boundaries pass: the NYC boroughs, up to about 29,000
// vertices (Queens).
func TestCheckGeometrySizeNYC(t *testing.T) {
	dir := filepath.Join("..", "shared", "data", "nyc")
	for _, name := range []string{"L1_boroughs.geojson", "L2_nta2010.geojson", "dept_police_precincts_77.geojson"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			t.Skipf("NYC data not found in %s", dir)
		} else if err != nil {
			t.Fatal(err)
		}
		fc, err := geojson.UnmarshalFeatureCollection(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fc.Features {
			if err := gridmap.CheckGeometrySize(f.Geometry); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

func TestCheckCoordinates(t *testing.T) {
	tests := []struct {
		name string
		g    orb.Geometry
		ok   bool
	}{
		{"in range", orb.LineString{{121.5, 31.2}, {-180, -90}, {180, 90}}, true},
		{"huge", orb.LineString{{121.5, 31.2}, {1e308, 0}}, false},
		{"latitude past the pole", orb.Polygon{{{0, 0}, {0, 90.000001}, {1, 0}, {0, 0}}}, false},
		{"not a number", orb.MultiPoint{{math.NaN(), 0}}, false},
		{"infinite, deep in a collection", orb.Collection{orb.Point{0, 0}, orb.Collection{orb.Point{math.Inf(-1), 0}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := gridmap.CheckCoordinates(tt.g)
			if tt.ok != (err == nil) || (err != nil && gridmap.ErrorCode(err) != gridmap.EINVALID) {
				t.Errorf("got %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestCheckText(t *testing.T) {
	for _, tt := range []struct {
		name, s string
		ok      bool
	}{
		{"empty", "", true},
		{"SQL is only text", "'; DROP TABLE reports; --", true},
		{"Chinese", "城市管理局", true},
		{"NUL", "a\x00b", false},
		{"not UTF-8", "a\xffb", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := gridmap.CheckText("name", tt.s)
			if tt.ok != (err == nil) || (err != nil && !strings.HasPrefix(gridmap.ErrorMessage(err), "name ")) {
				t.Errorf("got %v, want ok %v", err, tt.ok)
			}
		})
	}
	if err := gridmap.CheckCode("code", strings.Repeat("1", gridmap.MaxCodeLength)); err != nil {
		t.Errorf("a code at the limit: %v", err)
	}
	if err := gridmap.CheckCode("code", strings.Repeat("1", gridmap.MaxCodeLength+1)); gridmap.ErrorCode(err) != gridmap.EINVALID {
		t.Errorf("a code past the limit: %v", err)
	}
}

func nested(depth int) string {
	return strings.Repeat(`{"a":[`, depth/2) + strings.Repeat("[", depth%2) + `"[{"` + strings.Repeat("]", depth%2) + strings.Repeat("]}", depth/2)
}

func TestLimitJSON(t *testing.T) {
	tests := []struct {
		name, input string
		code        string // "" when it passes
	}{
		{"flat", `{"a":1,"b":[1,2,3]}`, ""},
		{"nested to the limit", nested(gridmap.MaxJSONDepth), ""},
		{"one level past it", nested(gridmap.MaxJSONDepth + 1), gridmap.EUNPROCESSABLE},
		{"10,000 deep", strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000), gridmap.EUNPROCESSABLE},
		{"brackets in strings do not count", `["` + strings.Repeat("[{", 100) + `"]`, ""},
		{"escaped quotes do not end strings", `["\"` + strings.Repeat("[", 100) + `"]`, ""},
		{"an escaped backslash ends its escape", `["\\", ` + nested(gridmap.MaxJSONDepth-1) + `]`, ""},
		{"a stream of values, each at the limit", nested(gridmap.MaxJSONDepth) + "\n" + nested(gridmap.MaxJSONDepth), ""},
		{"an escaped NUL", `{"name":"a\u0000b"}`, gridmap.EINVALID},
		{"an escaped NUL in a key", `{"\u0000":1}`, gridmap.EINVALID},
		{"other escapes", `{"name":"\u0001\u00e9\u4e2d\n\\u0000"}`, ""},
	}
	for _, tt := range tests {
		for _, read := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{{"at once", func(r io.Reader) io.Reader { return r }}, {"byte by byte", iotest.OneByteReader}} {
			t.Run(tt.name+" "+read.name, func(t *testing.T) {
				got, err := io.ReadAll(gridmap.LimitJSON(read.wrap(strings.NewReader(tt.input))))
				switch {
				case tt.code == "" && (err != nil || string(got) != tt.input):
					t.Errorf("got %v, %d of %d bytes", err, len(got), len(tt.input))
				case tt.code != "" && gridmap.ErrorCode(err) != tt.code:
					t.Errorf("got %v, want %s", err, tt.code)
				case tt.code == gridmap.EUNPROCESSABLE && !strings.Contains(gridmap.ErrorMessage(err), "64"):
					t.Errorf("the message does not name the limit: %v", err)
				}
			})
		}
	}
}

// endless is an endless stream of '['.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '['
	}
	return len(p), nil
}

// LimitJSON stops a decoder at the limit, before the value is built: an
// endless array would otherwise be read until memory runs out.
func TestLimitJSONFailsFast(t *testing.T) {
	var v any
	err := json.NewDecoder(gridmap.LimitJSON(endless{})).Decode(&v)
	if gridmap.ErrorCode(err) != gridmap.EUNPROCESSABLE {
		t.Fatalf("got %v", err)
	}
}

// refDepth is the deepest nesting of a valid JSON text and whether any of
// its strings holds a NUL, read with encoding/json.
func refDepth(data []byte) (depth int, nul bool) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	d := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return depth, nul
		}
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '[' || tok == '{' {
				d++
				depth = max(depth, d)
			} else {
				d--
			}
		case string:
			nul = nul || strings.ContainsRune(tok, 0)
		}
	}
}

// FuzzLimitJSON holds LimitJSON to encoding/json: a valid JSON text passes
// through unchanged exactly when it nests at most MaxJSONDepth deep and no
// string holds a NUL.
func FuzzLimitJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"[["}]}`, nested(64), nested(65), `["\u0000"]`, `["\\u0000"]`, `{"\"[":"\\\"{"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		depth, nul := refDepth(data)
		got, err := io.ReadAll(gridmap.LimitJSON(strings.NewReader(string(data))))
		refused := depth > gridmap.MaxJSONDepth || nul
		if refused != (err != nil) || (err == nil && string(got) != string(data)) {
			t.Fatalf("depth %d, NUL %v: got %v, %q", depth, nul, err, got)
		}
	})
}

func TestChangesetCheck(t *testing.T) {
	put := func(g orb.Geometry) gridmap.Operation {
		f := geojson.NewFeature(g)
		f.Properties["code"] = "A1"
		return gridmap.Operation{Op: gridmap.OpPut, Feature: f}
	}
	ops := func(n int) []gridmap.Operation {
		out := make([]gridmap.Operation, n)
		for i := range out {
			out[i] = gridmap.Operation{Op: gridmap.OpDelete, Code: "A1"}
		}
		return out
	}
	codes := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "A1"
		}
		return out
	}
	square := orb.Polygon{{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}}
	tests := []struct {
		name    string
		ops     []gridmap.Operation
		code    string // "" when it passes
		message string
	}{
		{"operations at the limit", ops(gridmap.MaxChangesetOperations), "", ""},
		{"one operation past it", ops(gridmap.MaxChangesetOperations + 1), gridmap.ETOOLARGE,
			"a changeset takes at most 1,000 operations; this one has 1,001"},
		{"a merge of too many codes", []gridmap.Operation{{Op: gridmap.OpMerge, Codes: codes(1001), Into: "A1"}}, gridmap.ETOOLARGE,
			"operation 0: merge has 1,001 codes; at most 1,000"},
		{"a put of a geometry past the limit", []gridmap.Operation{put(square), put(orb.Polygon{ringOf(200_001)})}, gridmap.ETOOLARGE,
			"operation 1: Polygon has 200,001 vertices"},
		{"a split into a part past the limit", []gridmap.Operation{{Op: gridmap.OpSplit, Code: "A1",
			Parts: []*geojson.Geometry{geojson.NewGeometry(square), geojson.NewGeometry(orb.Polygon{ringOf(200_001)})}}}, gridmap.ETOOLARGE, "Polygon has 200,001"},
		{"a move past the ring limit", []gridmap.Operation{{Op: gridmap.OpMoveEdge, Code: "A1",
			Geometry: geojson.NewGeometry(manySquares(gridmap.MaxRings + 1))}}, gridmap.ETOOLARGE, "10,001 rings"},
		{"a split line off the earth", []gridmap.Operation{{Op: gridmap.OpSplit, Code: "A1",
			Line: geojson.NewGeometry(orb.LineString{{0, 0}, {1e308, 1}})}}, gridmap.EINVALID, "operation 0: line: lon"},
		{"a code with a NUL", []gridmap.Operation{{Op: gridmap.OpDelete, Code: "A\x001"}}, gridmap.EINVALID, "operation 0: code holds a NUL"},
		{"a new code too long", []gridmap.Operation{{Op: gridmap.OpSplit, Code: "A1", NewCodes: []string{"A2", strings.Repeat("9", 101)}}},
			gridmap.EINVALID, "new_codes[1] is 101 bytes long; grid codes are at most 100"},
		{"a feature code not UTF-8", []gridmap.Operation{{Op: gridmap.OpPut, Feature: &geojson.Feature{Properties: geojson.Properties{"code": "\xff"}}}},
			gridmap.EINVALID, "the feature's code is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&gridmap.Changeset{Operations: tt.ops}).Check()
			switch {
			case tt.code == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.code != "" && (gridmap.ErrorCode(err) != tt.code || !strings.Contains(gridmap.ErrorMessage(err), tt.message)):
				t.Errorf("got %v, want %s saying %q", err, tt.code, tt.message)
			}
		})
	}
}

// BenchmarkLimitJSON reads 5 MB of GeoJSON through LimitJSON, to compare
// with what decoding it costs (BenchmarkFeatureReader in geo: about
// 12 MB/s).
func BenchmarkLimitJSON(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"type":"FeatureCollection","features":[`)
	for i := 0; sb.Len() < 5<<20; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"type":"Feature","properties":{"code":"` + strings.Repeat("7", 7) + `","name":"名称 \"x\""},` +
			`"geometry":{"type":"MultiPolygon","coordinates":[[[[-73.981234,40.712345],[-73.981235,40.712346],[-73.981236,40.712347],[-73.981234,40.712345]]]]}}`)
	}
	sb.WriteString("]}")
	data := sb.String()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.Copy(io.Discard, gridmap.LimitJSON(strings.NewReader(data))); err != nil {
			b.Fatal(err)
		}
	}
}
