package geo

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/paulmach/orb"
)

func readAll(t *testing.T, input string, fields FieldMap) ([]*gridmap.Feature, error) {
	t.Helper()
	fr := NewFeatureReader(strings.NewReader(input), fields)
	var out []*gridmap.Feature
	for {
		f, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, f)
	}
}

const square = `{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}`

func TestFeatureReader(t *testing.T) {
	nyc := FieldMap{Code: "boroct2010", Name: "ctlabel", Parent: "ntacode", DefaultLevel: "tract"}
	tests := []struct {
		name   string
		input  string
		fields FieldMap
		codes  []string
	}{
		{"feature collection", `{"type":"FeatureCollection","name":"x","features":[
			{"type":"Feature","properties":{"code":"a","level":"grid"},"geometry":` + square + `},
			{"type":"Feature","properties":{"code":"b","level":"grid"},"geometry":` + square + `}],"crs":{}}`,
			DefaultFieldMap, []string{"a", "b"}},
		{"features before type", `{"features":[{"type":"Feature","properties":{"code":"a"},"geometry":` + square + `}],"type":"FeatureCollection"}`,
			DefaultFieldMap, []string{"a"}},
		{"one feature per line", `{"type":"Feature","properties":{"code":"a"},"geometry":` + square + `}
{"type":"Feature","properties":{"code":"b"},"geometry":` + square + `}
`, DefaultFieldMap, []string{"a", "b"}},
		{"RFC 8142 record separators", "\x1e{\"type\":\"Feature\",\"properties\":{\"code\":\"a\"},\"geometry\":" + square + "}\n\x1e{\"type\":\"Feature\",\"properties\":{\"code\":\"b\"},\"geometry\":" + square + "}\n",
			DefaultFieldMap, []string{"a", "b"}},
		{"a single feature", `{"type":"Feature","properties":{"code":"z"},"geometry":` + square + `}`, DefaultFieldMap, []string{"z"}},
		{"numeric codes print as integers", `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"boroct2010":1000100,"ntacode":"MN99"},"geometry":` + square + `}]}`,
			nyc, []string{"1000100"}},
		{"id stands in for a missing code", `{"type":"Feature","id":"fromid","properties":{},"geometry":` + square + `}`, DefaultFieldMap, []string{"fromid"}},
		{"empty collection", `{"type":"FeatureCollection","features":[]}`, DefaultFieldMap, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := readAll(t, tc.input, tc.fields)
			if err != nil {
				t.Fatal(err)
			}
			var codes []string
			for i, f := range fs {
				codes = append(codes, f.Code)
				if f.Index != i {
					t.Errorf("feature %d has index %d", i, f.Index)
				}
			}
			if strings.Join(codes, ",") != strings.Join(tc.codes, ",") {
				t.Errorf("codes %v, want %v", codes, tc.codes)
			}
		})
	}
}

func TestFeatureReaderMapsFields(t *testing.T) {
	in := `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"boroct2010":"1000100","ctlabel":"1","ntacode":"MN99","puma":"3810","borocode":1},"geometry":` + square + `}]}`
	fs, err := readAll(t, in, FieldMap{Code: "boroct2010", Name: "ctlabel", Parent: "ntacode", DefaultLevel: "tract"})
	if err != nil {
		t.Fatal(err)
	}
	f := fs[0]
	if f.Code != "1000100" || f.Name != "1" || f.Parent != "MN99" || f.Level != "tract" {
		t.Errorf("mapped %+v", f)
	}
	if f.Attributes["puma"] != "3810" || f.Attributes["borocode"] != 1.0 {
		t.Errorf("other properties should be kept as attributes, got %v", f.Attributes)
	}
	if _, ok := f.Attributes["boroct2010"]; ok {
		t.Error("the code field should not be repeated in attributes")
	}
	if _, ok := f.Geometry.(orb.Polygon); !ok {
		t.Errorf("geometry %T", f.Geometry)
	}
}

func TestFeatureReaderErrors(t *testing.T) {
	t.Run("a feature that does not decode is returned with its reason", func(t *testing.T) {
		in := `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"a"},"geometry":{"type":"Blob","coordinates":[]}},
			{"type":"Feature","properties":{"code":"b"},"geometry":` + square + `}]}`
		fs, err := readAll(t, in, DefaultFieldMap)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 2 || fs[0].DecodeError == "" || fs[0].Code != "a" || fs[1].DecodeError != "" {
			t.Fatalf("got %+v", fs)
		}
	})
	for name, in := range map[string]string{
		"truncated input":   `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"a"},"geometry":` + square,
		"not JSON":          `this is not json`,
		"not an object":     `[1,2,3]`,
		"wrong top type":    `{"type":"Polygon","coordinates":[]}`,
		"features not list": `{"type":"FeatureCollection","features":{}}`,
	} {
		t.Run(name+" is an invalid-input error", func(t *testing.T) {
			_, err := readAll(t, in, DefaultFieldMap)
			if gridmap.ErrorCode(err) != gridmap.EINVALID {
				t.Fatalf("got %v (code %q), want EINVALID", err, gridmap.ErrorCode(err))
			}
		})
	}
}

// FuzzFeatureReader feeds arbitrary bytes to the reader: it may reject them
// but must not panic or loop.
func FuzzFeatureReader(f *testing.F) {
	f.Add(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"a"},"geometry":` + square + `}]}`)
	f.Add("\x1e{\"type\":\"Feature\",\"properties\":{},\"geometry\":null}\n")
	f.Add(`{"features":[{}],"type":"FeatureCollection"}`)
	f.Add(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"GeometryCollection","geometries":[null]}},{}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		fr := NewFeatureReader(strings.NewReader(in), DefaultFieldMap)
		for range len(in) + 2 {
			if _, err := fr.Next(); err != nil {
				return
			}
		}
		t.Fatalf("reader returned more features than the input has bytes")
	})
}

// TestFeatureReaderReadsAheadInOrder reads more features than one read-ahead
// holds, as a collection and one per line, each with a feature that does
// not decode among them and bad JSON at the end: every feature comes back
// in order with its own index and code, the undecodable one with its
// reason, then the error naming the feature it stopped at.
func TestFeatureReaderReadsAheadInOrder(t *testing.T) {
	const n = 2*decodeAheadFeatures + 17
	const bad = decodeAheadFeatures + 3
	feature := func(i int) string {
		geometry := square
		if i == bad {
			geometry = `{"type":"Blob","coordinates":[]}`
		}
		return fmt.Sprintf(`{"type":"Feature","properties":{"code":"g%d","level":"grid"},"geometry":%s}`, i, geometry)
	}
	var collection, lines strings.Builder
	collection.WriteString(`{"type":"FeatureCollection","features":[`)
	for i := range n {
		if i > 0 {
			collection.WriteByte(',')
		}
		collection.WriteString(feature(i))
		lines.WriteString(feature(i) + "\n")
	}
	collection.WriteString(`,{"type":"Feature","properties":{"code":"broken"`)
	lines.WriteString(`{"type":"Feature","properties":{"code":"broken"` + "\n")
	records := strings.ReplaceAll(lines.String(), `{"type":"Feature"`, "\x1e"+`{"type":"Feature"`)
	for name, in := range map[string]string{"collection": collection.String(), "one per line": lines.String(), "RFC 8142 records": records} {
		t.Run(name, func(t *testing.T) {
			fs, err := readAll(t, in, DefaultFieldMap)
			if gridmap.ErrorCode(err) != gridmap.EINVALID || !strings.Contains(err.Error(), fmt.Sprintf("feature %d", n)) {
				t.Fatalf("after %d features: %v, want invalid input at feature %d", len(fs), err, n)
			}
			if len(fs) != n {
				t.Fatalf("%d features before the error, want %d", len(fs), n)
			}
			for i, f := range fs {
				if f.Index != i || f.Code != fmt.Sprintf("g%d", i) || (f.DecodeError != "") != (i == bad) {
					t.Fatalf("feature %d: index %d, code %s, decode error %q", i, f.Index, f.Code, f.DecodeError)
				}
				if i != bad && len(f.Geometry.(orb.Polygon)) != 1 {
					t.Fatalf("feature %d: geometry %v", i, f.Geometry)
				}
			}
		})
	}
}

// TestFeatureReaderSurvivesDecoderPanics reads a geometry the GeoJSON
// decoder panics on (a null in a GeometryCollection), alone and among
// others decoded on several goroutines: it comes back in its place as a
// feature that does not decode, with its code (from its properties or its
// id), and the features after it are read.
func TestFeatureReaderSurvivesDecoderPanics(t *testing.T) {
	const broken = `{"type":"GeometryCollection","geometries":[null]}`
	byCode := `{"type":"Feature","properties":{"code":"bad"},"geometry":` + broken + `}`
	byID := `{"type":"Feature","id":"bad","properties":{},"geometry":` + broken + `}`
	good := func(code string) string {
		return `{"type":"Feature","properties":{"code":"` + code + `"},"geometry":` + square + `}`
	}
	for name, features := range map[string][]string{
		"alone":              {byCode},
		"among others":       {good("a"), byCode, good("b")},
		"by id among others": {good("a"), good("b"), byID, good("c")},
	} {
		t.Run(name, func(t *testing.T) {
			fs, err := readAll(t, `{"type":"FeatureCollection","features":[`+strings.Join(features, ",")+`]}`, DefaultFieldMap)
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != len(features) {
				t.Fatalf("%d features, want %d", len(fs), len(features))
			}
			for i, f := range fs {
				bad := strings.Contains(features[i], "GeometryCollection")
				if f.Index != i || (f.Code == "bad") != bad || (f.DecodeError != "") != bad {
					t.Errorf("feature %d: index %d, code %q, decode error %q", i, f.Index, f.Code, f.DecodeError)
				}
			}
		})
	}
}

// TestFeatureReaderReadsAheadPastABigFeature reads a feature larger than a
// read-ahead's bytes between small ones: each comes back whole, in order.
func TestFeatureReaderReadsAheadPastABigFeature(t *testing.T) {
	name := strings.Repeat("n", decodeAheadBytes+1)
	var in strings.Builder
	in.WriteString(`{"type":"FeatureCollection","features":[`)
	for i := range 5 {
		if i > 0 {
			in.WriteByte(',')
		}
		n := "small"
		if i%2 == 1 {
			n = name
		}
		fmt.Fprintf(&in, `{"type":"Feature","properties":{"code":"g%d","name":%q},"geometry":%s}`, i, n, square)
	}
	in.WriteString(`]}`)
	fs, err := readAll(t, in.String(), DefaultFieldMap)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 5 {
		t.Fatalf("%d features, want 5", len(fs))
	}
	for i, f := range fs {
		if f.Index != i || f.Code != fmt.Sprintf("g%d", i) || (len(f.Name) > decodeAheadBytes) != (i%2 == 1) {
			t.Errorf("feature %d: index %d, code %s, a name of %d bytes", i, f.Index, f.Code, len(f.Name))
		}
	}
}
