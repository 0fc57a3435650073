package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Track points live in one partition of track_points per UTC day
// (migration 00023). The retention job makes the partitions of today and
// the next trackDaysAhead days, so that intake normally finds its days'
// partitions made; intake makes one only for a day that has none (a
// backfill of an old day). Days past the retention are detached
// CONCURRENTLY and then dropped.
//
// DDL on track_points waits at most trackLockTimeout for its locks and is
// tried again later: while DDL waits for a lock on the table, every reader
// and writer that comes after queues behind it, and a long reader (a
// coverage query) would otherwise stall intake for as long as it runs.
// Partitions are made by CREATE TABLE and ATTACH PARTITION, which takes a
// SHARE UPDATE EXCLUSIVE lock on track_points and so blocks neither intake
// nor readers; CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE.

// trackLockTimeout is the lock_timeout of DDL on track_points.
const trackLockTimeout = "2s"

// trackDaysAhead is how many UTC days after today the retention job makes
// partitions for.
const trackDaysAhead = 2

// trackLockID is the advisory lock under which partitions are made: one
// maker at a time, across instances too.
const trackLockID = 0x6772_6964_7472_6b73 // "gridtrks"

// trackRetentionLockID is the advisory lock the retention job holds while
// it runs: one instance runs it at a time.
const trackRetentionLockID = 0x6772_6964_7472_6b72 // "gridtrkr"

// utcDay is the start of t's UTC day in Unix seconds.
func utcDay(t time.Time) int64 {
	u := t.UTC()
	return time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC).Unix()
}

// partitionName is the partition of track_points holding the UTC day
// starting at day (Unix seconds).
func partitionName(day int64) string {
	return "track_points_" + time.Unix(day, 0).UTC().Format("20060102")
}

// attachedDaysSQL returns which of the tables named $1 are partitions of
// track_points (pending detach or not).
const attachedDaysSQL = `SELECT n FROM unnest($1::text[]) n
	WHERE EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = 'track_points'::regclass AND inhrelid = to_regclass(n))`

// ensureDays makes sure the partitions of the UTC days (starts in Unix
// seconds) exist, making those missing. Returns EUNAVAILABLE when one must
// be made and track_points stays locked past trackLockTimeout.
func (s *PatrolStore) ensureDays(ctx context.Context, days []int64) error {
	var missing []int64
	for _, d := range days {
		if _, ok := s.days.Load(d); !ok {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// Days are normally made ahead: look without a lock first.
	attached, err := attachedDays(ctx, s.db.Pool, missing)
	if err != nil {
		return translate(err, "track partitions")
	}
	var toMake []int64
	for _, d := range missing {
		if attached[d] {
			s.days.Store(d, true)
		} else {
			toMake = append(toMake, d)
		}
	}
	if len(toMake) == 0 {
		return nil
	}
	err = s.makeDays(ctx, s.db.Pool, toMake)
	if isSQLState(err, lockNotAvailable) {
		return &gridmap.Error{Code: gridmap.EUNAVAILABLE, RetryAfter: 30 * time.Second, Message: fmt.Sprintf(
			"the track store is busy and could not make room for the points of %s (UTC) now; nothing was stored: send the batch again in a minute",
			time.Unix(toMake[0], 0).UTC().Format(time.DateOnly))}
	}
	return translate(err, "track partitions")
}

// lockNotAvailable is the SQLSTATE of a lock not granted within
// lock_timeout.
const lockNotAvailable = "55P03"

// attachedDays returns which of the days have a partition of track_points.
func attachedDays(ctx context.Context, q querier, days []int64) (map[int64]bool, error) {
	byName := map[string]int64{}
	names := make([]string, len(days))
	for i, d := range days {
		names[i] = partitionName(d)
		byName[names[i]] = d
	}
	rows, err := q.Query(ctx, attachedDaysSQL, names)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := map[int64]bool{}
	for _, n := range found {
		out[byName[n]] = true
	}
	return out, nil
}

// beginner is what a pool and a pooled connection have in common for
// transactions.
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ddlTx runs fn in a transaction of db whose lock waits end after
// trackLockTimeout (SQLSTATE 55P03).
func ddlTx(ctx context.Context, db beginner, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+trackLockTimeout+`'`); err != nil {
			return err
		}
		return fn(tx)
	})
}

// makeDays makes the partitions of the days that have none, through db,
// under trackLockID. A table of the day's name left detached (by a crash
// between detaching and dropping it) is attached again. Returns the
// database's error unchanged: 55P03 when a lock was not granted in time.
func (s *PatrolStore) makeDays(ctx context.Context, db beginner, days []int64) error {
	err := ddlTx(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(trackLockID)); err != nil {
			return err
		}
		attached, err := attachedDays(ctx, tx, days)
		if err != nil {
			return err
		}
		for _, d := range days {
			if attached[d] {
				continue
			}
			name := pgx.Identifier{partitionName(d)}.Sanitize()
			from := time.Unix(d, 0).UTC()
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+name+` (LIKE track_points INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`); err != nil {
				return err
			}
			// Names and bounds come from the day's date, never from input.
			if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE track_points ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')`,
				name, from.Format(time.RFC3339), from.AddDate(0, 0, 1).Format(time.RFC3339))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range days {
		s.days.Store(d, true)
	}
	return nil
}

// trackTablesSQL lists the tables named as days of track_points beside it,
// whether each is a partition and whether its detach is pending.
const trackTablesSQL = `SELECT c.relname::text, i.inhrelid IS NOT NULL, coalesce(i.inhdetachpending, false)
	FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'track_points'::regclass
	WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'track_points'::regclass)
	  AND c.relkind = 'r' AND c.relname ~ '^track_points_[0-9]{8}$'
	ORDER BY c.relname`

// trackTable is a table of trackTablesSQL.
type trackTable struct {
	name          string
	attached      bool
	detachPending bool
}

// ExpireTracks enforces the retention as of now and prepares the next
// days: it makes the partitions of today and the next trackDaysAhead UTC
// days, detaches and drops the partitions of days wholly before now minus
// the retention, deletes the older points of the day that straddles it,
// and deletes worker events older than a day (the live feed's readers have
// long read them). DDL that cannot get its locks within trackLockTimeout
// is left for the next run, and the error says so; the rest is done all
// the same. When another instance is running it, it does nothing. Returns
// how many partitions were dropped and points deleted.
func (s *PatrolStore) ExpireTracks(ctx context.Context, now time.Time) (dropped int, deleted int64, err error) {
	conn, err := s.db.Pool.Acquire(ctx)
	if err != nil {
		return 0, 0, translate(err, "track retention")
	}
	defer conn.Release()
	var mine bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(trackRetentionLockID)).Scan(&mine); err != nil {
		return 0, 0, translate(err, "track retention")
	}
	if !mine {
		return 0, 0, nil // another instance is running it
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(trackRetentionLockID)); err != nil {
			// The session's lock ends with the session.
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	var errs []error
	today := utcDay(now)
	ahead := make([]int64, 0, trackDaysAhead+1)
	for i := range trackDaysAhead + 1 {
		ahead = append(ahead, today+int64(i)*24*60*60)
	}
	if err := s.makeDays(ctx, conn, ahead); err != nil {
		errs = append(errs, fmt.Errorf("making the partitions of the next days: %w", err))
	}
	cutoff := now.Add(-s.retention)
	dropped, err = s.dropDaysBefore(ctx, conn, cutoff)
	if err != nil {
		errs = append(errs, err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM track_points WHERE t < $1`, cutoff)
		if err != nil {
			return err
		}
		deleted = tag.RowsAffected()
		_, err = tx.Exec(ctx, `DELETE FROM worker_events WHERE seq IS NOT NULL AND at < $1`, now.Add(-24*time.Hour))
		return err
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("deleting old points: %w", err))
	}
	return dropped, deleted, translate(errors.Join(errs...), "track retention")
}

// dropDaysBefore drops, through conn, the partitions of track_points of days
// wholly before cutoff: each is detached CONCURRENTLY (a detach left
// pending by a crash or a lock timeout is finalized) and then dropped; a
// day's table left detached is dropped. It stops at the first failure,
// most often a lock not granted within trackLockTimeout: the next days
// would wait for the same holder.
func (s *PatrolStore) dropDaysBefore(ctx context.Context, conn *pgxpool.Conn, cutoff time.Time) (int, error) {
	rows, err := conn.Query(ctx, trackTablesSQL)
	if err != nil {
		return 0, fmt.Errorf("listing track partitions: %w", err)
	}
	tables, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (trackTable, error) {
		var t trackTable
		return t, row.Scan(&t.name, &t.attached, &t.detachPending)
	})
	if err != nil {
		return 0, fmt.Errorf("listing track partitions: %w", err)
	}
	dropped := 0
	for _, t := range tables {
		day, err := time.Parse("20060102", strings.TrimPrefix(t.name, "track_points_"))
		if err != nil || day.AddDate(0, 0, 1).After(cutoff) {
			continue // not one of ours, or holds points still kept
		}
		name := pgx.Identifier{t.name}.Sanitize()
		switch {
		case t.detachPending:
			err = ddlTx(ctx, conn, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `ALTER TABLE track_points DETACH PARTITION `+name+` FINALIZE`)
				return err
			})
		case t.attached:
			err = detachConcurrently(ctx, conn, name)
		}
		if err == nil {
			s.days.Delete(day.Unix())
			err = ddlTx(ctx, conn, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+name)
				return err
			})
		}
		if err != nil {
			return dropped, fmt.Errorf("dropping %s (tried again on the next run): %w", t.name, err)
		}
		dropped++
	}
	return dropped, nil
}

// detachConcurrently detaches partition name (sanitized) of track_points
// without blocking its readers and writers. DETACH ... CONCURRENTLY runs
// outside a transaction block, so lock_timeout is set on the session for
// it, and reset after (the connection is closed if that fails). A detach
// that times out waiting for the table's older users stays pending, to be
// finalized by the next run.
func detachConcurrently(ctx context.Context, conn *pgxpool.Conn, name string) error {
	if _, err := conn.Exec(ctx, `SET lock_timeout = '`+trackLockTimeout+`'`); err != nil {
		return err
	}
	_, err := conn.Exec(ctx, `ALTER TABLE track_points DETACH PARTITION `+name+` CONCURRENTLY`)
	if _, rerr := conn.Exec(context.WithoutCancel(ctx), `RESET lock_timeout`); rerr != nil {
		conn.Conn().Close(context.WithoutCancel(ctx))
		return errors.Join(err, rerr)
	}
	return err
}

// FollowRetention runs ExpireTracks every interval until ctx ends, and a
// minute after a run that left something to do.
func (s *PatrolStore) FollowRetention(ctx context.Context, every time.Duration) {
	for {
		next := every
		dropped, deleted, err := s.ExpireTracks(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.db.Logger.Warn("enforcing the track retention failed; trying again later", "err", err)
			next = min(every, time.Minute)
		case dropped > 0 || deleted > 0:
			s.db.Logger.Info("old track points removed", "days_dropped", dropped, "points_deleted", deleted, "retention", s.retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}
