package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestImportRefreshesStatisticsWithoutWaiting: an import that more than
// doubles the grids refreshes their statistics within its transaction,
// but does not wait on another session holding the statistics' lock (a
// big import elsewhere): it imports all the same. A big import refused
// for a problem leaves nothing.
func TestImportRefreshesStatisticsWithoutWaiting(t *testing.T) {
	db := pgtest.NewDB(t)
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	ctx := context.Background()
	if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: "stats", Levels: []string{"district", "grid"}}); err != nil {
		t.Fatal(err)
	}
	grids := func(overlap bool) string {
		fs := []string{feature("SD", "district", "", rect(82, -36, 83.2, -35.99))}
		for i := range 120 {
			x := 82 + float64(i)*0.01
			w := 0.01
			if overlap && i == 7 {
				w = 0.015 // reaches into the next grid
			}
			fs = append(fs, feature(fmt.Sprintf("S%03d", i), "grid", "SD", rect(x, -36, x+w, -35.99)))
		}
		return collection(fs...)
	}

	t.Run("a refused import leaves nothing", func(t *testing.T) {
		_, err := importString(s, "stats", grids(true), gridmap.ImportOptions{})
		if gridmap.ErrorCode(err) != gridmap.EUNPROCESSABLE {
			t.Fatalf("an import with overlapping grids: %v, want unprocessable", err)
		}
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM grid_versions WHERE layer_id = 'stats'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d grids after a refused import (%v)", n, err)
		}
	})
	t.Run("another session holding the statistics' lock", func(t *testing.T) {
		other, err := db.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Rollback(ctx)
		if _, err := other.Exec(ctx, `ANALYZE grid_versions`); err != nil {
			t.Fatal(err)
		}
		res, err := importString(s, "stats", grids(false), gridmap.ImportOptions{})
		if err != nil || res.Created != 121 {
			t.Fatalf("import while another session holds the lock: %v %+v", err, res)
		}
		var locked bool
		if err := other.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'grid_versions'::regclass
			AND mode = 'ShareUpdateExclusiveLock' AND pid = pg_backend_pid() AND granted)`).Scan(&locked); err != nil || !locked {
			t.Fatalf("the other session did not hold the lock all along (%v)", err)
		}
	})
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM grids WHERE layer_id = 'stats'`).Scan(&n); err != nil || n != 121 {
		t.Fatalf("%d current grids, want 121 (%v)", n, err)
	}
}
