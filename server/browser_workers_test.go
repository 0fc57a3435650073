package server

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestWorkers drives the console's grid-worker views over the demo
// district against the real routes: a grid worker (a reporter account
// linked to a grid worker of the grid at the test's place) posts its track
// to POST /v1/tracks, its position appears on the map and moves live on
// the `worker` event without a reload, a position the event brings before
// GET /v1/workers has answered is kept over the list's older one, the
// playback of the worker's track moves its marker with the slider and
// play, a day of 50,000 points plays back and a stretch of one point is
// drawn, the patrol coverage colours the grids of the level the server
// answers with (the level its workers are linked at, not the layer's
// finest) and outlines the idle ones and those without a Party
// organisation, and a report's detail lists the nearby worker, who is
// dispatched to.
func TestWorkers(t *testing.T) {
	db := pgtest.NewDB(t)
	d := loadDemoDistrict(t, db)
	ts := newTestServerOn(t, Config{}, db)
	waitForDemoLookup(t, ts)

	// The grid (level "grid") at the place the script works at, and one of
	// its grid workers, whom the worker's account stands for.
	code, person := demoGridWorker(t, ts, d, 120.08, 30.24)

	// Coverage asked for without a level is of the coarsest grid-tier
	// level a worker is linked at (gridmap.PatrolLevel): the worker's
	// account below is the only one linked, at level "grid". The page must
	// colour the level the server answers with, whatever it is named.
	coverageLevel := ""
	for _, l := range d.Layers {
		if l.ID == demo.LayerID {
			coverageLevel = gridmap.PatrolLevel(l, []string{"grid"})
			if finest := l.FinestLevelOfTier(gridmap.TierGrid); finest == "grid" {
				t.Fatalf("the demo layer's finest grid-tier level is %q: the test wants the default to differ from it", finest)
			}
		}
	}
	if coverageLevel != "grid" {
		t.Fatalf("coverage of the demo layer with workers linked at grid is of %q; want grid", coverageLevel)
	}

	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	user := "sun.workers." + suffix
	worker := "liu.worker." + suffix
	addAccount(t, ts, gridmap.Account{Username: user, DisplayName: "孙调度", Role: gridmap.RoleDispatcher}, "correct horse battery")
	// A grid worker files reports and posts the phone's track.
	addAccount(t, ts, gridmap.Account{Username: worker, DisplayName: "刘网格", Role: gridmap.RoleReporter, Person: person}, "staple battery horse")
	waitForWorkersDay(t, time.Now())
	runBrowser(t, "workers.test.mjs", ts.url,
		"GRIDMAP_USER="+user, "GRIDMAP_PASSWORD=correct horse battery",
		"GRIDMAP_WORKER_USER="+worker, "GRIDMAP_WORKER_PASSWORD=staple battery horse", "GRIDMAP_WORKER_NAME=刘网格",
		"GRIDMAP_WORKER_GRID="+code,
		"GRIDMAP_REPORTER_TOKEN="+ts.token(t, gridmap.RoleReporter, nil),
		"GRIDMAP_LAYER="+demo.LayerID, "GRIDMAP_COVERAGE_LEVEL="+coverageLevel)
}

// workersDayRoom is how much of the day workers.test.mjs needs behind it:
// a gap of five minutes and a half, fifteen points five seconds or more
// apart and the script's margins, with room to spare.
const workersDayRoom = 8 * time.Minute

// waitForWorkersDay waits, when it must, until the day in Shanghai (the
// demo deployment's zone) has workersDayRoom behind it and the script's
// run ahead of it: the script posts a morning of track, gap included,
// within today (playback shows one day) and checks what today holds until
// it ends. Near midnight that means waiting up to a quarter of an hour.
func waitForWorkersDay(t *testing.T, now time.Time) {
	t.Helper()
	shanghai := time.FixedZone("Asia/Shanghai", 8*3600)
	now = now.In(shanghai)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, shanghai)
	var until time.Time
	switch {
	case now.Sub(midnight) < workersDayRoom:
		until = midnight.Add(workersDayRoom)
	case midnight.AddDate(0, 0, 1).Sub(now) < browserTimeout:
		until = midnight.AddDate(0, 0, 1).Add(workersDayRoom)
	default:
		return
	}
	wait := until.Sub(now)
	if d, ok := t.Deadline(); ok && time.Now().Add(wait+browserTimeout).After(d) {
		t.Fatalf("it is %s in Shanghai: the script's day needs a wait of %s, past the test's deadline; run it again then", now.Format("15:04"), wait.Round(time.Second))
	}
	t.Logf("it is %s in Shanghai: waiting %s, until the script's day has room for it", now.Format("15:04"), wait.Round(time.Second))
	select {
	case <-time.After(wait):
	case <-t.Context().Done():
	}
}

// demoGridWorker finds the demo grid (level "grid") at lon, lat and one of
// its grid workers.
func demoGridWorker(t *testing.T, ts *testServer, d *demo.District, lon, lat float64) (string, *gridmap.PersonRef) {
	t.Helper()
	var at lookupJSON
	r := do(t, "GET", fmt.Sprintf("%s/v1/lookup?layer=%s&lon=%g&lat=%g", ts.url, demo.LayerID, lon, lat), "", bearer(ts.admin)...)
	if r.status != 200 || json.Unmarshal(r.body, &at) != nil {
		t.Fatalf("lookup: %d %s", r.status, r.body)
	}
	code := ""
	for _, g := range at.Layers[demo.LayerID].Chain {
		if g.Level == "grid" {
			code = g.Code
		}
	}
	for _, f := range d.Grids[demo.LayerID] {
		if f.Code != code {
			continue
		}
		for _, p := range f.People {
			if p.Role == gridmap.RoleGridWorker {
				return code, &gridmap.PersonRef{Layer: demo.LayerID, Grid: code, Name: p.Name}
			}
		}
	}
	t.Fatalf("no grid worker in grid %q at %g,%g", code, lon, lat)
	return "", nil
}
