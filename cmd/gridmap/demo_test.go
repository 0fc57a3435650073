package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"
)

// TestDemoReportsFlag runs `gridmap demo --reports 2000` on a database of
// its own: it files the seed's year of 2,000 reports with their ids, some
// moved on through the workflow; a run again files nothing, a larger
// --reports adds only the reports beyond, and `gridmap demo` without the
// flag leaves reports that exist alone, as it always has.
func TestDemoReportsFlag(t *testing.T) {
	conn := pgtest.ConnString(t)
	env := append(withoutDatabaseURL(), "DATABASE_URL="+conn)
	dataDir := filepath.Join(t.TempDir(), "data")
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"demo", "--data", dataDir}, args...)...)
		cmd.Env = env
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gridmap demo %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	ctx := context.Background()
	db, err := pgx.Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	count := func(t *testing.T, query string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(ctx, query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	out := run(t, "--reports", "2000")
	if !strings.Contains(out, "2000 reports of a year filed (0 there already)") {
		t.Fatalf("first run printed:\n%s", out)
	}
	if n := count(t, `SELECT count(*) FROM reports`); n != 2000 {
		t.Fatalf("%d reports after --reports 2000", n)
	}

	d, err := demo.Generate(demo.DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	var cells []orb.MultiPolygon
	for _, f := range d.Grids[demo.LayerID] {
		if f.Level == "microgrid" {
			cells = append(cells, f.Geometry.(orb.MultiPolygon))
		}
	}
	// The year ends at the start of the day the reports were filed (UTC).
	var filed time.Time
	if err := db.QueryRow(ctx, `SELECT min(received_at) FROM reports`).Scan(&filed); err != nil {
		t.Fatal(err)
	}
	end := filed.Truncate(24 * time.Hour)

	t.Run("the seed decides the ids and the reports", func(t *testing.T) {
		rows, err := db.Query(ctx, `SELECT external_id, category, urgent, source, ST_X(location), ST_Y(location), reported_at FROM reports ORDER BY external_id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		i := 0
		for rows.Next() {
			var id, category, source string
			var urgent bool
			var loc orb.Point
			var at time.Time
			if err := rows.Scan(&id, &category, &urgent, &source, &loc[0], &loc[1], &at); err != nil {
				t.Fatal(err)
			}
			want, _ := demo.HistoryReport(cells, demo.DefaultSeed, i, end)
			if id != want.ExternalID || category != want.Category || urgent != want.Urgent || source != want.Source ||
				!at.Equal(want.ReportedAt) || !orb.Equal(loc, want.Location.Geometry()) {
				t.Fatalf("report %d is %s %s urgent=%v %s at %v on %s, want %s %s urgent=%v %s at %v on %s", i, id, category, urgent, source, loc, at,
					want.ExternalID, want.Category, want.Urgent, want.Source, want.Location.Geometry(), want.ReportedAt)
			}
			i++
		}
		if err := rows.Err(); err != nil || i != 2000 {
			t.Fatalf("read %d reports: %v", i, err)
		}
	})

	t.Run("some are moved on, with their events", func(t *testing.T) {
		rows, err := db.Query(ctx, `SELECT r.external_id, r.status, array_agg(e.action ORDER BY e.id)
			FROM reports r JOIN report_events e ON e.report_id = r.id GROUP BY r.id, r.external_id, r.status ORDER BY r.external_id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		i, moved, closed := 0, 0, 0
		for rows.Next() {
			var id, status string
			var actions []string
			if err := rows.Scan(&id, &status, &actions); err != nil {
				t.Fatal(err)
			}
			_, path := demo.HistoryReport(cells, demo.DefaultSeed, i, end)
			if want := append([]string{"report"}, path...); !slices.Equal(actions, want) {
				t.Errorf("%s has events %v, want %v", id, actions, want)
			}
			if len(path) > 0 {
				moved++
			}
			if status == "closed" {
				closed++
			}
			i++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if moved < 100 || moved > 300 || closed == 0 {
			t.Errorf("%d of 2000 moved on, %d closed; want about a tenth moved, some closed", moved, closed)
		}
	})

	events := count(t, `SELECT count(*) FROM report_events`)
	t.Run("a run again files nothing", func(t *testing.T) {
		out := run(t, "--reports", "2000")
		if !strings.Contains(out, "0 reports of a year filed (2000 there already)") {
			t.Errorf("second run printed:\n%s", out)
		}
		if n := count(t, `SELECT count(*) FROM reports`); n != 2000 {
			t.Errorf("%d reports after the second run", n)
		}
		if n := count(t, `SELECT count(*) FROM report_events`); n != events {
			t.Errorf("%d events after the second run, %d before", n, events)
		}
	})

	t.Run("a larger number adds the reports beyond", func(t *testing.T) {
		out := run(t, "--reports", "2500")
		if !strings.Contains(out, "500 reports of a year filed (2000 there already)") {
			t.Errorf("run with --reports 2500 printed:\n%s", out)
		}
		if n := count(t, `SELECT count(*) FROM reports WHERE external_id LIKE 'demo-`+strconv.FormatUint(demo.DefaultSeed, 10)+`-y%'`); n != 2500 {
			t.Errorf("%d reports after --reports 2500", n)
		}
	})

	t.Run("without the flag, existing reports are left alone", func(t *testing.T) {
		out := run(t)
		if !strings.Contains(out, "0 reports filed") {
			t.Errorf("gridmap demo printed:\n%s", out)
		}
		if n := count(t, `SELECT count(*) FROM reports`); n != 2500 {
			t.Errorf("%d reports after gridmap demo", n)
		}
	})
}

// TestDemoDistricts runs `gridmap demo --districts 2` on a database of its
// own: both districts land in the demo layers as two roots, a lookup in
// each finds that district and its police beat, the reports spread over
// both, and a run again changes nothing.
func TestDemoDistricts(t *testing.T) {
	conn := pgtest.ConnString(t)
	env := append(withoutDatabaseURL(), "DATABASE_URL="+conn)
	dataDir := filepath.Join(t.TempDir(), "data")
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append(args[:1:1], append([]string{"--data", dataDir}, args[1:]...)...)...)
		cmd.Env = env
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gridmap %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	ctx := context.Background()

	out := run(t, "demo", "--districts", "2")
	for _, want := range []string{"layer demo: 6122 grids, 6122 created", "layer demo-police: 60 grids, 60 created", "300 reports filed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("gridmap demo --districts 2 printed no %q:\n%s", want, out)
		}
	}
	db, err := pgx.Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)

	rows, err := db.Query(ctx, `SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p FROM grids
		WHERE layer_id = $1 AND parent_code IS NULL) roots ORDER BY code`, demo.LayerID)
	if err != nil {
		t.Fatal(err)
	}
	type root struct {
		code     string
		lon, lat float64
	}
	roots, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (root, error) {
		var x root
		return x, r.Scan(&x.code, &x.lon, &x.lat)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 2 || roots[0].code != demo.DistrictCode(0) || roots[1].code != demo.DistrictCode(1) {
		t.Fatalf("roots of layer demo: %+v, want %s and %s", roots, demo.DistrictCode(0), demo.DistrictCode(1))
	}

	for k, r := range roots {
		t.Run("a lookup in district "+strconv.Itoa(k+1)+" finds it", func(t *testing.T) {
			var answer struct {
				Layers map[string]struct {
					Chain []struct{ Code, Level string }
				}
			}
			out := run(t, "lookup", strconv.FormatFloat(r.lon, 'f', -1, 64), strconv.FormatFloat(r.lat, 'f', -1, 64))
			if err := json.Unmarshal([]byte(out), &answer); err != nil {
				t.Fatalf("gridmap lookup answered %v:\n%s", err, out)
			}
			chain := answer.Layers[demo.LayerID].Chain
			if len(chain) != 5 || chain[0].Code != r.code || chain[4].Level != "microgrid" || !strings.HasPrefix(chain[4].Code, r.code) {
				t.Errorf("lookup at %v,%v in district %s answered the chain %+v", r.lon, r.lat, r.code, chain)
			}
			police := answer.Layers[demo.PoliceLayerID].Chain
			first := fmt.Sprintf("PS%02d", k*demo.PoliceStations+1)
			if len(police) != 2 || police[0].Code < first || police[0].Code > fmt.Sprintf("PS%02d", (k+1)*demo.PoliceStations) {
				t.Errorf("lookup at %v,%v in district %s answered the police chain %+v, want a station from %s", r.lon, r.lat, r.code, police, first)
			}
		})
	}

	t.Run("reports are filed in both districts", func(t *testing.T) {
		rows, err := db.Query(ctx, `SELECT left(primary_code, 6), count(*) FROM reports WHERE layer_id = $1 GROUP BY 1 ORDER BY 1`, demo.LayerID)
		if err != nil {
			t.Fatal(err)
		}
		per, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
			District string
			N        int
		}])
		if err != nil {
			t.Fatal(err)
		}
		if len(per) != 2 || per[0].N < 100 || per[1].N < 100 {
			t.Errorf("reports per district: %+v, want about 150 in each of two", per)
		}
	})

	t.Run("a run again changes nothing", func(t *testing.T) {
		out := run(t, "demo", "--districts", "2")
		if !strings.Contains(out, "layer demo: 6122 grids, 0 created, 0 replaced, 6122 unchanged") || !strings.Contains(out, "0 reports filed") {
			t.Errorf("second run printed:\n%s", out)
		}
	})
}
