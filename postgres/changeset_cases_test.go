package postgres_test

import (
	"context"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb/geojson"
)

// TestValidationFindsEachCase refuses a changeset for each kind of problem
// the validation finds through the grids around the changed ones: a
// deleted parent's children, a parent missing or not coarser, children
// left outside a shrunk parent, overlapping grids at the top (no parent).
// Nothing refused changes the layer.
func TestValidationFindsEachCase(t *testing.T) {
	db := pgtest.Shared(t)
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	ctx := context.Background()
	const layer = "valcases"
	if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: layer, Levels: []string{"district", "grid"}}); err != nil {
		t.Fatal(err)
	}
	if res, err := importString(s, layer, collection(
		feature("D1", "district", "", rect(80, -35, 80.02, -34.98)),
		feature("D2", "district", "", rect(80.02, -35, 80.04, -34.98)),
		feature("G1", "grid", "D1", rect(80, -35, 80.01, -34.98)),
		feature("G2", "grid", "D1", rect(80.01, -35, 80.02, -34.98)),
	), gridmap.ImportOptions{}); err != nil || len(res.Rejected) > 0 {
		t.Fatalf("import: %v %+v", err, res)
	}
	put := func(code, level, parent, geometry string) gridmap.Operation {
		f := geojson.NewFeature(mustGeometry(t, geometry))
		f.Properties["code"], f.Properties["level"] = code, level
		if parent != "" {
			f.Properties["parent"] = parent
		}
		return gridmap.Operation{Op: gridmap.OpPut, Code: code, Feature: f}
	}
	versions := func() map[string]int {
		out := map[string]int{}
		for _, code := range []string{"D1", "D2", "G1", "G2"} {
			g, err := s.grids.Grid(ctx, layer, code)
			if err != nil {
				t.Fatal(err)
			}
			out[code] = g.Version
		}
		return out
	}
	before := versions()
	for _, c := range []struct {
		name  string
		op    gridmap.Operation
		kind  string
		codes []string
	}{
		{"a deleted parent's children", gridmap.Operation{Op: gridmap.OpDelete, Code: "D1"}, gridmap.ProblemUnknownParent, []string{"G1", "D1"}},
		{"a parent that does not exist", put("G3", "grid", "D9", rect(80.03, -35, 80.04, -34.98)), gridmap.ProblemUnknownParent, []string{"G3", "D9"}},
		{"a parent that is not coarser", put("G3", "grid", "G2", rect(80.03, -35, 80.04, -34.98)), gridmap.ProblemUnknownParent, []string{"G3", "G2"}},
		{"children left outside a shrunk parent", put("D1", "district", "", rect(80, -35, 80.01, -34.98)), gridmap.ProblemOutsideParent, []string{"G2", "D1"}},
		{"grids at the top overlapping", put("D2", "district", "", rect(80.01, -35, 80.04, -34.98)), gridmap.ProblemOverlapsSibling, []string{"D2", "D1"}},
		{"siblings overlapping", put("G1", "grid", "D1", rect(80, -35, 80.015, -34.98)), gridmap.ProblemOverlapsSibling, []string{"G1", "G2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.grids.ApplyChangeset(ctx, layer, &gridmap.Changeset{Reason: "test", Author: "tester", Operations: []gridmap.Operation{c.op}})
			wantProblem(t, err, c.kind, c.codes...)
		})
	}
	after := versions()
	for code, v := range before {
		if after[code] != v {
			t.Errorf("refused changesets changed %s: version %d -> %d", code, v, after[code])
		}
	}
}
