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
	user := "zhao.indicators." + strconv.FormatInt(time.Now().UnixNano(), 36)
	addAccount(t, ts, gridmap.Account{Username: user, DisplayName: "赵调度", Role: gridmap.RoleDispatcher}, "correct horse battery")
	runBrowser(t, "indicators.test.mjs", ts.url,
		"GRIDMAP_USER="+user, "GRIDMAP_PASSWORD=correct horse battery",
		"GRIDMAP_REPORTER_TOKEN="+ts.token(t, gridmap.RoleReporter, nil),
		"GRIDMAP_LAYER="+demo.LayerID)
}
