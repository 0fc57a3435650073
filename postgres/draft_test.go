package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// draftLayer makes a layer at lon x: district D, streets S1 (west half) and
// S2 (east half), published.
func draftLayer(t *testing.T, s stores, id string, x float64) {
	t.Helper()
	if _, err := importString(s, id, collection(
		feature("D", "district", "", rect(x, 20, x+0.02, 20.01)),
		feature("S1", "street", "D", rect(x, 20, x+0.01, 20.01)),
		feature("S2", "street", "D", rect(x+0.01, 20, x+0.02, 20.01))), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestDraftImportResolvePublish(t *testing.T) {
	ctx := context.Background()
	s := newLayer(t, "draft-flow")
	draftLayer(t, s, "draft-flow", 146)
	overlapping := collection(
		feature("S1", "street", "D", rect(146, 20, 146.012, 20.01)),
		feature("S2", "street", "D", rect(146.01, 20, 146.02, 20.01)))

	t.Run("an overlapping file is refused as a publish but loads as a draft, listing the overlap once", func(t *testing.T) {
		if _, err := importString(s, "draft-flow", overlapping, gridmap.ImportOptions{}); gridmap.ErrorCode(err) != gridmap.EUNPROCESSABLE {
			t.Fatalf("published import: %v", err)
		}
		res, err := importString(s, "draft-flow", overlapping, gridmap.ImportOptions{Draft: true})
		if err != nil || !res.Draft || res.Replaced != 1 || res.Unchanged != 1 {
			t.Fatalf("draft import: %v %+v", err, res)
		}
		if len(res.Problems) != 1 || res.Problems[0].Kind != gridmap.ProblemOverlapsSibling ||
			strings.Join(res.Problems[0].Codes, ",") != "S1,S2" || res.Problems[0].Where == nil || *res.Problems[0].AreaM2 < 1000 {
			t.Fatalf("problems %+v", res.Problems)
		}
		g, err := s.grids.Grid(ctx, "draft-flow", "S1")
		if err != nil || g.Version != 1 || g.Geometry.Bound().Max[0] != 146.01 {
			t.Errorf("published S1 changed: %v %+v", err, g)
		}
		sum, err := s.grids.Draft(ctx, "draft-flow")
		if err != nil || sum.Changed != 1 || sum.Unchanged != 2 || len(sum.Problems) != 1 || sum.Counts["street"] != 2 {
			t.Errorf("summary %v %+v", err, sum)
		}
	})
	t.Run("a dirty draft is refused with its problems and nothing changes", func(t *testing.T) {
		_, err := s.grids.Publish(ctx, "draft-flow", &gridmap.Publish{Reason: "too early"})
		var ge *gridmap.Error
		if !errors.As(err, &ge) || ge.Code != gridmap.EUNPROCESSABLE || len(ge.Details) != 1 {
			t.Fatalf("publish: %v", err)
		}
		if h, _ := s.grids.History(ctx, "draft-flow", "S1"); len(h) != 1 {
			t.Errorf("history after a refused publish: %d versions", len(h))
		}
		if _, err := s.grids.Draft(ctx, "draft-flow"); err != nil {
			t.Errorf("the draft went: %v", err)
		}
	})
	t.Run("resolving gives the overlap to one grid and leaves the draft clean", func(t *testing.T) {
		if _, err := s.grids.ResolveOverlap(ctx, "draft-flow", [2]string{"S1", "S2"}, "S3", "ed"); gridmap.ErrorCode(err) != gridmap.EINVALID {
			t.Errorf("give_to outside the pair: %v", err)
		}
		res, err := s.grids.ResolveOverlap(ctx, "draft-flow", [2]string{"S1", "S2"}, "S1", "ed")
		if err != nil || res.Versions["S2"] != 2 || len(res.Problems) != 0 {
			t.Fatalf("resolve: %v %+v", err, res)
		}
		if _, err := s.grids.ResolveOverlap(ctx, "draft-flow", [2]string{"S1", "S2"}, "S1", "ed"); gridmap.ErrorCode(err) != gridmap.EINVALID {
			t.Errorf("resolving twice: %v", err)
		}
		sum, err := s.grids.Draft(ctx, "draft-flow")
		if err != nil || len(sum.Problems) != 0 || sum.Changed != 2 {
			t.Errorf("summary %v %+v", err, sum)
		}
	})
	t.Run("publishing makes the draft current with history, and removes it", func(t *testing.T) {
		res, err := s.grids.Publish(ctx, "draft-flow", &gridmap.Publish{Reason: "clean", Author: "ed"})
		if err != nil || res.Versions["S1"] != 2 || res.Versions["S2"] != 2 || res.Unchanged != 1 || len(res.Ended) != 0 {
			t.Fatalf("publish: %v %+v", err, res)
		}
		h, err := s.grids.History(ctx, "draft-flow", "S2")
		if err != nil || len(h) != 2 || h[1].Reason != "clean" || h[0].ValidTo == nil {
			t.Fatalf("history %v %+v", err, h)
		}
		if b := h[1].Geometry.Bound(); b.Min[0] < 146.0119 {
			t.Errorf("S2 now starts at %v", b.Min[0])
		}
		if _, err := s.grids.Draft(ctx, "draft-flow"); gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
			t.Errorf("draft after publish: %v", err)
		}
		if _, err := s.grids.Publish(ctx, "draft-flow", &gridmap.Publish{}); gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
			t.Errorf("second publish: %v", err)
		}
	})
	t.Run("allow lets a gap through; a grid left out of the draft ends", func(t *testing.T) {
		if _, err := importString(s, "draft-flow", collection(feature("S3", "street", "D", rect(146.015, 20, 146.02, 20.01))),
			gridmap.ImportOptions{Draft: true}); err != nil {
			t.Fatal(err)
		}
		del := &gridmap.Changeset{Operations: []gridmap.Operation{{Op: gridmap.OpDelete, Code: "S2"}}}
		if res, err := s.grids.ApplyDraftChangeset(ctx, "draft-flow", del); err != nil || !res.Applied {
			t.Fatalf("delete in the draft: %v %+v", err, res)
		}
		if g, err := s.grids.Grid(ctx, "draft-flow", "S2"); err != nil || g.Version != 2 {
			t.Errorf("the published S2 changed with the draft: %v", err)
		}
		_, err := s.grids.Publish(ctx, "draft-flow", &gridmap.Publish{})
		var ge *gridmap.Error
		if !errors.As(err, &ge) || len(ge.Details) != 1 || ge.Details[0].Kind != gridmap.ProblemGap {
			t.Fatalf("publish with a gap: %v", err)
		}
		if _, err := s.grids.Publish(ctx, "draft-flow", &gridmap.Publish{Allow: []string{"nonsense"}}); gridmap.ErrorCode(err) != gridmap.EINVALID {
			t.Errorf("allow nonsense: %v", err)
		}
		res, err := s.grids.Publish(ctx, "draft-flow", &gridmap.Publish{Reason: "gap accepted", Allow: []string{gridmap.ProblemGap}})
		if err != nil || fmt.Sprint(res.Ended) != "[S2]" || res.Versions["S3"] != 1 || len(res.Accepted) != 1 {
			t.Fatalf("publish: %v %+v", err, res)
		}
		if _, err := s.grids.Grid(ctx, "draft-flow", "S2"); gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
			t.Errorf("S2 after publish: %v", err)
		}
	})
}

func TestMakeValidKeepsPolygonsOfACollection(t *testing.T) {
	s := newLayer(t, "make-valid-gc")
	gc := `{"type":"GeometryCollection","geometries":[` + rect(0, 0, 1, 1) + `,{"type":"LineString","coordinates":[[0,0],[2,2]]}]}`
	input := collection(feature("D", "district", "", gc))
	if _, err := importString(s, "make-valid-gc", input, gridmap.ImportOptions{}); gridmap.ErrorCode(err) != gridmap.EUNPROCESSABLE {
		t.Errorf("without make_valid: %v", err)
	}
	res, err := importString(s, "make-valid-gc", input, gridmap.ImportOptions{MakeValid: true})
	if err != nil || res.Created != 1 || len(res.Repaired) != 1 || !strings.Contains(res.Repaired[0].Message, "dropped 1 LineString") {
		t.Fatalf("with make_valid: %v %+v", err, res)
	}
	g, err := s.grids.Grid(context.Background(), "make-valid-gc", "D")
	if err != nil || g.Geometry.Bound().Max[0] != 1 {
		t.Errorf("stored %v %+v", err, g)
	}
}

func TestExportGrids(t *testing.T) {
	ctx := context.Background()
	s := newLayer(t, "export")
	draftLayer(t, s, "export", 101)
	var features []geojson.Feature
	collect := func(b []byte) error {
		var f geojson.Feature
		if err := json.Unmarshal(b, &f); err != nil {
			return err
		}
		features = append(features, f)
		return nil
	}
	if err := s.grids.ExportGrids(ctx, "export", false, collect); err != nil || len(features) != 3 {
		t.Fatalf("export: %v, %d features", err, len(features))
	}
	if p := features[1].Properties; p["code"] != "S1" || p["parent"] != "D" || p["level"] != "street" || p["owner"] != "test" || p["people"] == nil {
		t.Errorf("properties %v", p)
	}
	features = nil
	scoped := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerToken, Name: "s2", Role: gridmap.RoleViewer,
		Scope: &gridmap.Scope{Layer: "export", Code: "S2"}})
	if err := s.grids.ExportGrids(scoped, "export", false, collect); err != nil || len(features) != 1 || features[0].Properties["code"] != "S2" {
		t.Errorf("scoped export: %v %+v", err, features)
	}
	if err := s.grids.ExportGrids(ctx, "export", true, collect); gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
		t.Errorf("export of a missing draft: %v", err)
	}
}

func TestPublishReroutesReports(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Shared(t)
	s := newLayer(t, "draft-rr")
	draftLayer(t, s, "draft-rr", 102)
	cats := postgres.NewCategoryStore(db)
	if _, err := cats.PutDepartment(ctx, &gridmap.Department{Code: "draft-cg", Name: "城管"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cats.PutCategory(ctx, &gridmap.Category{Code: "draft-01", Name: "市容", Departments: []string{"draft-cg"},
		Limit: gridmap.Limit{Value: 4, Clock: gridmap.ClockWorkingHours}}); err != nil {
		t.Fatal(err)
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	tz, _ := time.LoadLocation("Asia/Shanghai")
	reports := postgres.NewReportStore(db, loc, tz)
	r := &gridmap.Report{ExternalID: "draft-rr-1", Category: "draft-01", Description: "垃圾", Source: "test",
		Location: geojson.NewGeometry(orb.Point{102.0105, 20.005})}
	if _, err := reports.CreateReport(ctx, r); err != nil || r.Assignment.Primary.Code != "S2" {
		t.Fatalf("create: %v %+v", err, r.Assignment)
	}
	if _, err := importString(s, "draft-rr", collection(
		feature("S1", "street", "D", rect(102, 20, 102.011, 20.01)),
		feature("S2", "street", "D", rect(102.011, 20, 102.02, 20.01))), gridmap.ImportOptions{Draft: true}); err != nil {
		t.Fatal(err)
	}
	res, err := s.grids.Publish(ctx, "draft-rr", &gridmap.Publish{Reason: "move the edge"})
	if err != nil || res.Rerouted != 1 {
		t.Fatalf("publish: %v %+v", err, res)
	}
	got, err := reports.Report(ctx, r.ID)
	if err != nil || got.Assignment.Primary.Code != "S1" || got.Assignment.BoundaryVersion != res.DataVersion {
		t.Errorf("after publish: %v %+v", err, got.Assignment)
	}
}

// TestDraftEditorsAtOnce races publishers and a draft editor over a pool
// of two connections: exactly one publish wins, and an edit either made it
// into the published layer or was refused for want of a draft.
func TestDraftEditorsAtOnce(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDBWith(t, postgres.Options{MaxConns: 2})
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: "draft-race", Levels: []string{"district", "street", "grid"}}); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		x := 103 + float64(round)*0.1
		code := fmt.Sprintf("R%d", round)
		if _, err := importString(s, "draft-race", collection(feature(code, "district", "", rect(x, 20, x+0.01, 20.01))),
			gridmap.ImportOptions{Draft: true}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.grids.Publish(ctx, "draft-race", &gridmap.Publish{Reason: "race"})
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, _ := geojson.UnmarshalFeature([]byte(feature(code, "district", "", rect(x, 20, x+0.02, 20.01))))
			_, errs[2] = s.grids.ApplyDraftChangeset(ctx, "draft-race", &gridmap.Changeset{Operations: []gridmap.Operation{{Op: gridmap.OpPut, Feature: f}}})
		}()
		wg.Wait()
		won := 0
		for _, err := range errs[:2] {
			switch gridmap.ErrorCode(err) {
			case "":
				won++
			case gridmap.ENOTFOUND:
			default:
				t.Fatalf("round %d: publish: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d publishes won", round, won)
		}
		g, err := s.grids.Grid(ctx, "draft-race", code)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		wide := g.Geometry.Bound().Max[0] > x+0.015
		switch {
		case errs[2] == nil && (!wide || g.Version != 1):
			t.Errorf("round %d: the edit succeeded before the publish but is not published: %+v", round, g)
		case errs[2] != nil && gridmap.ErrorCode(errs[2]) != gridmap.ENOTFOUND:
			t.Errorf("round %d: edit: %v", round, errs[2])
		case errs[2] != nil && wide:
			t.Errorf("round %d: a refused edit was published", round)
		}
		if _, err := s.grids.Draft(ctx, "draft-race"); gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
			t.Errorf("round %d: a draft is left: %v", round, err)
		}
	}
}
