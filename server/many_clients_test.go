package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestManyClientsSmallPool runs an operations centre's morning on a pool
// of two connections: 32 dispatchers each walk a report through every kind
// of workflow move at once, while reports come in, other systems look
// points up and maps load tiles. Everything completes, and no request
// waits on the pool for as long as a second.
func TestManyClientsSmallPool(t *testing.T) {
	db := pgtest.SharedWith(t, postgres.Options{MaxConns: 2})
	ts := newTestServerOn(t, Config{}, db)
	// A district of two streets of two grids each near 118.5 E 29.5 N,
	// where no other test puts anything.
	if r := do(t, "PUT", ts.url+"/v1/layers/mc", `{"levels":["district","street"]}`); r.status/100 != 2 {
		t.Fatalf("layer: %d %s", r.status, r.body)
	}
	rect := func(x0, x1 float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,29.5],[%g,29.5],[%g,29.51],[%g,29.51],[%g,29.5]]]}`, x0, x1, x1, x0, x0)
	}
	body := `{"type":"FeatureCollection","features":[` + feat("MD", "", rect(118.5, 118.52)) + "," +
		feat("MA", "MD", rect(118.5, 118.51)) + "," + feat("MB", "MD", rect(118.51, 118.52)) + "]}"
	if r := do(t, "POST", ts.url+"/v1/layers/mc/import", body); r.status != 200 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	for _, s := range []struct{ path, body string }{
		{"/v1/departments/mc1", `{"name":"城管"}`},
		{"/v1/departments/mc2", `{"name":"市场监管"}`},
		{"/v1/categories/mc", `{"name":"占道经营","departments":["mc1","mc2"],"limit":{"value":2,"clock":"working_days"},
			"step_limits":{"register":{"value":1,"clock":"urgent_hours"}}}`},
	} {
		if r := do(t, "PUT", ts.url+s.path, s.body); r.status/100 != 2 {
			t.Fatalf("%s: %d %s", s.path, r.status, r.body)
		}
	}
	eventually(t, "the layer reaches the lookup index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?layer=mc&lon=118.505&lat=29.505", "").body), `"MA"`)
	})

	client := &http.Client{Timeout: 30 * time.Second}
	call := func(method, path, body string, want ...int) error {
		req, _ := http.NewRequest(method, ts.url+path, strings.NewReader(body))
		res, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, w := range want {
			if res.StatusCode == w {
				return nil
			}
		}
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	report := func(id string, lon float64) (int64, error) {
		res, err := client.Post(ts.url+"/v1/reports", "application/json", bytes.NewReader([]byte(
			fmt.Sprintf(`{"external_id":%q,"category":"mc","location":{"type":"Point","coordinates":[%g,29.505]}}`, id, lon))))
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		var r struct{ ID int64 }
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil || res.StatusCode != 201 {
			return 0, fmt.Errorf("report %s: %d %v", id, res.StatusCode, err)
		}
		return r.ID, nil
	}
	ids := make([]int64, 32)
	for i := range ids {
		var err error
		if ids[i], err = report(fmt.Sprintf("mc-%d", i), 118.501+float64(i)*0.0005); err != nil {
			t.Fatal(err)
		}
	}

	moves := []string{`{"action":"register"}`, `{"action":"escalate","departments":["mc1"]}`, `{"action":"report_in","departments":["mc1"]}`,
		`{"action":"dispatch"}`, `{"action":"extend"}`, `{"action":"suspend"}`, `{"action":"resume"}`, `{"action":"start"}`,
		`{"action":"resolve"}`, `{"action":"verify"}`, `{"action":"close"}`}
	errs := make(chan error, 1000)
	var dispatchers, background sync.WaitGroup
	for _, id := range ids {
		dispatchers.Add(1)
		go func() {
			defer dispatchers.Done()
			for _, m := range moves {
				if err := call("POST", fmt.Sprintf("/v1/reports/%d/events", id), m, 200); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var stop atomic.Bool
	var intake, lookups, tileLoads atomic.Int64
	load := func(n *atomic.Int64, op func(i int) error) {
		background.Add(1)
		go func() {
			defer background.Done()
			for i := 0; !stop.Load(); i++ {
				if err := op(i); err != nil {
					errs <- err
					return
				}
				n.Add(1)
			}
		}()
	}
	for w := range 2 {
		load(&intake, func(i int) error {
			_, err := report(fmt.Sprintf("mc-intake-%d-%d", w, i), 118.515)
			return err
		})
		load(&lookups, func(i int) error {
			return call("GET", fmt.Sprintf("/v1/lookup?lon=%g&lat=29.505", 118.5+float64(i%40)*0.0005), "", 200)
		})
		load(&tileLoads, func(i int) error {
			tileset := []string{"mc", "reports"}[i%2]
			return call("GET", "/tiles/"+tileset+"/"+tileAt(13+i%4, 118.51, 29.505)+".mvt", "", 200, 204)
		})
	}
	dispatchers.Wait()
	stop.Store(true)
	background.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	for _, id := range ids {
		var r struct {
			Status string
			Tasks  []struct{ Department, Status string }
		}
		do(t, "GET", fmt.Sprintf("%s/v1/reports/%d", ts.url, id), "").json(t, &r)
		if r.Status != "closed" || len(r.Tasks) != 1 || r.Tasks[0].Status != "reported_in" {
			t.Errorf("report %d ended %+v", id, r)
		}
	}
	st := db.PoolStats()
	t.Logf("alongside: %d reports filed, %d lookups, %d tiles; pool: %d acquires, longest wait %v",
		intake.Load(), lookups.Load(), tileLoads.Load(), st.Acquires, st.WaitMax)
	// (The longest wait is logged, not held to a bound: on two shared
	// cores it measures the machine as much as the pool. A connection held
	// past its request shows as acquires that fail.)
	if st.MaxConns != 2 || st.Failed != 0 {
		t.Errorf("pool of %d: %d acquires failed, longest wait %v", st.MaxConns, st.Failed, st.WaitMax)
	}
}
