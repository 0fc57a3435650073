package main_test

import (
	"context"
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
			FROM reports r JOIN report_events e ON e.report_id = r.id GROUP BY r.id ORDER BY r.external_id`)
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
