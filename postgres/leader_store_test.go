package postgres_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestLeaderCheckInJudgement: a check-in is a visit within the layer's
// tolerance plus its accuracy of an assigned grid's current outline, and
// otherwise outside at the distance PostGIS measures to the nearest
// assigned grid; only visits pick up on-site work.
func TestLeaderCheckInJudgement(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Shared(t)
	s := newLayer(t, "p17pg") // tolerance 30 m by default
	// G1 is the west half of the street, G2 the east half.
	if _, err := importString(s, "p17pg", collection(
		feature("D", "district", "", rect(75, -30, 75.02, -29.99)),
		feature("S", "street", "D", rect(75, -30, 75.02, -29.99)),
		feature("G1", "grid", "S", rect(75, -30, 75.01, -29.99)),
		feature("G2", "grid", "S", rect(75.01, -30, 75.02, -29.99))), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	access := postgres.NewAccessStore(db)
	acct := &gridmap.Account{Username: "p17pg.leader", Role: gridmap.RoleReporter}
	if err := access.AddAccount(ctx, acct, "a leader's password"); err != nil {
		t.Fatal(err)
	}
	leaders := postgres.NewLeaderStore(db, time.UTC)
	if err := leaders.PutLeaderAssignments(ctx, &gridmap.LeaderAssignments{Username: acct.Username,
		Grids: []gridmap.LeaderGrid{{Layer: "p17pg", Code: "G1"}}, VisitsPerMonth: 4}); err != nil {
		t.Fatal(err)
	}
	as := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerAccount, ID: acct.ID, Name: acct.Username, Role: acct.Role})
	metre := 1 / (111320 * math.Cos(29.995*math.Pi/180)) // degrees of longitude
	for _, tc := range []struct {
		name      string
		lon       float64
		accuracyM float64
		visit     bool
	}{
		{"inside", 75.005, 0, true},
		{"20 m out, within the 30 m tolerance", 75.01 + 20*metre, 0, true},
		{"300 m out, in the neighbouring grid", 75.01 + 300*metre, 0, false},
		{"100 m out with 80 m accuracy", 75.01 + 100*metre, 80, true},
		{"100 m out with 60 m accuracy", 75.01 + 100*metre, 60, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &gridmap.CheckIn{Lon: tc.lon, Lat: -29.995, CRS: gridmap.CRSWGS84, AccuracyM: tc.accuracyM, At: time.Now()}
			if err := leaders.CheckIn(as, c); err != nil {
				t.Fatal(err)
			}
			var want float64
			if err := db.Pool.QueryRow(ctx, `SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($1, -29.995), 4326)::geography)
				FROM grid_versions WHERE layer_id = 'p17pg' AND code = 'G1' AND valid_to IS NULL`, tc.lon).Scan(&want); err != nil {
				t.Fatal(err)
			}
			switch {
			case c.Visit != tc.visit:
				t.Errorf("visit %v, want %v (PostGIS: %.1f m)", c.Visit, tc.visit, want)
			case c.Visit && (c.Grid == nil || *c.Grid != "G1" || c.DistanceM != nil):
				t.Errorf("visit %+v", c)
			case !c.Visit && (c.Grid != nil || c.DistanceM == nil || math.Abs(*c.DistanceM-want) > 0.05):
				t.Errorf("outside %+v; PostGIS measures %.2f m", c, want)
			}
		})
	}
	t.Run("callers that are not leaders", func(t *testing.T) {
		for _, caller := range []*gridmap.Caller{nil, {Kind: gridmap.CallerToken, Name: "t", Role: gridmap.RoleAdmin},
			{Kind: gridmap.CallerAccount, ID: acct.ID + 1_000_000, Name: "ghost", Role: gridmap.RoleReporter}} {
			c := &gridmap.CheckIn{Lon: 75.005, Lat: -29.995, At: time.Now()}
			if err := leaders.CheckIn(gridmap.NewContextWithCaller(ctx, caller), c); gridmap.ErrorCode(err) != gridmap.EFORBIDDEN {
				t.Errorf("caller %+v: %v", caller, err)
			}
		}
	})
}
