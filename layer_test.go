package gridmap_test

import (
	"maps"
	"slices"
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
		{"the reports' tileset", gridmap.Layer{ID: "reports", Levels: []string{"a"}}, false},
		{"the hotspots' tileset", gridmap.Layer{ID: "hotspots", Levels: []string{"a"}}, false},
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

func TestLayerZooms(t *testing.T) {
	tests := []struct {
		name    string
		levels  []string
		zooms   map[string]gridmap.ZoomRange
		want    map[string]gridmap.ZoomRange
		wantErr string
	}{
		{"named levels start where they read", []string{"district", "street", "community", "grid", "microgrid"}, nil,
			map[string]gridmap.ZoomRange{"district": {0, 22}, "street": {9, 22}, "community": {11, 22}, "grid": {13, 22}, "microgrid": {15, 22}}, ""},
		{"other names by position", []string{"borough", "nta", "tract"}, nil,
			map[string]gridmap.ZoomRange{"borough": {0, 22}, "nta": {9, 22}, "tract": {11, 22}}, ""},
		{"a layer may say", []string{"borough", "tract"}, map[string]gridmap.ZoomRange{"tract": {12, 18}},
			map[string]gridmap.ZoomRange{"borough": {0, 22}, "tract": {12, 18}}, ""},
		{"unknown level", []string{"a"}, map[string]gridmap.ZoomRange{"b": {0, 1}}, nil, `zooms names level "b", which is not one of the layer's levels [a]`},
		{"upside down", []string{"a"}, map[string]gridmap.ZoomRange{"a": {12, 10}}, nil, `zooms for level "a" must be [min, max] with 0 <= min <= max <= 22, got [12, 10]`},
		{"too deep", []string{"a"}, map[string]gridmap.ZoomRange{"a": {0, 30}}, nil, `zooms for level "a" must be [min, max] with 0 <= min <= max <= 22, got [0, 30]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := gridmap.Layer{ID: "z", Levels: tc.levels, Zooms: tc.zooms}
			err := l.Normalize()
			if tc.wantErr != "" {
				if gridmap.ErrorCode(err) != gridmap.EINVALID || gridmap.ErrorMessage(err) != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(l.Zooms, tc.want) {
				t.Errorf("zooms %v, want %v", l.Zooms, tc.want)
			}
		})
	}
	l := gridmap.Layer{ID: "z", Levels: []string{"district", "street", "grid"}}
	l.Normalize()
	if got := l.LevelsAt(10); !slices.Equal(got, []string{"district", "street"}) {
		t.Errorf("levels at 10: %v", got)
	}
}
