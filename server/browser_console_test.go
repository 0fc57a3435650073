package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestConsole signs a dispatcher in and drives the console over the demo
// district: the map shows the grids, a report posted through the API
// appears in the list without a reload, the dispatcher registers it, a
// click on the map answers who owns the place, and the page speaks English
// when asked.
func TestConsole(t *testing.T) {
	// A database of its own: the demo's departments and categories would
	// otherwise be there before the tests that create theirs.
	db := pgtest.NewDB(t)
	loadDemoDistrict(t, db)
	// The deployment's basemap: a style served from another origin, as a
	// government e-map would be.
	basemap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"version":8,"sources":{},"layers":[{"id":"land","type":"background","paint":{"background-color":"#efe9dc"}}]}`))
	}))
	t.Cleanup(basemap.Close)
	ts := newTestServerOn(t, Config{BasemapStyle: basemap.URL + "/style.json"}, db)
	waitForDemoLookup(t, ts)
	user := "wang.console." + strconv.FormatInt(time.Now().UnixNano(), 36)
	addAccount(t, ts, gridmap.Account{Username: user, DisplayName: "王调度", Role: gridmap.RoleDispatcher}, "correct horse battery")
	// Cuts every connection to the server, the live feed's included, as a
	// proxy's restart would.
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.hs.CloseClientConnections()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(cut.Close)
	runBrowser(t, "console.test.mjs", ts.url,
		"GRIDMAP_USER="+user, "GRIDMAP_PASSWORD=correct horse battery", "GRIDMAP_DISPLAY_NAME=王调度",
		"GRIDMAP_REPORTER_TOKEN="+ts.token(t, gridmap.RoleReporter, nil),
		"GRIDMAP_VIEWER_TOKEN="+ts.token(t, gridmap.RoleViewer, nil),
		"GRIDMAP_CUT_URL="+cut.URL,
		"GRIDMAP_LAYER="+demo.LayerID)
}

// waitForDemoLookup waits until the server's locator knows the demo
// district, so that reports filed now are assigned.
func waitForDemoLookup(t *testing.T, ts *testServer) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, ts.url+"/v1/lookup?layer="+demo.LayerID+"&lon=120.08&lat=30.24", nil)
		req.Header.Set("Authorization", "Bearer "+ts.admin)
		res, err := http.DefaultClient.Do(req)
		ok := false
		if err == nil {
			var body struct {
				Layers map[string]struct {
					Chain []json.RawMessage `json:"chain"`
				} `json:"layers"`
			}
			if res.StatusCode == http.StatusOK && json.NewDecoder(res.Body).Decode(&body) == nil {
				ok = len(body.Layers[demo.LayerID].Chain) > 0
			}
			res.Body.Close()
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo district is not looked up after 60 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// loadDemoDistrict loads the demo district and its responsibility list into
// db, and returns the district as generated.
func loadDemoDistrict(tb testing.TB, db *postgres.DB) *demo.District {
	tb.Helper()
	ctx := context.Background()
	d, err := demo.Generate(demo.DefaultSeed)
	if err != nil {
		tb.Fatal(err)
	}
	if loaded, err := demo.Loaded(ctx, postgres.NewLayerStore(db)); err != nil {
		tb.Fatal(err)
	} else if !loaded {
		if _, err := demo.Load(ctx, postgres.NewLayerStore(db), postgres.NewGridStore(db), d); err != nil {
			tb.Fatal(err)
		}
	}
	if err := demo.LoadResponsibility(ctx, postgres.NewCategoryStore(db)); err != nil {
		tb.Fatal(err)
	}
	return d
}
