package gridmap_test

import (
	"maps"
	"testing"

	"github.com/gridmap/gridmap"
)

func TestDefaultTiers(t *testing.T) {
	tests := []struct {
		name   string
		levels []string
		want   map[string]string
	}{
		{"named levels", []string{"district", "street", "community", "grid", "microgrid"},
			map[string]string{"district": "district", "street": "street", "community": "street", "grid": "grid", "microgrid": "grid"}},
		{"other names by position", []string{"borough", "nta", "tract"},
			map[string]string{"borough": "district", "nta": "street", "tract": "grid"}},
		{"mixed", []string{"city", "grid", "block"},
			map[string]string{"city": "district", "grid": "grid", "block": "grid"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := gridmap.DefaultTiers(tc.levels); !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLayerNormalize(t *testing.T) {
	tests := []struct {
		name  string
		layer gridmap.Layer
		ok    bool
	}{
		{"minimal layer gets defaults", gridmap.Layer{ID: "nyc", Levels: []string{"borough", "tract"}}, true},
		{"bad id", gridmap.Layer{ID: "NYC City", Levels: []string{"a"}}, false},
		{"no levels", gridmap.Layer{ID: "x"}, false},
		{"repeated level", gridmap.Layer{ID: "x", Levels: []string{"a", "a"}}, false},
		{"bad kind", gridmap.Layer{ID: "x", Kind: "private", Levels: []string{"a"}}, false},
		{"bad pattern", gridmap.Layer{ID: "x", Levels: []string{"a"}, CodePattern: "(["}, false},
		{"tier for unknown level", gridmap.Layer{ID: "x", Levels: []string{"a"}, Tiers: map[string]string{"b": "grid"}}, false},
		{"bad tier", gridmap.Layer{ID: "x", Levels: []string{"a"}, Tiers: map[string]string{"a": "nation"}}, false},
		{"negative tolerance", gridmap.Layer{ID: "x", Levels: []string{"a"}, ToleranceM: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.layer
			err := l.Normalize()
			if tc.ok != (err == nil) {
				t.Fatalf("Normalize() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && gridmap.ErrorCode(err) != gridmap.EINVALID {
				t.Errorf("error code %q, want %q", gridmap.ErrorCode(err), gridmap.EINVALID)
			}
			if tc.ok && (l.Name != l.ID || l.Kind != gridmap.KindComprehensive || l.ToleranceM != gridmap.DefaultToleranceM || len(l.Tiers) != len(l.Levels)) {
				t.Errorf("defaults not filled: %+v", l)
			}
		})
	}
}

func TestCheckFeature(t *testing.T) {
	l := gridmap.Layer{ID: "demo", Levels: []string{"district", "street", "grid"}, CodePattern: `\d{6}(\d{3}){0,2}`}
	if err := l.Normalize(); err != nil {
		t.Fatal(err)
	}
	re, err := gridmap.CompileCodePattern(l.CodePattern)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    gridmap.Feature
		kind string // "" = passes
	}{
		{"district without parent passes", gridmap.Feature{Code: "330106", Level: "district"}, ""},
		{"street with parent passes", gridmap.Feature{Code: "330106001", Level: "street", Parent: "330106"}, ""},
		{"missing code", gridmap.Feature{Level: "street", Parent: "330106"}, gridmap.ProblemMissingField},
		{"code off pattern", gridmap.Feature{Code: "33010600", Level: "street", Parent: "330106"}, gridmap.ProblemBadCode},
		{"pattern is anchored", gridmap.Feature{Code: "330106001x", Level: "street", Parent: "330106"}, gridmap.ProblemBadCode},
		{"unknown level", gridmap.Feature{Code: "330106001", Level: "village", Parent: "330106"}, gridmap.ProblemUnknownLevel},
		{"missing level", gridmap.Feature{Code: "330106001", Parent: "330106"}, gridmap.ProblemMissingField},
		{"street without parent", gridmap.Feature{Code: "330106001", Level: "street"}, gridmap.ProblemUnknownParent},
		{"district with parent", gridmap.Feature{Code: "330106", Level: "district", Parent: "330100"}, gridmap.ProblemUnknownParent},
		{"undecodable feature", gridmap.Feature{Code: "330106", DecodeError: "bad geometry type"}, gridmap.ProblemInvalidFeature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := l.CheckFeature(&tc.f, re)
			switch {
			case tc.kind == "" && p != nil:
				t.Fatalf("rejected: %+v", p)
			case tc.kind != "" && p == nil:
				t.Fatalf("passed; want %s", tc.kind)
			case p != nil && (p.Kind != tc.kind || p.Message == "" || p.Index == nil):
				t.Errorf("problem %+v, want kind %s with a message and an index", p, tc.kind)
			}
		})
	}
}
