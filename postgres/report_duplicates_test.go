package postgres_test

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb"
)

// TestDuplicateLockKeys holds the locking argument of report_duplicates.go
// to examples: two locations near enough to be duplicates share a lock,
// whatever cells they fall in; a location too large for cells takes the
// category's lock alone.
func TestDuplicateLockKeys(t *testing.T) {
	cell := 500 / 110000.0
	edge := math.Floor(121.5/cell)*cell + cell // a cell boundary east of 121.5
	shared := func(a, b []int64) bool {
		for _, k := range a[1:] {
			if slices.Contains(b[1:], k) {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		name string
		a, b orb.Point
	}{
		{"either side of a cell boundary", orb.Point{edge - 1e-6, 31.5}, orb.Point{edge + 1e-6, 31.5}},
		{"500 m apart east to west, at 45 N", orb.Point{121.5, 45}, orb.Point{121.5 + 500/(111320*math.Cos(45*math.Pi/180)), 45}},
		{"500 m apart north to south", orb.Point{121.5, 31.5}, orb.Point{121.5, 31.5 + 500/110574.0}},
		{"diagonal across a corner", orb.Point{edge - 0.001, 31.5 - 0.001}, orb.Point{edge + 0.001, 31.5 + 0.001}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ka, wa := postgres.DuplicateLockKeys("c", tc.a.Bound())
			kb, wb := postgres.DuplicateLockKeys("c", tc.b.Bound())
			if wa || wb || ka[0] != kb[0] || !shared(ka, kb) || len(ka) > 20 {
				t.Errorf("keys %v and %v share no cell", ka, kb)
			}
			if !slices.IsSorted(ka[1:]) {
				t.Errorf("cell keys out of order: %v", ka)
			}
		})
	}
	t.Run("a district-sized polygon locks the whole category", func(t *testing.T) {
		keys, whole := postgres.DuplicateLockKeys("c", orb.Bound{Min: orb.Point{121.4, 31.4}, Max: orb.Point{121.6, 31.6}})
		if !whole || len(keys) != 1 {
			t.Errorf("%d keys, whole %v", len(keys), whole)
		}
	})
}

// TestDuplicateLinkUsesIndexes: finding a new report's match reads
// reports_location, not every report of the category.
func TestDuplicateLinkUsesIndexes(t *testing.T) {
	db := pgtest.NewDB(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO categories (code, name, limit_value, limit_clock) VALUES ('plan', 'plan', 1, 'calendar_days');
		INSERT INTO reports (external_id, content_hash, category, location, crs, reported_at, status, tier, due_at, assignment)
		SELECT 'plan-' || i, '\x00', 'plan', ST_SetSRID(ST_MakePoint(121 + random() * 0.5, 31 + random() * 0.4), 4326), 'wgs84',
		       now() - interval '30 days' * random(), (ARRAY['reported','registered','closed'])[1 + i % 3], 'grid', now(), '{}'
		FROM generate_series(1, 20000) i;
		ANALYZE reports`); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	checkPlans(t, conn, postgres.DuplicateSQL, []planCase{
		{"link a new report", "link", "'plan-77', '{closed,rejected}'", []string{"reports_location", "report_keys_pkey", "reports_pkey"}, []string{"reports"}},
	})
}
