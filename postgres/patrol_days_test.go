package postgres_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestPatrolDaysKeptThroughLateBatches: a day over is measured once and
// kept; points of that day sent later, by many phones at once while
// dispatchers read the day's coverage, the idle grids and the assessment
// on a small pool, leave changes that the patrol job measures, so that in
// the end the kept figures equal a measurement made from scratch and no
// change is left over. Today is never kept.
func TestPatrolDaysKeptThroughLateBatches(t *testing.T) {
	w := newTrackWorld(t, "trkdays")
	ctx := context.Background()
	db := pgtest.SharedWith(t, postgres.Options{MaxConns: 4})
	patrols := postgres.NewPatrolStore(db, time.UTC, 0)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	day := today.AddDate(0, 0, -3)
	dayText := day.Format(time.DateOnly)
	from, to := day, day.AddDate(0, 0, 1)
	rng := rand.New(rand.NewPCG(21, 22))
	c := trackGrids["TG11"]
	first := walk(rng, day.Add(2*time.Hour), 200, 10*time.Second, c[0], c[1], c[0]+0.004, c[1]+0.01)
	if _, err := patrols.AddTrack(as(w.workers["TG11"]), &gridmap.TrackBatch{Device: "d", Points: first}); err != nil {
		t.Fatal(err)
	}
	kept, err := patrols.Coverage(ctx, w.layer, "", dayText)
	if err != nil {
		t.Fatal(err)
	}
	runs := func() (n int, measured time.Time) {
		t.Helper()
		if err := db.Pool.QueryRow(ctx, `SELECT count(*), coalesce(max(measured_at), 'epoch') FROM patrol_day_runs
			WHERE layer_id = $1 AND day = $2`, w.layer, day).Scan(&n, &measured); err != nil {
			t.Fatal(err)
		}
		return n, measured
	}
	if n, _ := runs(); n != 1 {
		t.Fatalf("%d runs of %s kept after asking its coverage; want 1", n, dayText)
	}
	coverageOf := func(cov *gridmap.PatrolCoverage, code string) gridmap.CoverageRow {
		for _, r := range cov.Rows {
			if r.Code == code {
				return r
			}
		}
		t.Fatalf("no row for %s in %+v", code, cov)
		return gridmap.CoverageRow{}
	}
	before := coverageOf(kept, "TG11")
	if before.Points != len(first) || before.Coverage <= 0 {
		t.Fatalf("TG11 on %s: %+v; want %d points and some coverage", dayText, before, len(first))
	}
	_, measuredAt := runs()
	if again, err := patrols.Coverage(ctx, w.layer, "", dayText); err != nil || coverageOf(again, "TG11") != before {
		t.Fatalf("asked again: %+v %v; want the kept %+v", again, err, before)
	}
	if _, m := runs(); !m.Equal(measuredAt) {
		t.Errorf("the day was measured again (%v, before %v) with nothing changed", m, measuredAt)
	}

	// Late batches of the same day from three workers' phones, several
	// at once and each sent twice, while readers ask for the day.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	sent := map[string]int{"TG11": len(first)}
	var batches []struct {
		code string
		pts  []gridmap.TrackPoint
	}
	for i, code := range []string{"TG11", "TG12", "TG21", "TG11", "TG12", "TG21"} {
		c := trackGrids[code]
		pts := walk(rng, day.Add(time.Duration(5+i)*time.Hour), 120, 10*time.Second, c[0]+0.005, c[1]+0.02, c[0]+0.01, c[1]+0.04)
		sent[code] += len(pts)
		batches = append(batches, struct {
			code string
			pts  []gridmap.TrackPoint
		}{code, pts})
	}
	for _, b := range append(batches, batches...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := patrols.AddTrack(as(w.workers[b.code]), &gridmap.TrackBatch{Device: "late", Points: b.pts}); err != nil {
				errs <- err
			}
		}()
	}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				if _, err := patrols.Coverage(ctx, w.layer, "", dayText); err != nil {
					errs <- err
				}
				if _, err := patrols.Idle(ctx, w.layer, "", 5); err != nil {
					errs <- err
				}
				if _, err := patrols.PatrolFigures(ctx, gridmap.AssessmentQuery{Layer: w.layer, From: from.AddDate(0, 0, -1), To: to}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Asking does not measure a kept day again: the patrol job does.
	stale, err := patrols.Coverage(ctx, w.layer, "", dayText)
	if err != nil {
		t.Fatal(err)
	}
	if got := coverageOf(stale, "TG11"); got != before {
		t.Errorf("TG11 before the job ran: %+v; want the kept %+v", got, before)
	}
	if err := patrols.MeasurePatrolDays(ctx); err != nil {
		t.Fatal(err)
	}
	final, err := patrols.Coverage(ctx, w.layer, "", dayText)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := patrols.MeasureCoverageNow(ctx, w.layer, "grid", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) != len(final.Rows) {
		t.Fatalf("kept %d rows, measured %d", len(final.Rows), len(fresh))
	}
	for i, r := range final.Rows {
		if r != fresh[i] {
			t.Errorf("kept %+v; measured from scratch %+v", r, fresh[i])
		}
		if r.Points != sent[r.Code] {
			t.Errorf("%s: %d points kept; %d were sent", r.Code, r.Points, sent[r.Code])
		}
	}
	if after := coverageOf(final, "TG11"); after.Coverage <= before.Coverage {
		t.Errorf("TG11's coverage %.4f after its late walk; want more than %.4f", after.Coverage, before.Coverage)
	}
	fig, err := patrols.PatrolFigures(ctx, gridmap.AssessmentQuery{Layer: w.layer, From: from.AddDate(0, 0, -1), To: to})
	if err != nil {
		t.Fatal(err)
	}
	if fig.Days != 2 || fig.MeasuredDays != 2 || len(fig.Workers) != 4 {
		t.Fatalf("figures of %d days, %d workers; want 2 and 4: %+v", fig.Days, len(fig.Workers), fig)
	}
	for _, f := range fig.Workers {
		if f.Points != sent[f.Grid] || (f.PatrolDays == 1) != (sent[f.Grid] > 0) {
			t.Errorf("worker of %s: %d points on %d days; %d were sent", f.Grid, f.Points, f.PatrolDays, sent[f.Grid])
		}
	}
	var left int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM patrol_day_changes WHERE layer_id = $1 AND day = $2`, w.layer, day).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d changes of %s left after its coverage was asked", left, dayText)
	}

	t.Run("today is measured, not kept", func(t *testing.T) {
		c := trackGrids["TG22"]
		// Between midnight and now, whatever the time of day.
		pts := walk(rng, today.Add(time.Since(today)/2), 30, time.Second, c[0], c[1], c[0]+0.01, c[1]+0.04)
		if _, err := patrols.AddTrack(as(w.workers["TG22"]), &gridmap.TrackBatch{Device: "d", Points: pts}); err != nil {
			t.Fatal(err)
		}
		cov, err := patrols.Coverage(ctx, w.layer, "", time.Now().UTC().Format(time.DateOnly))
		if err != nil {
			t.Fatal(err)
		}
		if r := coverageOf(cov, "TG22"); r.Points < len(pts) {
			t.Errorf("TG22 today: %+v; want at least %d points", r, len(pts))
		}
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM patrol_day_runs WHERE layer_id = $1 AND day >= $2`, w.layer, today).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d runs of today kept", n)
		}
	})

	t.Run("idle grids are those of no coverage on each day", func(t *testing.T) {
		idle, err := patrols.Idle(ctx, w.layer, "", 5)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range idle.Rows {
			got[r.Code] = "never"
			if r.LastPatrol != nil {
				got[r.Code] = *r.LastPatrol
			}
		}
		want := map[string]string{"TG22": "never"}
		if len(got) != len(want) || got["TG22"] != "never" {
			t.Errorf("idle over the 5 days to yesterday: %v; want %v", got, want)
		}
		idle, err = patrols.Idle(ctx, w.layer, "grid", 2) // the day lies before these two
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range idle.Rows {
			if (r.Code == "TG22") != (r.LastPatrol == nil) || r.LastPatrol != nil && *r.LastPatrol != dayText {
				t.Errorf("idle over 2 days: %s last patrolled %v; want %s (never for TG22)", r.Code, r.LastPatrol, dayText)
			}
		}
		if len(idle.Rows) != 4 {
			t.Errorf("idle over 2 days: %d grids; want all 4", len(idle.Rows))
		}
		_, err = patrols.Idle(ctx, w.layer, "street", 2)
		wantCode(t, "idle of a level not kept", err, gridmap.EINVALID)
	})
}

// TestPatrolJobAndRetentionEdge: the patrol job keeps the days of the
// last month it has not kept, on one instance at a time (its lease); a day
// the retention cuts through is never kept, and its coverage is measured
// when asked.
func TestPatrolJobAndRetentionEdge(t *testing.T) {
	w := newTrackWorld(t, "trkjob")
	ctx := context.Background()
	db := w.db
	// A retention reaching back to noon 4 days ago: that day is cut
	// through, the day after whole.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	patrols := postgres.NewPatrolStore(db, time.UTC, time.Since(today.AddDate(0, 0, -3))+12*time.Hour)
	edge, whole := today.AddDate(0, 0, -4), today.AddDate(0, 0, -3)
	c := trackGrids["TG21"]
	rng := rand.New(rand.NewPCG(31, 32))
	pts := walk(rng, whole.Add(3*time.Hour), 60, 10*time.Second, c[0], c[1], c[0]+0.01, c[1]+0.04)
	if _, err := patrols.AddTrack(as(w.workers["TG21"]), &gridmap.TrackBatch{Device: "d", Points: pts}); err != nil {
		t.Fatal(err)
	}
	runs := func(day time.Time) int {
		t.Helper()
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM patrol_day_runs WHERE layer_id = $1 AND day = $2`, w.layer, day).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := patrols.MeasurePatrolDays(ctx); err != nil {
		t.Fatal(err)
	}
	if runs(whole) != 1 || runs(today.AddDate(0, 0, -1)) != 1 || runs(edge) != 0 || runs(today) != 0 {
		t.Errorf("kept runs: %d of the whole day, %d of yesterday, %d of the edge, %d of today; want 1, 1, 0, 0",
			runs(whole), runs(today.AddDate(0, 0, -1)), runs(edge), runs(today))
	}
	cov, err := patrols.Coverage(ctx, w.layer, "", whole.Format(time.DateOnly))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cov.Rows {
		if (r.Code == "TG21") != (r.Points == len(pts)) {
			t.Errorf("%s on %s: %d points; want %d in TG21 alone", r.Code, whole.Format(time.DateOnly), r.Points, len(pts))
		}
	}
	cov, err = patrols.Coverage(ctx, w.layer, "", edge.Format(time.DateOnly))
	if err != nil || len(cov.Rows) != 4 || runs(edge) != 0 {
		t.Errorf("the edge day: %d rows, %v, %d runs; want the 4 grids measured and not kept", len(cov.Rows), err, runs(edge))
	}

	t.Run("one instance at a time runs the job", func(t *testing.T) {
		name := "test lease " + w.layer
		if got, err := postgres.TakeLease(ctx, db, name, "a", time.Minute); err != nil || !got {
			t.Fatalf("a takes a free lease: %v %v", got, err)
		}
		if got, err := postgres.TakeLease(ctx, db, name, "b", time.Minute); err != nil || got {
			t.Fatalf("b takes a's lease: %v %v", got, err)
		}
		if got, err := postgres.TakeLease(ctx, db, name, "a", time.Minute); err != nil || !got {
			t.Fatalf("a renews its lease: %v %v", got, err)
		}
		if _, err := db.Pool.Exec(ctx, `UPDATE job_leases SET until = now() - interval '1 second' WHERE name = $1`, name); err != nil {
			t.Fatal(err)
		}
		if got, err := postgres.TakeLease(ctx, db, name, "b", time.Minute); err != nil || !got {
			t.Fatalf("b takes a lease run out: %v %v", got, err)
		}
	})
}
