package postgres

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// A day's patrol coverage of a layer's default level (gridmap.PatrolLevel) is measured
// once the day is over and kept (migration 00025): coverage of a past day,
// idle grids and the assessment read the kept rows. Points that arrive
// late append a change of their day (trackIntakeSQL), and the day is
// measured again when next needed.
//
// A measurement reads the day's changes and the time (started), measures
// with every change committed by then included, and stores its rows and
// deletes the changes it read, unless a measurement that started later
// stored first. A change committed after the read stays for the next
// measurement.

// localDay is the date of t in tz, as midnight UTC of that date (how a
// date column reads and writes).
func localDay(t time.Time, tz *time.Location) time.Time {
	y, m, d := t.In(tz).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// dayBounds is the start and end in tz of the date day (a localDay).
func dayBounds(day time.Time, tz *time.Location) (time.Time, time.Time) {
	start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, tz)
	return start, start.AddDate(0, 0, 1)
}

// patrolDaysDueSQL lists which of the days $4 of layer $1 (time zone $2,
// level $3) are not measured, measured at another level, or changed since.
const patrolDaysDueSQL = `SELECT d FROM unnest($4::date[]) d
	WHERE NOT EXISTS (SELECT 1 FROM patrol_day_runs r WHERE r.layer_id = $1 AND r.tz = $2 AND r.day = d AND r.level = $3)
	   OR EXISTS (SELECT 1 FROM patrol_day_changes c WHERE c.layer_id = $1 AND c.tz = $2 AND c.day = d)
	ORDER BY d`

// measureDays makes sure the days (localDay dates, each over) of layer's
// level are measured and current, measuring those that are not, oldest
// first. Days before the retention hold no points and are not measured:
// nothing is known of them.
func (s *PatrolStore) measureDays(ctx context.Context, layer, level string, days []time.Time) error {
	oldest := localDay(time.Now().Add(-s.retention), s.tz)
	kept := make([]time.Time, 0, len(days))
	for _, d := range days {
		if !d.Before(oldest) {
			kept = append(kept, d)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	rows, err := s.db.Pool.Query(ctx, patrolDaysDueSQL, layer, s.tz.String(), level, kept)
	if err != nil {
		return translate(err, "patrol days")
	}
	due, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return translate(err, "patrol days")
	}
	for _, d := range due {
		if err := s.measureDay(ctx, layer, level, d); err != nil {
			return err
		}
	}
	return nil
}

// patrolDayLockSQL serialises the storing of one day ($1 layer, $2 tz, $3
// day) across instances.
const patrolDayLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('patrol_day ' || $1 || ' ' || $2 || ' ' || $3::text, 0))`

// measureDay measures one day of layer's level and keeps it.
func (s *PatrolStore) measureDay(ctx context.Context, layer, level string, day time.Time) error {
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
		// The changes read are measured, whoever stores.
		if _, err := tx.Exec(ctx, `DELETE FROM patrol_day_changes WHERE id = ANY($1)`, changes); err != nil {
			return err
		}
		var newer bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM patrol_day_runs WHERE layer_id = $1 AND tz = $2 AND day = $3
			AND level = $4 AND started_at > $5)`, layer, s.tz.String(), day, level, started).Scan(&newer); err != nil || newer {
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

// patrolLookback is how many days before today the patrol job keeps
// measured; older days are measured when asked for.
const patrolLookback = 31

// MeasurePatrolDays measures every day of the last patrolLookback days
// (yesterday and before) of every layer whose grids have workers that is
// not measured or changed since, for the layer's default patrol level.
func (s *PatrolStore) MeasurePatrolDays(ctx context.Context) error {
	rows, err := s.db.Pool.Query(ctx, `SELECT DISTINCT a.person_layer FROM accounts a JOIN layers l ON l.id = a.person_layer
		WHERE a.disabled_at IS NULL ORDER BY 1`)
	if err != nil {
		return translate(err, "patrol days")
	}
	layers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return translate(err, "patrol days")
	}
	today := localDay(time.Now(), s.tz)
	days := make([]time.Time, patrolLookback)
	for i := range days {
		days[i] = today.AddDate(0, 0, i-patrolLookback)
	}
	for _, layer := range layers {
		level, err := s.patrolLevel(ctx, layer, "")
		if gridmap.ErrorCode(err) == gridmap.EINVALID || gridmap.ErrorCode(err) == gridmap.ENOTFOUND {
			continue // a layer without levels, or deleted meanwhile
		}
		if err != nil {
			return err
		}
		if err := s.measureDays(ctx, layer, level, days); err != nil {
			return err
		}
	}
	return nil
}

// FollowPatrolDays runs MeasurePatrolDays every interval until ctx ends,
// logging failures.
func (s *PatrolStore) FollowPatrolDays(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.MeasurePatrolDays(ctx); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			slog.Error("measuring patrol days failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// storedCoverageSQL reads a kept day's rows ($1 layer, $5 tz, $6 day), of
// the caller's scope ($3 layer, $4 code; NULL: every grid) and $2 level.
var storedCoverageSQL = `WITH ` + subtreeSQL("$3", "$4") + `
	SELECT d.code, d.name, d.workers, d.points, d.covered_m2, d.area_m2, d.coverage
	FROM patrol_days d JOIN patrol_day_runs r USING (layer_id, tz, day)
	WHERE d.layer_id = $1 AND r.level = $2 AND d.tz = $5 AND d.day = $6
	  AND ($3::text IS NULL OR ($3 = $1 AND d.code IN (SELECT code FROM sub)))
	ORDER BY d.code`

// storedCoverage reads a kept day of layer's level, measuring it first
// when it is not kept or changed since.
func (s *PatrolStore) storedCoverage(ctx context.Context, layer, level string, day time.Time) ([]gridmap.CoverageRow, error) {
	if err := s.measureDays(ctx, layer, level, []time.Time{day}); err != nil {
		return nil, err
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	rows, err := s.db.Pool.Query(ctx, storedCoverageSQL, layer, level, scopeLayer, scopeCode, s.tz.String(), day)
	if err != nil {
		return nil, translate(err, "patrol coverage")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (gridmap.CoverageRow, error) {
		var r gridmap.CoverageRow
		return r, row.Scan(&r.Code, &r.Name, &r.Workers, &r.Points, &r.CoveredM2, &r.AreaM2, &r.Coverage)
	})
	return out, translate(err, "patrol coverage")
}
