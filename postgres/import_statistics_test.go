package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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

// TestImportRefreshesStatisticsOfANewLayer: a layer new to a table that
// already holds a bigger one is described by the statistics as a handful
// of rows, so its import refreshes them although it adds less than the
// table holds; and a layer the statistics know, grown by at least its own
// size, is refreshed too (the estimate is taken before the import writes:
// after, it counts the rows written).
func TestImportRefreshesStatisticsOfANewLayer(t *testing.T) {
	db := pgtest.NewDB(t)
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	ctx := context.Background()
	grids := func(prefix string, n int, y float64) string {
		fs := []string{feature(prefix+"D", "district", "", rect(82, y, 82+float64(n)*0.01, y+0.01))}
		for i := range n {
			x := 82 + float64(i)*0.01
			fs = append(fs, feature(fmt.Sprintf("%s%03d", prefix, i), "grid", prefix+"D", rect(x, y, x+0.01, y+0.01)))
		}
		return collection(fs...)
	}
	analyzed := func() (at time.Time) {
		t.Helper()
		if err := db.Pool.QueryRow(ctx, `SELECT coalesce(last_analyze, 'epoch') FROM pg_stat_user_tables
			WHERE relname = 'grid_versions'`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	for _, l := range []struct {
		id, prefix     string
		grids, written int
		y              float64
	}{
		{"big", "B", 400, 401, -36},
		{"small", "S", 150, 151, -35},
		// The district grows and 180 grids join the 150 unchanged: 181
		// rows written against the 151 the statistics saw (about 200
		// once they count the rows written).
		{"small", "S", 330, 181, -35},
	} {
		if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: l.id, Levels: []string{"district", "grid"}}); err != nil {
			t.Fatal(err)
		}
		before := analyzed()
		res, err := importString(s, l.id, grids(l.prefix, l.grids, l.y), gridmap.ImportOptions{})
		if err != nil || res.Created+res.Replaced != l.written {
			t.Fatalf("import of %d grids into layer %s: %v %+v", l.grids, l.id, err, res)
		}
		// Statistics reach the view within a second or so of the commit.
		deadline := time.Now().Add(5 * time.Second)
		for !analyzed().After(before) {
			if time.Now().After(deadline) {
				t.Fatalf("the import of %d grids into layer %s did not refresh the statistics", l.grids, l.id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
