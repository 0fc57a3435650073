package server

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// TestIndicators drives the console's indicators panel over the demo
// district and its demo reports (the last two weeks, in every workflow
// state): the table holds the figures GET /v1/stats gives and sorts, the
// groups switch, a chart is drawn, the CSV downloads, the hotspot layer
// draws, and the flags, workload and trend show when the server offers
// them (the script says which it skipped).
func TestIndicators(t *testing.T) {
	db := pgtest.NewDB(t)
	d := loadDemoDistrict(t, db)
	ts := newTestServerOn(t, Config{}, db)
	waitForDemoLookup(t, ts)
	n, err := demo.LoadReports(context.Background(), postgres.NewReportStore(db, ts.locator, shanghai), d, demo.DefaultSeed, 160)
	if err != nil {
		t.Fatalf("filing the demo reports: %v", err)
	}
	t.Logf("%d demo reports filed", n)
	// A grid worker files three reports of what they found.
	_, person := demoGridWorker(t, ts, d, 120.08, 30.24)
	worker := &gridmap.Account{Username: "qian.worker." + strconv.FormatInt(time.Now().UnixNano(), 36), DisplayName: "钱网格",
		Role: gridmap.RoleReporter, Person: person}
	addAccount(t, ts, *worker, "staple battery horse")
	as := gridmap.NewContextWithCaller(context.Background(), &gridmap.Caller{Kind: gridmap.CallerAccount, Name: worker.Username,
		Role: worker.Role, Person: person})
	reports := postgres.NewReportStore(db, ts.locator, shanghai)
	for i := range 3 {
		r := &gridmap.Report{ExternalID: worker.Username + "-" + strconv.Itoa(i), Category: "0101",
			Location: geojson.NewGeometry(orb.Point{120.08, 30.24})}
		if _, err := reports.CreateReport(as, r); err != nil || r.FiledBy != worker.Username {
			t.Fatalf("the worker's report %d: %v, filed by %q", i, err, r.FiledBy)
		}
	}
	user := "zhao.indicators." + strconv.FormatInt(time.Now().UnixNano(), 36)
	addAccount(t, ts, gridmap.Account{Username: user, DisplayName: "赵调度", Role: gridmap.RoleDispatcher}, "correct horse battery")
	runBrowser(t, "indicators.test.mjs", ts.url,
		"GRIDMAP_USER="+user, "GRIDMAP_PASSWORD=correct horse battery",
		"GRIDMAP_REPORTER_TOKEN="+ts.token(t, gridmap.RoleReporter, nil),
		"GRIDMAP_LAYER="+demo.LayerID, "GRIDMAP_WORKER="+worker.Username, "GRIDMAP_WORKER_FILED=3")
}
