package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// BenchmarkCheckIn measures one check-in of a leader with four grids: the
// measuring query (ST_DWithin and ST_Distance on geography against each
// grid's outline) and the insert.
func BenchmarkCheckIn(b *testing.B) {
	ctx := context.Background()
	db := pgtest.Shared(b)
	if _, err := postgres.NewLayerStore(db).PutLayer(ctx, &gridmap.Layer{ID: "p17bench", Levels: []string{"street", "grid"}}); err != nil {
		b.Fatal(err)
	}
	in := collection(feature("S", "street", "", rect(76, -30, 76.02, -29.98)),
		feature("G1", "grid", "S", rect(76, -30, 76.01, -29.99)), feature("G2", "grid", "S", rect(76.01, -30, 76.02, -29.99)),
		feature("G3", "grid", "S", rect(76, -29.99, 76.01, -29.98)), feature("G4", "grid", "S", rect(76.01, -29.99, 76.02, -29.98)))
	if _, err := postgres.NewGridStore(db).Import(ctx, "p17bench", geo.NewFeatureReader(strings.NewReader(in), geo.DefaultFieldMap), gridmap.ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	acct := &gridmap.Account{Username: "p17bench.leader", Role: gridmap.RoleReporter}
	if err := postgres.NewAccessStore(db).AddAccount(ctx, acct, "a bench password"); err != nil {
		b.Fatal(err)
	}
	leaders := postgres.NewLeaderStore(db, time.UTC)
	var grids []gridmap.LeaderGrid
	for _, c := range []string{"G1", "G2", "G3", "G4"} {
		grids = append(grids, gridmap.LeaderGrid{Layer: "p17bench", Code: c})
	}
	if err := leaders.PutLeaderAssignments(ctx, &gridmap.LeaderAssignments{Username: acct.Username, Grids: grids, VisitsPerMonth: 4}); err != nil {
		b.Fatal(err)
	}
	as := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerAccount, ID: acct.ID, Name: acct.Username, Role: acct.Role})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := &gridmap.CheckIn{Lon: 76.005 + float64(i%3)*0.01, Lat: -29.995, CRS: gridmap.CRSWGS84, At: time.Now()}
		if _, err := leaders.CheckIn(as, c); err != nil {
			b.Fatal(err)
		}
	}
}
