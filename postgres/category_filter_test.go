package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/gridmap/gridmap/tiles"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/geojson"
)

// TestReportFiltersSelectCategorySubtreesExactly files one report in each
// of the categories 1, its child 1.1, its grandchild 1.1.1, 10, 1_0, 2 and
// cy-b (whose parent cy-a has cy-b for parent), near 110.305 E 20.005 N
// where no other test puts anything, and reads them back through the
// report list and the reports tiles.
func TestReportFiltersSelectCategorySubtreesExactly(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Shared(t)
	s := newLayer(t, "catfilter")
	if _, err := importString(s, "catfilter", collection(feature("CF", "district", "", rect(110.3, 20, 110.31, 20.01))), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	cats := postgres.NewCategoryStore(db)
	limit := gridmap.Limit{Value: 1, Clock: gridmap.ClockCalendarDays}
	for _, c := range [][2]string{{"1", ""}, {"1.1", "1"}, {"1.1.1", "1.1"}, {"10", ""}, {"1_0", ""}, {"2", ""}, {"cy-a", ""}, {"cy-b", "cy-a"}, {"cy-a", "cy-b"}} {
		if _, err := cats.PutCategory(ctx, &gridmap.Category{Code: c[0], Name: "category " + c[0], Parent: c[1], Limit: limit}); err != nil {
			t.Fatalf("category %s: %v", c[0], err)
		}
	}
	loc := postgres.NewLocator(db)
	if err := loc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	reports := postgres.NewReportStore(db, loc, time.UTC)
	// One category each, a few metres apart, all in one tile at zoom 16;
	// 1.1.1 is rejected and 2 closed.
	done := map[string]string{"1.1.1": gridmap.StatusRejected, "2": gridmap.StatusClosed}
	codes := []string{"1", "1.1", "1.1.1", "10", "1_0", "2", "cy-b"}
	for i, code := range codes {
		r := &gridmap.Report{ExternalID: "catfilter-" + code, Category: code, Description: "filter test", Source: "test",
			Location: geojson.NewGeometry(orb.Point{110.305 + float64(i)*0.00005, 20.005})}
		if _, err := reports.CreateReport(ctx, r); err != nil {
			t.Fatalf("report in %s: %v", code, err)
		}
		if status, ok := done[code]; ok {
			if _, err := db.Pool.Exec(ctx, `UPDATE reports SET status = $2 WHERE id = $1`, r.ID, status); err != nil {
				t.Fatal(err)
			}
		}
	}
	bbox := orb.Bound{Min: orb.Point{110.3, 20}, Max: orb.Point{110.31, 20.01}}
	x, y, x1, y1 := tiles.Covering(16, [4]float64{110.305, 20.005, 110.305 + float64(len(codes))*0.00005, 20.005}, 0)
	if x != x1 || y != y1 {
		t.Fatalf("the reports span tiles %d-%d/%d-%d at zoom 16; move them", x, x1, y, y1)
	}
	single := gridmap.TileQuery{Tileset: gridmap.ReportsTileset, Z: 16, X: x, Y: y}
	cx, cy, _, _ := tiles.Covering(10, [4]float64{110.305, 20.005, 110.305, 20.005}, 0)
	cluster := gridmap.TileQuery{Tileset: gridmap.ReportsTileset, Z: 10, X: cx, Y: cy}
	ts := postgres.NewTileStore(db)

	tests := []struct {
		name             string
		category, status string
		want             string // categories of the reports selected, sorted
	}{
		{"a category selects itself and every category under it", "1", "", "1,1.1,1.1.1"},
		{"a subcategory selects its own subtree only", "1.1", "", "1.1,1.1.1"},
		{"10 is not under 1", "10", "", "10"},
		{"underscore is no wildcard", "1_0", "", "1_0"},
		{"a leaf selects itself", "2", "", "2"},
		{"a cycle of parents ends", "cy-a", "", "cy-b"},
		{"no category selects everything", "", "", "1,1.1,1.1.1,10,1_0,2,cy-b"},
		{"open leaves out closed and rejected", "1", "open", "1,1.1"},
		{"done is closed and rejected", "", "done", "1.1.1,2"},
		{"one status", "", gridmap.StatusRejected, "1.1.1"},
		{"category and status together", "1.1", "done", "1.1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := strings.Split(tc.want, ",")
			list, _, err := reports.Reports(ctx, gridmap.ReportFilter{Category: tc.category, Status: tc.status, BBox: &bbox, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range list {
				got = append(got, r.Category)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("GET /v1/reports: categories %v, want %v", got, want)
			}

			q := single
			q.Category, q.Status = tc.category, tc.status
			got = nil
			for _, f := range reportFeatures(t, ts, q) {
				got = append(got, fmt.Sprint(f["category"]))
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("single reports tile: categories %v, want %v", got, want)
			}

			q = cluster
			q.Category, q.Status = tc.category, tc.status
			var count, open int64
			for _, f := range reportFeatures(t, ts, q) {
				count += number(f["count"])
				open += number(f["open"])
			}
			wantOpen := int64(0)
			for _, c := range want {
				if _, ok := done[c]; !ok {
					wantOpen++
				}
			}
			if count != int64(len(want)) || open != wantOpen {
				t.Errorf("cluster tile: %d reports, %d open; want %d, %d open", count, open, len(want), wantOpen)
			}
		})
	}

	t.Run("a category that does not exist is refused, pointing to the list", func(t *testing.T) {
		for _, code := range []string{"3", "1%", "1."} {
			_, _, err := reports.Reports(ctx, gridmap.ReportFilter{Category: code, Limit: 10})
			q := single
			q.Category = code
			_, terr := ts.RenderTile(ctx, q)
			for what, err := range map[string]error{"reports": err, "tile": terr} {
				if code == "1%" && what == "tile" {
					continue // the tile query refuses the character first
				}
				msg := gridmap.ErrorMessage(err)
				if gridmap.ErrorCode(err) != gridmap.EINVALID || !strings.Contains(msg, fmt.Sprintf("%q does not exist", code)) ||
					!strings.Contains(msg, "GET /v1/categories") {
					t.Errorf("%s with category %q: %v", what, code, err)
				}
			}
		}
	})
}

// reportFeatures renders a reports tile and returns its features' properties.
func reportFeatures(t *testing.T, ts *postgres.TileStore, q gridmap.TileQuery) []map[string]any {
	t.Helper()
	out, err := ts.RenderTile(context.Background(), q)
	if err != nil {
		t.Fatalf("tile %d/%d/%d ?%s: %v", q.Z, q.X, q.Y, q.Filter(), err)
	}
	layers, err := mvt.Unmarshal(out.MVT)
	if err != nil {
		t.Fatal(err)
	}
	var props []map[string]any
	if l := layerNamed(layers, gridmap.TileLayerReports); l != nil {
		for _, f := range l.Features {
			props = append(props, f.Properties)
		}
	}
	return props
}

// number reads an integer MVT property, whichever integer type it decoded as.
func number(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case uint64:
		return int64(n)
	case float64:
		return int64(n)
	}
	return 0
}
