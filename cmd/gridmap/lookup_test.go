package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestLookupCommandArguments runs gridmap lookup with flags and coordinates
// in the orders people type them: a flag's value is never a coordinate,
// even when it is a number (--layer 12), and a negative longitude is never
// a flag.
func TestLookupCommandArguments(t *testing.T) {
	env := append(withoutDatabaseURL(), "DATABASE_URL="+pgtest.ConnString(t))
	run := func(t *testing.T, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		return runEnv(t, env, args...)
	}
	// Layer "12" near Hangzhou, layer "west" over Manhattan.
	for layer, square := range map[string]string{
		"12":   `[[[120,30],[120.2,30],[120.2,30.4],[120,30.4],[120,30]]]`,
		"west": `[[[-74,40.6],[-73.8,40.6],[-73.8,40.8],[-74,40.8],[-74,40.6]]]`,
	} {
		file := filepath.Join(t.TempDir(), layer+".geojson")
		fc := `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"in-` + layer + `","name":"grid ` + layer + `"},
			"geometry":{"type":"Polygon","coordinates":` + square + `}}]}`
		if err := os.WriteFile(file, []byte(fc), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, errOut, code := run(t, "import", file, "--layer", layer, "--levels", "area", "--level", "area"); code != 0 {
			t.Fatalf("import %s: exit %d\n%s%s", layer, code, out, errOut)
		}
	}

	tests := []struct {
		name  string
		args  []string
		layer string // the only layer answered, with its one grid
	}{
		{"a numeric layer before the coordinates", []string{"--layer", "12", "120.1", "30.2"}, "12"},
		{"a numeric layer between the coordinates", []string{"120.1", "--layer", "12", "30.2"}, "12"},
		{"a numeric layer after the coordinates", []string{"120.1", "30.2", "--layer", "12"}, "12"},
		{"a numeric layer written with =", []string{"--layer=12", "120.1", "30.2"}, "12"},
		{"a negative tolerance before the coordinates", []string{"--tolerance-m", "-1", "--layer", "12", "120.1", "30.2"}, "12"},
		{"a negative longitude first", []string{"-73.9", "40.7", "--layer", "west"}, "west"},
		{"a negative longitude after a flag", []string{"--layer", "west", "-73.9", "40.7"}, "west"},
		{"a negative longitude and a numeric accuracy", []string{"--accuracy-m", "5", "-73.9", "40.7", "--layer", "west"}, "west"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, append([]string{"lookup"}, tc.args...)...)
			var answer struct {
				Layers map[string]struct{ Chain []struct{ Code string } }
			}
			if code != 0 || json.Unmarshal([]byte(out), &answer) != nil {
				t.Fatalf("gridmap lookup %s: exit %d\n%s%s", strings.Join(tc.args, " "), code, out, errOut)
			}
			chain := answer.Layers[tc.layer].Chain
			if len(answer.Layers) != 1 || len(chain) != 1 || chain[0].Code != "in-"+tc.layer {
				t.Errorf("gridmap lookup %s answered %s", strings.Join(tc.args, " "), out)
			}
		})
	}

	t.Run("a layer flag does not make up for a missing coordinate", func(t *testing.T) {
		_, errOut, code := run(t, "lookup", "--layer", "12", "120.1")
		if code != 1 || !strings.Contains(errOut, "lookup needs LON LAT") {
			t.Errorf("exit %d\n%s", code, errOut)
		}
	})
}
