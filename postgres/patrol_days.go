package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// A day's patrol coverage of a layer's default level (gridmap.PatrolLevel)
// is measured once the day is over and kept (migration 00025): coverage of
// a past day, idle grids and the assessment read the kept rows. Points
// that arrive for a day over, or about to be, append a change of their day
// (trackIntakeSQL), and the patrol job measures the day again.
//
// A measurement reads the day's changes and the time (started), measures
// with every change committed by then included, and stores its rows and
// deletes the changes it read, unless a measurement that started later
// stored first. A change committed after the read stays for the next
// measurement. Intake marks the points of a day ending within
// dayOverGrace of its start, so a batch that commits after its day is
// over, and after a measurement of the day began, has marked it.

// dayOverGrace is how long before its end a day's points start to mark it
// changed: longer than a batch takes from its start to its commit (the
// request deadline) plus the clocks' difference between instances.
const dayOverGrace = 10 * time.Minute

// patrolLookback is how many days before today the patrol job keeps
// measured; older days within the retention are measured when asked for
// or when points arrive for them.
const patrolLookback = 31

// maxDaysMeasuredPerRequest bounds the days a request measures before it
// answers; the rest are measured meanwhile, and the answer says how many
// days it holds.
const maxDaysMeasuredPerRequest = 3

// localDay is the date of t in tz, as midnight UTC of that date (how a
// date column reads and writes).
func localDay(t time.Time, tz *time.Location) time.Time { return gridmap.DayOf(t, tz) }

// dayBounds is the start and end in tz of the date day (a localDay).
func dayBounds(day time.Time, tz *time.Location) (time.Time, time.Time) {
	return gridmap.DayBounds(day, tz)
}

// measurable tells whether a day can be measured and kept at now: over,
// and wholly inside the retention (the day the retention cuts through has
// lost its first points).
func (s *PatrolStore) measurable(day, now time.Time) bool {
	start, end := dayBounds(day, s.tz)
	return !end.After(now) && !start.Before(now.Add(-s.retention))
}

// patrolDaysDueSQL lists which of the days $4 of layer $1 (time zone $2,
// level $3) are not kept at that level, or changed since, newest first.
const patrolDaysDueSQL = `SELECT d FROM unnest($4::date[]) d
	WHERE NOT EXISTS (SELECT 1 FROM patrol_day_runs r WHERE r.layer_id = $1 AND r.tz = $2 AND r.day = d AND r.level = $3)
	   OR EXISTS (SELECT 1 FROM patrol_day_changes c WHERE c.layer_id = $1 AND c.tz = $2 AND c.day = d)
	ORDER BY d DESC`

// dueDays are those of days (measurable ones only) not kept at level, or
// changed since.
func (s *PatrolStore) dueDays(ctx context.Context, layer, level string, days []time.Time) ([]time.Time, error) {
	now := time.Now()
	var kept []time.Time
	for _, d := range days {
		if s.measurable(d, now) {
			kept = append(kept, d)
		}
	}
	if len(kept) == 0 {
		return nil, nil
	}
	rows, err := s.db.Pool.Query(ctx, patrolDaysDueSQL, layer, s.tz.String(), level, kept)
	if err != nil {
		return nil, translate(err, "patrol days")
	}
	due, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	return due, translate(err, "patrol days")
}

// measureDays measures the days not kept of days (measurable ones only)
// at level, newest first, at most limit of them (0: all). The rest are
// measured in the background; unkept says how many remain. With changed
// false, days kept but changed since are left to the patrol job.
func (s *PatrolStore) measureDays(ctx context.Context, layer, level string, days []time.Time, limit int, changed bool) (unkept int, err error) {
	due, err := s.dueDays(ctx, layer, level, days)
	if err != nil {
		return 0, err
	}
	if !changed && len(due) > 0 {
		var kept map[time.Time]bool
		if kept, err = s.keptAt(ctx, layer, level, due); err != nil {
			return 0, err
		}
		n := 0
		for _, d := range due {
			if !kept[d] {
				due[n] = d
				n++
			}
		}
		due = due[:n]
	}
	if limit > 0 && len(due) > limit {
		// The rest in the background, one backfill of a layer's level at
		// a time.
		rest := due[limit:]
		s.live.group.DoChan(fmt.Sprintf("backfill %q %q", layer, level), func() (any, error) {
			ctx := context.WithoutCancel(ctx)
			for _, d := range rest {
				if due, err := s.dueDays(ctx, layer, level, []time.Time{d}); err == nil && len(due) == 0 {
					continue // kept meanwhile
				}
				// Stopped by the first failure: the job measures again.
				if err := s.measureDay(ctx, layer, level, d); err != nil {
					slog.Error("measuring patrol days failed", "layer", layer, "day", d.Format(time.DateOnly), "err", err)
					break
				}
			}
			return nil, nil
		})
		unkept, due = len(rest), due[:limit]
	}
	var errs []error
	for _, d := range due {
		if err := s.measureDay(ctx, layer, level, d); err != nil {
			if ctx.Err() != nil {
				return 0, err
			}
			errs = append(errs, fmt.Errorf("%s of %s: %w", d.Format(time.DateOnly), layer, err))
		}
	}
	return unkept, errors.Join(errs...)
}

// keptLevel is the level patrol days of layer are kept for: level must be
// it or "". Returns EINVALID saying so for another level.
func (s *PatrolStore) keptLevel(ctx context.Context, layer, level string) (string, error) {
	kept, err := s.patrolLevel(ctx, layer, "")
	if err != nil {
		return "", err
	}
	if level != "" && level != kept {
		return "", gridmap.Errorf(gridmap.EINVALID, "patrol days are kept for level %s of %s (the coarsest grid-tier level its workers are linked at); leave level out or give %s",
			kept, layer, kept)
	}
	return kept, nil
}

// keptAt tells which of days have a kept run at level.
func (s *PatrolStore) keptAt(ctx context.Context, layer, level string, days []time.Time) (map[time.Time]bool, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT day FROM patrol_day_runs WHERE layer_id = $1 AND tz = $2 AND level = $3 AND day = ANY($4::date[])`,
		layer, s.tz.String(), level, days)
	if err != nil {
		return nil, translate(err, "patrol days")
	}
	kept, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	out := make(map[time.Time]bool, len(kept))
	for _, d := range kept {
		out[d] = true
	}
	return out, translate(err, "patrol days")
}

// patrolDayLockSQL serialises the storing of one day ($1 layer, $2 tz, $3
// day) across instances.
const patrolDayLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('patrol_day ' || $1 || ' ' || $2 || ' ' || $3::date::text, 0))`

// measureDay measures one day of layer's level and keeps it; callers
// asking for the same day at once share one measurement, which runs to its
// end even when the caller that started it leaves.
func (s *PatrolStore) measureDay(ctx context.Context, layer, level string, day time.Time) error {
	key := fmt.Sprintf("day %q %q %s", layer, level, day.Format(time.DateOnly))
	ch := s.live.group.DoChan(key, func() (any, error) {
		return nil, s.measureDayNow(context.WithoutCancel(ctx), layer, level, day)
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return translate(ctx.Err(), "patrol days")
	}
}

func (s *PatrolStore) measureDayNow(ctx context.Context, layer, level string, day time.Time) error {
	var changes []int64
	var started time.Time
	if err := s.db.Pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}'), clock_timestamp() FROM patrol_day_changes
		WHERE layer_id = $1 AND tz = $2 AND day = $3`, layer, s.tz.String(), day).Scan(&changes, &started); err != nil {
		return translate(err, "patrol days")
	}
	from, to := dayBounds(day, s.tz)
	grids, err := s.measureCoverage(ctx, layer, level, from, to, nil, nil)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, patrolDayLockSQL, layer, s.tz.String(), day); err != nil {
			return err
		}
		// The changes read are in this measurement, and in any that
		// started later.
		if _, err := tx.Exec(ctx, `DELETE FROM patrol_day_changes WHERE id = ANY($1)`, changes); err != nil {
			return err
		}
		var newer bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM patrol_day_runs WHERE layer_id = $1 AND tz = $2 AND day = $3
			AND started_at > $4)`, layer, s.tz.String(), day, started).Scan(&newer); err != nil || newer {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO patrol_day_runs (layer_id, tz, day, level, started_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (layer_id, tz, day) DO UPDATE SET level = EXCLUDED.level, started_at = EXCLUDED.started_at, measured_at = now()`,
			layer, s.tz.String(), day, level, started); err != nil {
			return err
		}
		for _, table := range []string{"patrol_days", "patrol_worker_days"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE layer_id = $1 AND tz = $2 AND day = $3`, layer, s.tz.String(), day); err != nil {
				return err
			}
		}
		var codes, names []string
		var workers, points []int
		var covered, area, share []float64
		var accounts []int64
		var accountPoints []int
		for _, g := range grids {
			codes, names, workers, points = append(codes, g.Code), append(names, g.Name), append(workers, g.Workers), append(points, g.Points)
			covered, area, share = append(covered, g.CoveredM2), append(area, g.AreaM2), append(share, g.Coverage)
			accounts, accountPoints = append(accounts, g.accounts...), append(accountPoints, g.accountPoints...)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO patrol_days (layer_id, tz, day, code, name, workers, points, covered_m2, area_m2, coverage)
			SELECT $1, $2, $3, u.* FROM unnest($4::text[], $5::text[], $6::int[], $7::int[], $8::float8[], $9::float8[], $10::float8[]) u`,
			layer, s.tz.String(), day, codes, names, workers, points, covered, area, share); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO patrol_worker_days (layer_id, tz, day, account_id, points)
			SELECT $1, $2, $3, u.* FROM unnest($4::bigint[], $5::int[]) u ON CONFLICT DO NOTHING`,
			layer, s.tz.String(), day, accounts, accountPoints)
		return err
	})
	return translate(err, "patrol days")
}

// patrolLeaseName is the lease of the patrol job (job_leases).
const patrolLeaseName = "patrol days"

// takeLease takes or renews the lease name for holder until for from now;
// false when another holder's lease has not run out.
func takeLease(ctx context.Context, db *DB, name, holder string, length time.Duration) (bool, error) {
	var got bool
	err := db.Pool.QueryRow(ctx, `WITH t AS (
		  INSERT INTO job_leases AS l (name, holder, until) VALUES ($1, $2, now() + $3 * interval '1 second')
		  ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
		  WHERE l.until < now() OR l.holder = EXCLUDED.holder
		  RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM t)`, name, holder, length.Seconds()).Scan(&got)
	return got, translate(err, "job lease "+name)
}

// MeasurePatrolDays keeps the patrol days current, for every layer whose
// grids have workers, at its default level: it measures the days of the
// last patrolLookback days not kept, and every day within the retention
// with changes (points that came late), and forgets the changes of days
// past it. A layer or day that fails does not stop the others; the
// failures are returned together.
func (s *PatrolStore) MeasurePatrolDays(ctx context.Context) error {
	now := time.Now()
	oldest := localDay(now.Add(-s.retention), s.tz)
	if _, err := s.db.Pool.Exec(ctx, `DELETE FROM patrol_day_changes WHERE tz = $1 AND day <= $2`, s.tz.String(), oldest); err != nil {
		return translate(err, "patrol days")
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT l.id, coalesce((SELECT array_agg(DISTINCT c.day) FROM patrol_day_changes c
		  WHERE c.layer_id = l.id AND c.tz = $1), '{}')
		FROM layers l WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.person_layer = l.id AND a.disabled_at IS NULL) ORDER BY l.id`,
		s.tz.String())
	if err != nil {
		return translate(err, "patrol days")
	}
	type layerDays struct {
		layer   string
		changed []time.Time
	}
	layers, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (layerDays, error) {
		var l layerDays
		return l, row.Scan(&l.layer, &l.changed)
	})
	if err != nil {
		return translate(err, "patrol days")
	}
	today := localDay(now, s.tz)
	var errs []error
	for _, l := range layers {
		level, err := s.patrolLevel(ctx, l.layer, "")
		if gridmap.ErrorCode(err) == gridmap.EINVALID || gridmap.ErrorCode(err) == gridmap.ENOTFOUND {
			continue // a layer without levels, or deleted meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		days := l.changed
		for i := 1; i <= patrolLookback; i++ {
			days = append(days, today.AddDate(0, 0, -i))
		}
		if _, err := s.measureDays(ctx, l.layer, level, days, 0, true); err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// FollowPatrolDays runs MeasurePatrolDays every interval until ctx ends,
// on one instance at a time (a lease of twice the interval), logging
// failures.
func (s *PatrolStore) FollowPatrolDays(ctx context.Context, every time.Duration) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	holder := hex.EncodeToString(b)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		mine, err := takeLease(ctx, s.db, patrolLeaseName, holder, 2*every)
		if err == nil && mine {
			err = s.MeasurePatrolDays(ctx)
		}
		if err != nil && ctx.Err() == nil {
			slog.Error("measuring patrol days failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// storedCoverageSQL reads a kept day's rows ($1 layer, $5 tz, $6 day) of
// level $2, of the caller's scope ($3 layer, $4 code; NULL: every grid).
var storedCoverageSQL = `WITH ` + subtreeSQL("$3", "$4") + `
	SELECT d.code, d.name, d.workers, d.points, d.covered_m2, d.area_m2, d.coverage
	FROM patrol_days d JOIN patrol_day_runs r USING (layer_id, tz, day)
	WHERE d.layer_id = $1 AND r.level = $2 AND d.tz = $5 AND d.day = $6
	  AND ($3::text IS NULL OR ($3 = $1 AND d.code IN (SELECT code FROM sub)))
	ORDER BY d.code`

// storedCoverage reads a kept day of layer's level; ok is false when the
// day is not kept at that level.
func (s *PatrolStore) storedCoverage(ctx context.Context, layer, level string, day time.Time) (rows []gridmap.CoverageRow, ok bool, err error) {
	kept, err := s.keptAt(ctx, layer, level, []time.Time{day})
	if err != nil || !kept[day] {
		return nil, false, err
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	r, err := s.db.Pool.Query(ctx, storedCoverageSQL, layer, level, scopeLayer, scopeCode, s.tz.String(), day)
	if err != nil {
		return nil, false, translate(err, "patrol coverage")
	}
	rows, err = pgx.CollectRows(r, func(row pgx.CollectableRow) (gridmap.CoverageRow, error) {
		var c gridmap.CoverageRow
		return c, row.Scan(&c.Code, &c.Name, &c.Workers, &c.Points, &c.CoveredM2, &c.AreaM2, &c.Coverage)
	})
	return rows, err == nil, translate(err, "patrol coverage")
}
