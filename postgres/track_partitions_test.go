package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/jackc/pgx/v5"
)

// partitionState reads whether the partition of t's UTC day exists, is
// attached to track_points and is pending detach.
func partitionState(t *testing.T, db *postgres.DB, day time.Time) (exists, attached, pending bool) {
	t.Helper()
	name := "track_points_" + day.UTC().Format("20060102")
	err := db.Pool.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL,
		  EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = 'track_points'::regclass AND inhrelid = to_regclass($1)),
		  EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = 'track_points'::regclass AND inhrelid = to_regclass($1) AND inhdetachpending)`,
		name).Scan(&exists, &attached, &pending)
	if err != nil {
		t.Fatal(err)
	}
	return exists, attached, pending
}

// TestTrackPartitionsAreMadeAhead: the retention job makes the partitions
// of the day it runs on and of the next two UTC days, so that intake finds
// them made.
func TestTrackPartitionsAreMadeAhead(t *testing.T) {
	w := newTrackWorld(t, "trk")
	// A day far enough ahead that nothing made its partitions yet.
	at := time.Now().UTC().AddDate(0, 0, 40)
	for i := range 3 {
		if exists, _, _ := partitionState(t, w.db, at.AddDate(0, 0, i)); exists {
			t.Fatalf("the partition of %s exists before the job ran", at.AddDate(0, 0, i).Format(time.DateOnly))
		}
	}
	store := postgres.NewPatrolStore(w.db, time.UTC, 400*24*time.Hour)
	if _, _, err := store.ExpireTracks(context.Background(), at); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		day := at.AddDate(0, 0, i)
		_, attached, _ := partitionState(t, w.db, day)
		if want := i < 3; attached != want {
			t.Errorf("after the job of %s: partition of %s attached %v, want %v", at.Format(time.DateOnly), day.Format(time.DateOnly), attached, want)
		}
	}
	// A second run finds them made.
	if _, _, err := store.ExpireTracks(context.Background(), at); err != nil {
		t.Errorf("the job again: %v", err)
	}
}

// TestTrackRetentionDoesNotStallIntake: while a reader holds a transaction
// that has read track_points, the retention job makes the next days'
// partitions, and its detach of an expired day waits at most the lock
// timeout without holding intake up; the detach left pending is finalized
// and the day dropped by the next run once the reader is gone.
func TestTrackRetentionDoesNotStallIntake(t *testing.T) {
	w := newTrackWorld(t, "trk")
	ctx := context.Background()
	c := w.addWorker(t, "trk-stall", nil)
	now := time.Now()
	long := postgres.NewPatrolStore(w.db, time.UTC, 30*24*time.Hour)
	short := postgres.NewPatrolStore(w.db, time.UTC, 8*24*time.Hour)
	old := gridmap.TrackPoint{T: now.Add(-10 * 24 * time.Hour), Lon: 70.002, Lat: -30.002}
	recent := gridmap.TrackPoint{T: now.Add(-time.Minute), Lon: 70.002, Lat: -30.002}
	if got, err := long.AddTrack(as(c), &gridmap.TrackBatch{Device: "before", Points: []gridmap.TrackPoint{old, recent}}); err != nil || got.Stored != 2 {
		t.Fatalf("storing an old and a recent point: %+v %v", got, err)
	}

	reader, err := w.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback(ctx)
	var n int
	if err := reader.QueryRow(ctx, `SELECT count(*) FROM track_points WHERE account_id = $1`, c.ID).Scan(&n); err != nil || n != 2 {
		t.Fatalf("the reader reads %d points, %v", n, err)
	}

	// The job runs as of three days on: the retention's cutoff is then
	// five days ago, and the days it makes ahead are new.
	at := now.Add(3 * 24 * time.Hour)
	type result struct {
		dropped int
		err     error
	}
	done := make(chan result, 1)
	go func() {
		dropped, _, err := short.ExpireTracks(ctx, at)
		done <- result{dropped, err}
	}()
	// Wait for the job to wait for the reader.
	var waiting bool
	for give := time.Now().Add(time.Minute); !waiting; {
		select {
		case r := <-done:
			t.Fatalf("the job ended (%d dropped, %v) without waiting for the reader", r.dropped, r.err)
		case <-time.After(5 * time.Millisecond):
		}
		if err := w.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%track_points%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(give) {
			t.Fatal("the job never waited for the reader")
		}
	}
	// Far longer than the lock timeout: intake that waits until the
	// reader ends fails here.
	intakeCtx, cancel := context.WithTimeout(as(c), 20*time.Second)
	defer cancel()
	got, err := long.AddTrack(intakeCtx, &gridmap.TrackBatch{Device: "during", Points: []gridmap.TrackPoint{recent}})
	if err != nil || got.Stored != 1 {
		t.Fatalf("intake while the job waits for the reader: %+v %v", got, err)
	}
	if err := reader.QueryRow(ctx, `SELECT count(*) FROM track_points WHERE account_id = $1`, c.ID).Scan(&n); err != nil {
		t.Fatalf("the reader after intake: %v", err)
	}
	r := <-done
	if r.err == nil || r.dropped != 0 {
		t.Errorf("the job while the reader is open: %d dropped, %v; want nothing dropped and an error saying it tries again", r.dropped, r.err)
	}
	for i := range 3 {
		if _, attached, _ := partitionState(t, w.db, at.AddDate(0, 0, i)); !attached {
			t.Errorf("the partition of %s was not made while the reader was open", at.AddDate(0, 0, i).Format(time.DateOnly))
		}
	}
	if _, _, pending := partitionState(t, w.db, old.T); !pending {
		t.Errorf("the expired partition is not pending detach after the detach timed out")
	}
	// A day without a partition is made all the same: nothing is left
	// locked by the job, and ATTACH does not wait for the reader.
	backfill := gridmap.TrackPoint{T: now.Add(-4 * 24 * time.Hour), Lon: 70.002, Lat: -30.002}
	if exists, _, _ := partitionState(t, w.db, backfill.T); exists {
		t.Fatalf("the partition of the backfilled day exists already")
	}
	got, err = long.AddTrack(intakeCtx, &gridmap.TrackBatch{Device: "backfill", Points: []gridmap.TrackPoint{backfill}})
	if err != nil || got.Stored != 1 {
		t.Fatalf("a backfill while the reader is open and a detach pending: %+v %v", got, err)
	}
	if err := reader.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	dropped, _, err := short.ExpireTracks(ctx, at)
	if err != nil || dropped < 1 {
		t.Fatalf("the job after the reader: %d dropped, %v", dropped, err)
	}
	if exists, _, _ := partitionState(t, w.db, old.T); exists {
		t.Errorf("the partition of %s past the retention is still there", old.T.UTC().Format(time.DateOnly))
	}
	if err := w.db.Pool.QueryRow(ctx, `SELECT count(*) FROM track_points WHERE account_id = $1`, c.ID).Scan(&n); err != nil || n != 3 {
		t.Errorf("%d points left, %v; want the three within the retention", n, err)
	}
}

// TestTrackIntakeAnswersBusy: intake that must make a partition while
// track_points is locked against it answers EUNAVAILABLE after the lock
// timeout, stores nothing, and stores the batch once the lock is gone.
func TestTrackIntakeAnswersBusy(t *testing.T) {
	w := newTrackWorld(t, "trk")
	ctx := context.Background()
	c := w.addWorker(t, "trk-busy", nil)
	store := postgres.NewPatrolStore(w.db, time.UTC, 30*24*time.Hour)
	backfill := &gridmap.TrackBatch{Device: "d", Points: []gridmap.TrackPoint{{T: time.Now().Add(-20 * 24 * time.Hour), Lon: 70.003, Lat: -30.003}}}
	if exists, _, _ := partitionState(t, w.db, backfill.Points[0].T); exists {
		t.Fatalf("the partition of the backfilled day exists already")
	}
	err := pgx.BeginFunc(ctx, w.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE track_points IN SHARE UPDATE EXCLUSIVE MODE`); err != nil {
			return err
		}
		_, err := store.AddTrack(as(c), backfill)
		if gridmap.ErrorCode(err) != gridmap.EUNAVAILABLE || !strings.Contains(gridmap.ErrorMessage(err), "again") {
			t.Errorf("a backfill while track_points is locked: %v, want %s saying to send it again", err, gridmap.EUNAVAILABLE)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := store.AddTrack(as(c), backfill); err != nil || got.Stored != 1 {
		t.Errorf("the backfill once the lock is gone: %+v %v", got, err)
	}
}

// TestTrackRetentionDropsLeftDetachedDays: a day's table left detached (a
// crash between detaching and dropping it) is dropped by the next run once
// past the retention, and attached again by intake while within it.
func TestTrackRetentionDropsLeftDetachedDays(t *testing.T) {
	w := newTrackWorld(t, "trk")
	ctx := context.Background()
	c := w.addWorker(t, "trk-left", nil)
	now := time.Now()
	long := postgres.NewPatrolStore(w.db, time.UTC, 60*24*time.Hour)
	expired, kept := now.Add(-50*24*time.Hour), now.Add(-45*24*time.Hour)
	for _, day := range []time.Time{expired, kept} {
		if _, err := w.db.Pool.Exec(ctx, `CREATE TABLE `+pgx.Identifier{"track_points_" + day.UTC().Format("20060102")}.Sanitize()+` (LIKE track_points)`); err != nil {
			t.Fatal(err)
		}
	}
	got, err := long.AddTrack(as(c), &gridmap.TrackBatch{Device: "d", Points: []gridmap.TrackPoint{{T: kept, Lon: 70.004, Lat: -30.004}}})
	if err != nil || got.Stored != 1 {
		t.Fatalf("intake for a day whose table was left detached: %+v %v", got, err)
	}
	if _, attached, _ := partitionState(t, w.db, kept); !attached {
		t.Errorf("the table of a day within the retention was not attached again")
	}
	short := postgres.NewPatrolStore(w.db, time.UTC, 48*24*time.Hour)
	if _, _, err := short.ExpireTracks(ctx, now); err != nil {
		t.Fatal(err)
	}
	if exists, _, _ := partitionState(t, w.db, expired); exists {
		t.Errorf("the detached table of a day past the retention is still there")
	}
	if _, attached, _ := partitionState(t, w.db, kept); !attached {
		t.Errorf("the partition of a day within the retention was dropped")
	}
}
