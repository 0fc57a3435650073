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

// TestLeaderCheckInJudgement: a check-in is a visit of the assigned grid
// covering its point, else of the nearest within max(the layer's
// tolerance, the stated accuracy capped at gridmap.CheckInAccuracyCap);
// an accuracy past the cap widens nothing (outside and imprecise unless
// the point is inside); otherwise outside at the distance PostGIS
// measures to the nearest assigned grid. One grid a check-in.
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
	both := &gridmap.Account{Username: "p17pg.both", Role: gridmap.RoleReporter}
	for _, a := range []*gridmap.Account{acct, both} {
		if err := access.AddAccount(ctx, a, "a leader's password"); err != nil {
			t.Fatal(err)
		}
	}
	leaders := postgres.NewLeaderStore(db, time.UTC)
	for _, a := range []*gridmap.LeaderAssignments{
		{Username: acct.Username, Grids: []gridmap.LeaderGrid{{Layer: "p17pg", Code: "G1"}}, VisitsPerMonth: 4},
		{Username: both.Username, Grids: []gridmap.LeaderGrid{{Layer: "p17pg", Code: "G1"}, {Layer: "p17pg", Code: "G2"}}, VisitsPerMonth: 4},
	} {
		if err := leaders.PutLeaderAssignments(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	as := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerAccount, ID: acct.ID, Name: acct.Username, Role: acct.Role})
	asBoth := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerAccount, ID: both.ID, Name: both.Username, Role: both.Role})
	metre := 1 / (111320 * math.Cos(29.995*math.Pi/180)) // degrees of longitude
	south := 1 / 110880.0                                // about a metre of latitude
	for _, tc := range []struct {
		name      string
		ctx       context.Context
		lon, lat  float64
		accuracyM float64
		grid      string // "" outside
		imprecise bool
	}{
		{"inside", as, 75.005, -29.995, 0, "G1", false},
		{"20 m out, within the 30 m tolerance", as, 75.01 + 20*metre, -29.995, 0, "G1", false},
		{"300 m out, in the neighbouring grid", as, 75.01 + 300*metre, -29.995, 0, "", false},
		{"60 m out with 80 m accuracy", as, 75.01 + 60*metre, -29.995, 80, "G1", false},
		{"100 m out with 80 m accuracy: the allowance is the larger, not the sum", as, 75.01 + 100*metre, -29.995, 80, "", false},
		{"100 m out with 60 m accuracy", as, 75.01 + 100*metre, -29.995, 60, "", false},
		{"an office 3 km off stating 5 km", as, 75.01 + 3000*metre, -29.995, 5000, "", true},
		{"150 m out stating 200 m", as, 75.01 + 150*metre, -29.995, 200, "", true},
		{"inside stating 5 km", as, 75.005, -29.995, 5000, "G1", false},
		{"inside G2 by the border visits G2 only", asBoth, 75.01 + 5*metre, -29.995, 30, "G2", false},
		{"south of the border, within both: the nearer", asBoth, 75.01 + 5*metre, -30 - 20*south, 0, "G2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &gridmap.CheckIn{Lon: tc.lon, Lat: tc.lat, CRS: gridmap.CRSWGS84, AccuracyM: tc.accuracyM, At: time.Now()}
			created, err := leaders.CheckIn(tc.ctx, c)
			if err != nil || !created {
				t.Fatal(created, err)
			}
			var want float64
			if err := db.Pool.QueryRow(ctx, `SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography)
				FROM grid_versions WHERE layer_id = 'p17pg' AND code = 'G1' AND valid_to IS NULL`, tc.lon, tc.lat).Scan(&want); err != nil {
				t.Fatal(err)
			}
			var stored struct {
				grid      *string
				imprecise bool
			}
			if err := db.Pool.QueryRow(ctx, `SELECT grid_code, imprecise FROM checkins WHERE id = $1`, c.ID).Scan(&stored.grid, &stored.imprecise); err != nil {
				t.Fatal(err)
			}
			switch {
			case c.Visit != (tc.grid != "") || c.Imprecise != tc.imprecise || stored.imprecise != tc.imprecise:
				t.Errorf("visit %v imprecise %v (stored %v), want grid %q imprecise %v (PostGIS: %.1f m to G1)", c.Visit, c.Imprecise, stored.imprecise, tc.grid, tc.imprecise, want)
			case c.Visit && (c.Grid == nil || *c.Grid != tc.grid || c.DistanceM != nil || stored.grid == nil || *stored.grid != tc.grid):
				t.Errorf("visit %+v, want of %s", c, tc.grid)
			case !c.Visit && tc.ctx == as && (c.Grid != nil || c.DistanceM == nil || math.Abs(*c.DistanceM-want) > 0.05):
				t.Errorf("outside %+v; PostGIS measures %.2f m", c, want)
			}
		})
	}
	t.Run("callers that are not leaders", func(t *testing.T) {
		for _, caller := range []*gridmap.Caller{nil, {Kind: gridmap.CallerToken, Name: "t", Role: gridmap.RoleAdmin},
			{Kind: gridmap.CallerAccount, ID: acct.ID + 1_000_000, Name: "ghost", Role: gridmap.RoleReporter}} {
			c := &gridmap.CheckIn{Lon: 75.005, Lat: -29.995, At: time.Now()}
			if _, err := leaders.CheckIn(gridmap.NewContextWithCaller(ctx, caller), c); gridmap.ErrorCode(err) != gridmap.EFORBIDDEN {
				t.Errorf("caller %+v: %v", caller, err)
			}
		}
	})
	t.Run("a person that is not the caller", func(t *testing.T) {
		linked := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerAccount, ID: acct.ID, Name: acct.Username,
			Role: acct.Role, Person: &gridmap.PersonRef{Layer: "p17pg", Grid: "G1", Name: "王网格员"}})
		for person, want := range map[string]string{acct.Username: "", "王网格员": "", both.Username: gridmap.EFORBIDDEN} {
			c := &gridmap.CheckIn{Lon: 75.005, Lat: -29.995, At: time.Now(), Person: person}
			if _, err := leaders.CheckIn(linked, c); gridmap.ErrorCode(err) != want {
				t.Errorf("person %s: %v, want %q", person, err, want)
			}
		}
	})
}

// TestLeaderVisitsCount: visits are distinct (grid, day in the
// deployment's time zone); a retried check-in with the same client_id
// stores nothing and answers the stored one.
func TestLeaderVisitsCount(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Shared(t)
	s := newLayer(t, "p17pv")
	if _, err := importString(s, "p17pv", collection(
		feature("D", "district", "", rect(74, -30, 74.02, -29.99)),
		feature("S", "street", "D", rect(74, -30, 74.02, -29.99)),
		feature("G1", "grid", "S", rect(74, -30, 74.01, -29.99)),
		feature("G2", "grid", "S", rect(74.01, -30, 74.02, -29.99))), gridmap.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	acct := &gridmap.Account{Username: "p17pv.leader", Role: gridmap.RoleReporter}
	if err := postgres.NewAccessStore(db).AddAccount(ctx, acct, "a leader's password"); err != nil {
		t.Fatal(err)
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	leaders := postgres.NewLeaderStore(db, shanghai)
	if err := leaders.PutLeaderAssignments(ctx, &gridmap.LeaderAssignments{Username: acct.Username,
		Grids: []gridmap.LeaderGrid{{Layer: "p17pv", Code: "G1"}, {Layer: "p17pv", Code: "G2"}}, VisitsPerMonth: 4}); err != nil {
		t.Fatal(err)
	}
	as := gridmap.NewContextWithCaller(ctx, &gridmap.Caller{Kind: gridmap.CallerAccount, ID: acct.ID, Name: acct.Username, Role: acct.Role})
	y, m, d := time.Now().In(shanghai).AddDate(0, 0, -3).Date()
	day := func(dd, hour, minute int) time.Time { return time.Date(y, m, d+dd, hour, minute, 0, 0, shanghai) }
	in := func(lon float64, at time.Time, clientID string) *gridmap.CheckIn {
		return &gridmap.CheckIn{Lon: lon, Lat: -29.995, CRS: gridmap.CRSWGS84, At: at, ClientID: clientID}
	}
	for i, c := range []*gridmap.CheckIn{
		in(74.005, day(0, 9, 0), ""), in(74.005, day(0, 10, 0), ""), in(74.005, day(0, 11, 0), ""), // G1 thrice one day: 1
		in(74.015, day(0, 11, 30), ""),                                // G2 the same day: 1
		in(74.015, day(0, 23, 30), ""), in(74.015, day(1, 0, 30), ""), // G2 on one UTC day, two Shanghai days: 1 more
	} {
		if _, err := leaders.CheckIn(as, c); err != nil {
			t.Fatalf("check-in %d: %v", i, err)
		}
	}
	first := in(74.005, day(1, 8, 0), "phone-1/42")
	if created, err := leaders.CheckIn(as, first); err != nil || !created {
		t.Fatalf("first with client_id: %v %v", created, err)
	}
	retry := in(74.015, day(1, 8, 1), "phone-1/42") // the phone retries; the answer is the stored one
	if created, err := leaders.CheckIn(as, retry); err != nil || created || retry.ID != first.ID || *retry.Grid != "G1" || !retry.At.Equal(first.At) {
		t.Fatalf("retry: created %v, %v; %+v, want %+v", created, err, retry, first)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM checkins WHERE account_id = $1`, acct.ID).Scan(&n); err != nil || n != 7 {
		t.Fatalf("stored %d check-ins (%v), want 7", n, err)
	}
	st, err := leaders.LeaderStats(ctx, "p17pv", day(-1, 0, 0), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Rows) != 1 || st.Rows[0].Visits != 4 || len(st.Rows[0].NotVisited) != 0 {
		t.Errorf("figures %+v; want 4 visits: G1 and G2 on either Shanghai day (3 if counted by UTC days, 7 by check-ins)", st.Rows)
	}
}
