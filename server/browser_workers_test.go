package server

import (
	"strconv"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestWorkers drives the console's grid-worker views over the demo
// district: a grid worker's position appears on the map and moves live
// without a reload, the playback of the worker's track moves its marker
// with the slider and play, the patrol coverage colours the grids and
// outlines the idle ones and those without a Party organisation, and a
// report's detail lists the nearby worker, who is dispatched to.
//
// Until the server offers /v1/workers, /v1/tracks, /v1/patrol/*, /v1/party
// and the nearby workers, the script fakes the routes that answer "no such
// endpoint" (it says which); once they exist it posts real tracks.
func TestWorkers(t *testing.T) {
	db := pgtest.NewDB(t)
	loadDemoDistrict(t, db)
	ts := newTestServerOn(t, Config{}, db)
	waitForDemoLookup(t, ts)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	user := "sun.workers." + suffix
	worker := "liu.worker." + suffix
	addAccount(t, ts, gridmap.Account{Username: user, DisplayName: "孙调度", Role: gridmap.RoleDispatcher}, "correct horse battery")
	// A grid worker files reports and posts the phone's track.
	addAccount(t, ts, gridmap.Account{Username: worker, DisplayName: "刘网格", Role: gridmap.RoleReporter}, "staple battery horse")
	runBrowser(t, "workers.test.mjs", ts.url,
		"GRIDMAP_USER="+user, "GRIDMAP_PASSWORD=correct horse battery",
		"GRIDMAP_WORKER_USER="+worker, "GRIDMAP_WORKER_PASSWORD=staple battery horse", "GRIDMAP_WORKER_NAME=刘网格",
		"GRIDMAP_REPORTER_TOKEN="+ts.token(t, gridmap.RoleReporter, nil),
		"GRIDMAP_LAYER="+demo.LayerID)
}
