package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres"
	"github.com/jackc/pgx/v5"
)

// TestDatabaseOutage stops PostgreSQL under load for 10 s, the managed
// cluster and one given by DATABASE_URL: meanwhile lookups and tiles
// already drawn are served from memory, requests that need the database
// answer 503 with Retry-After (never 500, never a hang past the deadline),
// and /readyz says so; once PostgreSQL is back the same server takes
// reports again without a restart, every report acknowledged before is
// there, the webhook job delivers each event once, the overdue job
// escalates a report whose deadline passed during the outage once, and a
// layer's import refused during the outage, sent again, has its tile
// shapes.
func TestDatabaseOutage(t *testing.T) {
	t.Run("the managed cluster", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "data")
		s := startServe(t, dataDir, "--demo", "--overdue-every", "1s")
		defer s.stop(t, syscall.SIGTERM)
		c, err := postgres.NewCluster(dataDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Stopped as an operator or a failover would (a fast shutdown),
		// and started again beside the server, which stays up.
		outage(t, s, dataDir, c.ConnString(postgres.DatabaseName), func() {
			pidFile, err := os.ReadFile(filepath.Join(dataDir, "pg", "postmaster.pid"))
			if err != nil {
				t.Fatal(err)
			}
			postmaster, _ := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
			if err := syscall.Kill(postmaster, syscall.SIGINT); err != nil {
				t.Fatalf("stopping PostgreSQL (pid %d): %v", postmaster, err)
			}
		}, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := c.Start(ctx); err != nil {
				t.Fatalf("starting PostgreSQL again: %v", err)
			}
			t.Cleanup(func() { c.Release(false) })
		})
	})
	t.Run("DATABASE_URL", func(t *testing.T) {
		pgDir := filepath.Join(t.TempDir(), "pg")
		c, err := postgres.NewCluster(pgDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Release(true) })
		env := append(withoutDatabaseURL(), "DATABASE_URL="+c.ConnString(postgres.DatabaseName))
		s := startServeEnv(t, env, filepath.Join(t.TempDir(), "data"), "--demo", "--overdue-every", "1s")
		defer s.stop(t, syscall.SIGTERM)
		outage(t, s, pgDir, c.ConnString(postgres.DatabaseName), func() {
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
		}, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := c.Start(ctx); err != nil {
				t.Fatalf("starting PostgreSQL again: %v", err)
			}
		})
	})
}

// outage runs the load on s across stop and, 10 s later, start of the
// PostgreSQL under pgDir (a cluster directory: its pg/ subdirectory is
// the data), whose gridmap database is at conn.
func outage(t *testing.T, s *server, pgDir, conn string, stop, start func()) {
	// A department whose webhook counts deliveries by their key, and
	// notes when each key first arrived.
	var deliveries sync.Map   // Idempotency-Key -> *atomic.Int64
	var firstArrived sync.Map // Idempotency-Key -> time.Time
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		firstArrived.LoadOrStore(r.Header.Get("Idempotency-Key"), time.Now())
		n, _ := deliveries.LoadOrStore(r.Header.Get("Idempotency-Key"), new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}))
	defer receiver.Close()
	send := func(method, path, body string) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := (&http.Client{Timeout: 40 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header
	}
	if status, _ := send("PUT", "/v1/departments/outage", `{"name":"outage test","webhook_url":"`+receiver.URL+`"}`); status/100 != 2 {
		t.Fatalf("department: %d", status)
	}
	if status, _ := send("PUT", "/v1/categories/outage", `{"name":"outage","departments":["outage"],"limit":{"value":2,"clock":"urgent_hours"}}`); status/100 != 2 {
		t.Fatalf("category: %d", status)
	}
	report := func(i int) (int, http.Header) {
		return send("POST", "/v1/reports", fmt.Sprintf(`{"external_id":"outage-%d","category":"outage","location":{"type":"Point","coordinates":[%.4f,30.24]}}`,
			i, 120.05+float64(i%50)*0.001))
	}
	lookup := "/v1/lookup?layer=demo&lon=120.08&lat=30.24"
	n := 1 << 14
	x := int(math.Floor((120.08 + 180) / 360 * float64(n)))
	lat := 30.24 * math.Pi / 180
	y := int(math.Floor((1 - math.Log(math.Tan(lat)+1/math.Cos(lat))/math.Pi) / 2 * float64(n)))
	tile := fmt.Sprintf("/tiles/demo/14/%d/%d.mvt", x, y)
	for _, path := range []string{lookup, tile} {
		if status, _ := send("GET", path, ""); status != 200 {
			t.Fatalf("GET %s before the outage: %d", path, status)
		}
	}
	var acked []int
	for i := range 5 {
		if status, _ := report(i); status != 201 {
			t.Fatalf("report %d before the outage: %d", i, status)
		}
		acked = append(acked, i)
	}
	// A layer of one grid, imported whole with its tile shapes; the second
	// grid's import comes during the outage, and again after it.
	shapesImport := func(codes ...string) string {
		var features []string
		for i, code := range codes {
			features = append(features, fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":"grid %s","level":"grid"},"geometry":%s}`,
				code, code, box(121+0.01*float64(i), 31, 121.01+0.01*float64(i), 31.01)))
		}
		return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`
	}
	if status, _ := send("PUT", "/v1/layers/outage-shapes", `{"name":"outage shapes","levels":["grid"]}`); status/100 != 2 {
		t.Fatalf("layer: %d", status)
	}
	if status, _ := send("POST", "/v1/layers/outage-shapes/import", shapesImport("A")); status != 200 {
		t.Fatalf("import before the outage: %d", status)
	}
	// A report whose deadline passes in the middle of the outage: reported
	// 2 h (its category's limit) less 5 s ago.
	if status, _ := send("PUT", "/v1/categories/outage-due", `{"name":"outage due","departments":["outage"],"limit":{"value":2,"clock":"urgent_hours"}}`); status/100 != 2 {
		t.Fatalf("category: %d", status)
	}
	deadline := time.Now().Add(5 * time.Second)
	var due struct {
		ID int64 `json:"id"`
	}
	if status := postJSON(t, s.url+"/v1/reports", fmt.Sprintf(`{"external_id":"outage-due","category":"outage-due","reported_at":%q,"location":{"type":"Point","coordinates":[120.08,30.24]}}`,
		deadline.Add(-2*time.Hour).Format(time.RFC3339Nano)), &due); status != 201 {
		t.Fatalf("the report due during the outage: %d", status)
	}

	stopping := time.Now()
	stop()
	for deadline := time.Now().Add(30 * time.Second); len(postgresOf(pgDir)) > 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("PostgreSQL did not stop")
		}
	}
	down := time.Now()
	if down.After(deadline) {
		t.Errorf("PostgreSQL stopped %v after the report's deadline, which was to pass during the outage", down.Sub(deadline))
	}
	statuses := map[string]map[int]int{}
	count := func(what string, status int) {
		if statuses[what] == nil {
			statuses[what] = map[int]int{}
		}
		statuses[what][status]++
	}
	for i := 100; time.Since(down) < 10*time.Second; i++ {
		status, _ := send("GET", lookup, "")
		count("lookup", status)
		status, _ = send("GET", tile, "")
		count("cached tile", status)
		status, h := report(i)
		count("report", status)
		if status == 503 && h.Get("Retry-After") == "" {
			t.Errorf("a 503 for a report without Retry-After")
		}
		if status == 201 || status == 200 {
			acked = append(acked, i)
		}
		status, _ = send("GET", "/v1/reports?limit=5", "")
		count("report list", status)
		status, _ = send("GET", "/readyz", "")
		count("readyz", status)
		if statuses["import"] == nil {
			status, _ = send("POST", "/v1/layers/outage-shapes/import", shapesImport("A", "B"))
			count("import", status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("answers while PostgreSQL was down: %v", statuses)
	for what, want := range map[string]int{"lookup": 200, "cached tile": 200, "report": 503, "report list": 503, "readyz": 503, "import": 503} {
		for status, k := range statuses[what] {
			if status != want {
				t.Errorf("%s answered %d %d times while PostgreSQL was down; want %d", what, status, k, want)
			}
		}
	}

	start()
	for i := 1000; ; i++ {
		status, _ := report(i)
		if status == 201 {
			acked = append(acked, i)
			break
		}
		if status != 503 {
			t.Fatalf("a report after PostgreSQL came back: %d", status)
		}
		if time.Since(down) > 2*time.Minute {
			t.Fatal("the server still refuses reports a minute after PostgreSQL came back")
		}
		time.Sleep(500 * time.Millisecond)
	}
	select {
	case err := <-s.done:
		t.Fatalf("the server exited: %v\n%s", err, s.stderr)
	default:
	}
	var stored struct {
		Reports []struct {
			ExternalID string `json:"external_id"`
		}
	}
	if status := getJSON(t, s.url+"/v1/reports?category=outage&limit=1000", &stored); status != 200 {
		t.Fatalf("listing reports after the outage: %d", status)
	}
	have := map[string]bool{}
	for _, r := range stored.Reports {
		have[r.ExternalID] = true
	}
	for _, i := range acked {
		if !have[fmt.Sprintf("outage-%d", i)] {
			t.Errorf("report outage-%d was acknowledged and is not there after the outage", i)
		}
	}
	// Every event of the acknowledged reports reaches the webhook once.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(250 * time.Millisecond) {
		keys := 0
		deliveries.Range(func(_, _ any) bool { keys++; return true })
		if keys >= len(acked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries for %d acknowledged reports a minute after the outage", keys, len(acked))
		}
	}
	time.Sleep(2 * time.Second) // a repeat would come within the retry's backoff
	// Deliveries are at least once: one posted as PostgreSQL stopped may
	// not have been marked delivered, and comes again (with its key); any
	// other arrives once.
	deliveries.Range(func(key, n any) bool {
		first, _ := firstArrived.Load(key)
		inFlight := !first.(time.Time).Before(stopping.Add(-time.Second)) && !first.(time.Time).After(down)
		if k := n.(*atomic.Int64).Load(); k != 1 && !(k == 2 && inFlight) {
			t.Errorf("delivery %v arrived %d times, first %v after PostgreSQL was told to stop", key, k, first.(time.Time).Sub(stopping))
		}
		return true
	})

	escalatedOnce(t, s, due.ID, down)
	status, _ := send("POST", "/v1/layers/outage-shapes/import", shapesImport("A", "B"))
	shapesFilled(t, conn, status)
}

// escalatedOnce waits for the overdue job to escalate report id, whose
// deadline passed while PostgreSQL was down since down, and checks it does
// so once: one escalation by "overdue", after the outage, and no second
// one over the next few rounds of the job (every second).
func escalatedOnce(t *testing.T, s *server, id int64, down time.Time) {
	t.Helper()
	escalations := func() []time.Time {
		var page struct {
			Events []struct {
				Action string    `json:"action"`
				Actor  string    `json:"actor"`
				At     time.Time `json:"at"`
			} `json:"events"`
		}
		if status := getJSON(t, fmt.Sprintf("%s/v1/reports/%d/events", s.url, id), &page); status != 200 {
			t.Fatalf("events of the report due during the outage: %d", status)
		}
		var at []time.Time
		for _, e := range page.Events {
			if e.Action == "escalate" && e.Actor == "overdue" {
				at = append(at, e.At)
			}
		}
		return at
	}
	for deadline := time.Now().Add(time.Minute); len(escalations()) == 0; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the report due during the outage is not escalated a minute after it\n%s", s.stderr)
		}
	}
	time.Sleep(3 * time.Second)
	at := escalations()
	if len(at) != 1 {
		t.Errorf("the report due during the outage was escalated %d times (%v), want once", len(at), at)
	}
	if at[0].Before(down) {
		t.Errorf("the report was escalated at %v, before PostgreSQL stopped at %v: the outage did not hold its deadline", at[0], down)
	}
}

// shapesFilled checks the import of grids A and B of layer outage-shapes,
// refused during the outage and sent again after it (answering status),
// is there with the tile shapes of both grids, and that no current grid of
// any layer lacks its tile shapes (which GridStore.FillTileShapes fills at
// start only).
func shapesFilled(t *testing.T, conn string, status int) {
	t.Helper()
	if status != 200 {
		t.Fatalf("the import sent again after the outage: %d", status)
	}
	ctx := context.Background()
	db, err := pgx.Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var labelled, shaped int
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM grid_labels WHERE layer_id = 'outage-shapes' AND code IN ('A', 'B')),
		(SELECT count(DISTINCT code) FROM grid_shapes WHERE layer_id = 'outage-shapes' AND code IN ('A', 'B'))`).Scan(&labelled, &shaped); err != nil {
		t.Fatal(err)
	}
	if labelled != 2 || shaped != 2 {
		t.Errorf("after the outage the import's grids A and B have %d labels and shapes of %d grids, want 2 and 2", labelled, shaped)
	}
	var missing []string
	rows, err := db.Query(ctx, `SELECT g.layer_id || '/' || g.code FROM grid_versions g
		WHERE g.valid_to IS NULL AND NOT EXISTS (SELECT 1 FROM grid_labels l WHERE l.layer_id = g.layer_id AND l.code = g.code)`)
	if err == nil {
		missing, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("current grids without tile shapes after the outage: %v", missing)
	}
}

// postJSON posts body to url and decodes the answer into v.
func postJSON(t *testing.T, url, body string, v any) int {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("POST %s: %v: %s", url, err, b)
	}
	return res.StatusCode
}
