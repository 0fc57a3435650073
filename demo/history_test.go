package demo_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb"
)

// districtCells returns the micro-grid shapes of the default district, as
// LoadHistory places reports in them.
func districtCells(t *testing.T) []orb.MultiPolygon {
	t.Helper()
	var cells []orb.MultiPolygon
	for _, f := range generate(t).Grids[demo.LayerID] {
		if f.Level == "microgrid" {
			cells = append(cells, f.Geometry.(orb.MultiPolygon))
		}
	}
	return cells
}

func TestHistoryReport(t *testing.T) {
	cells := districtCells(t)
	end := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	const n = 5000

	t.Run("a seed and an index give the same report", func(t *testing.T) {
		for i := range 200 {
			a, pa := demo.HistoryReport(cells, demo.DefaultSeed, i, end)
			b, pb := demo.HistoryReport(cells, demo.DefaultSeed, i, end)
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) || len(pa) != len(pb) {
				t.Fatalf("report %d differs between two calls:\n%s\n%s", i, ja, jb)
			}
			if want := demo.HistoryExternalID(demo.DefaultSeed, i); a.ExternalID != want {
				t.Errorf("report %d has external id %q, want %q", i, a.ExternalID, want)
			}
		}
	})

	t.Run("another seed gives other reports and other ids", func(t *testing.T) {
		same := 0
		for i := range 200 {
			a, _ := demo.HistoryReport(cells, demo.DefaultSeed, i, end)
			b, _ := demo.HistoryReport(cells, demo.DefaultSeed+1, i, end)
			if a.ExternalID == b.ExternalID {
				t.Fatalf("seeds %d and %d share external id %s", demo.DefaultSeed, demo.DefaultSeed+1, a.ExternalID)
			}
			if orb.Equal(a.Location.Geometry(), b.Location.Geometry()) {
				same++
			}
		}
		if same > 0 {
			t.Errorf("%d of 200 reports at the same place under two seeds", same)
		}
	})

	t.Run("the mix is a dispatcher's year", func(t *testing.T) {
		categories, sources := map[string]int{}, map[string]int{}
		urgent, moved, moves := 0, 0, 0
		for i := range n {
			r, path := demo.HistoryReport(cells, demo.DefaultSeed, i, end)
			age := end.Sub(r.ReportedAt)
			if age < 0 || age > 366*24*time.Hour {
				t.Fatalf("report %d reported %s before the end of the year", i, age)
			}
			if len(path) > 0 && age < 30*24*time.Hour {
				t.Errorf("report %d, reported %s ago, was moved on; only older ones are", i, age)
			}
			categories[r.Category]++
			sources[r.Source]++
			if r.Urgent {
				urgent++
			}
			if len(path) > 0 {
				moved++
				moves += len(path)
			}
		}
		if len(categories) != 13 {
			t.Errorf("%d categories used, want every one of the 13 subcategories: %v", len(categories), categories)
		}
		if categories["0101"] <= categories["0503"] {
			t.Errorf("as many burst gas mains (%d) as litter (%d)", categories["0503"], categories["0101"])
		}
		if len(sources) != 5 {
			t.Errorf("sources %v, want five", sources)
		}
		if urgent < n/20 || urgent > n/5 {
			t.Errorf("%d of %d urgent, want between a twentieth and a fifth", urgent, n)
		}
		if moved < n*7/100 || moved > n*13/100 {
			t.Errorf("%d of %d moved on, want about a tenth", moved, n)
		}
		if moves > 4*moved {
			t.Errorf("%d moves for %d moved reports, want a few each", moves, moved)
		}
	})
}

// TestLoadHistoryAgain files a small history, then files it again as on
// the next day (every reported_at differs, so CreateReport answers
// ECONFLICT): nothing is filed twice or moved again, and a larger history
// adds only the reports beyond.
func TestLoadHistoryAgain(t *testing.T) {
	db := pgtest.NewDB(t)
	ctx := context.Background()
	d := generate(t)
	if _, err := demo.Load(ctx, postgres.NewLayerStore(db), postgres.NewGridStore(db), d); err != nil {
		t.Fatal(err)
	}
	if err := demo.LoadResponsibility(ctx, postgres.NewCategoryStore(db)); err != nil {
		t.Fatal(err)
	}
	locator := postgres.NewLocator(db)
	if err := locator.Load(ctx); err != nil {
		t.Fatal(err)
	}
	reports := postgres.NewReportStore(db, locator, time.UTC)
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	load := func(n int, end time.Time) demo.HistoryResult {
		t.Helper()
		res, err := demo.LoadHistory(ctx, reports, d, demo.History{Seed: demo.DefaultSeed, N: n, End: end, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := load(300, day)
	if first.Filed != 300 || first.Existing != 0 || first.Moved == 0 || first.Moves < first.Moved {
		t.Fatalf("first load: %+v", first)
	}
	if again := load(300, day.AddDate(0, 0, 1)); again != (demo.HistoryResult{Existing: 300}) {
		t.Errorf("the next day: %+v, want all 300 there already", again)
	}
	if more := load(400, day); more.Filed != 100 || more.Existing != 300 {
		t.Errorf("400 after 300: %+v, want 100 filed", more)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM reports`).Scan(&n); err != nil || n != 400 {
		t.Errorf("%d reports (%v), want 400", n, err)
	}
}
