package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Reports live in one partition of reports per UTC month of receipt, keyed
// by id (migration 00030, whose report_month_make holds the partitions'
// names and bounds). FollowMonths makes the current month's partition and
// the next reportMonthsAhead months' ahead of time, so that intake finds
// its month made; intake makes one only when none is there (the job has
// not run since the month began), and then stores the report as if
// nothing had happened. Making a partition waits at most trackLockTimeout
// for its locks (ddlTx): while it waits, every writer of reports queues
// behind it.

// reportMonthsAhead is how many months after the current one
// FollowMonths makes partitions for.
const reportMonthsAhead = 2

// reportMonthsLockID is the advisory lock under which months are made:
// one maker at a time, across instances too.
const reportMonthsLockID = 0x6772_6964_726d_6f6e // "gridrmon"

// MakeMonths makes the partitions of reports of the months (UTC) of the
// times that have none. Returns how many it made, and the database's
// error: SQLSTATE 55P03 when a lock was not granted within
// trackLockTimeout.
func (s *ReportStore) MakeMonths(ctx context.Context, times ...time.Time) (made int, err error) {
	err = ddlTx(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(reportMonthsLockID)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE report_month_make(t)) FROM unnest($1::timestamptz[]) t`, times).Scan(&made)
	})
	return made, err
}

// FollowMonths makes the partitions of the current month and the next
// reportMonthsAhead months every interval until ctx ends, and a minute
// after a run that failed; and analyzes reports once a UTC day.
func (s *ReportStore) FollowMonths(ctx context.Context, interval time.Duration) {
	var analyzed time.Time
	for {
		next := interval
		now := time.Now().UTC()
		months := make([]time.Time, 0, reportMonthsAhead+1)
		for i := range reportMonthsAhead + 1 {
			months = append(months, time.Date(now.Year(), now.Month()+time.Month(i), 1, 0, 0, 0, 0, time.UTC))
		}
		made, err := s.MakeMonths(ctx, months...)
		switch {
		case err != nil && ctx.Err() == nil:
			s.db.Logger.Warn("making the report partitions of the next months failed; trying again in a minute", "err", err)
			next = min(interval, time.Minute)
		case made > 0:
			s.db.Logger.Info("report partitions made", "months", made)
		}
		// Autovacuum analyzes each month but never reports as a whole,
		// whose statistics the planner reads for joins: once a day, by one
		// instance at a time.
		if day := now.Truncate(24 * time.Hour); err == nil && day.After(analyzed) {
			if err := s.analyzeReports(ctx); err != nil && ctx.Err() == nil {
				s.db.Logger.Warn("analyzing reports failed; trying again in an hour", "err", err)
			} else {
				analyzed = day
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// reportMonthsFirst is report_months_first() of migration 00030: the
// first id of any month; the reports from before months lie below it.
const reportMonthsFirst = 100_000_000_000_000

// reportTable names the partition of reports holding report id: that of
// its month (reports_202612 for 202612000000042), or reports_before.
// Statements that read or write one report by id name it instead of
// reports: on a statement naming reports, PostgreSQL 15 either plans the
// statement again each time, pruning the other months, or keeps a plan
// that locks every month whenever it runs, and either costs more with
// every month kept (a report read by id: 2.3 times the time with 40
// months). An id of a month without a partition names no table (42P01):
// noReport.
func reportTable(id int64) string {
	if id < reportMonthsFirst {
		return "reports_before"
	}
	return "reports_" + strconv.FormatInt(id/1_000_000_000, 10)
}

// onReport is statement with {report} replaced by reportTable(id).
func onReport(statement string, id int64) string {
	return strings.ReplaceAll(statement, "{report}", reportTable(id))
}

// noReport reports whether err is what a statement of onReport(..., id)
// returns for an id no report has: no row, or no partition for the id's
// month (42P01 naming that partition, not another table).
func noReport(err error, id int64) bool {
	var pgErr *pgconn.PgError
	return errors.Is(err, pgx.ErrNoRows) ||
		errors.As(err, &pgErr) && pgErr.Code == "42P01" && strings.Contains(pgErr.Message, reportTable(id))
}

// reportsFromSQL is the condition that the report of id may have been
// reported at from (a timestamptz; NULL for any time) or later: it is one
// of the reports from before months, or of a month from
// report_month_from(from) on (migration 00030). A statement reading a
// window adds it beside its reported_at >= from, so that PostgreSQL leaves
// the months before out of the plan.
func reportsFromSQL(id, from string) string {
	return "(" + id + " < report_months_first() OR " + id + " >= report_month_from(" + from + "))"
}

// analyzeReports analyzes reports (on PostgreSQL 15, every month with it),
// without the pool's statement timeout, unless another instance is
// analyzing them now.
func (s *ReportStore) analyzeReports(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		var mine bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(reportAnalyzeLockID)).Scan(&mine); err != nil || !mine {
			return err
		}
		_, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0; ANALYZE reports`)
		return err
	})
}

// reportAnalyzeLockID is the advisory lock analyzeReports holds.
const reportAnalyzeLockID = 0x6772_6964_7261_6e61 // "gridrana"

// isNoMonth reports whether err is an insert into reports that found no
// partition for its id: the month the database's clock is in has none.
// (Told by its fields, not its message, which the server may translate:
// a CHECK constraint's violation names the constraint.)
func isNoMonth(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && pgErr.TableName == "reports" && pgErr.ConstraintName == ""
}

// makeCurrentMonth makes the partition of reports of the month the
// database's clock is in, for an intake that found none. EUNAVAILABLE
// when reports stayed locked past trackLockTimeout.
func (s *ReportStore) makeCurrentMonth(ctx context.Context) error {
	var now time.Time
	if err := s.db.Pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return translate(err, "report partitions")
	}
	made, err := s.MakeMonths(ctx, now)
	if isSQLState(err, lockNotAvailable) {
		return &gridmap.Error{Code: gridmap.EUNAVAILABLE, RetryAfter: 30 * time.Second,
			Message: "the report store is busy making room for this month's reports; nothing was stored: send the report again in a minute (the same external_id is safe)"}
	} else if err != nil {
		return translate(err, "report partitions")
	}
	if made > 0 {
		s.db.Logger.Info("report partition made by intake", "month", now.UTC().Format("2006-01"))
	}
	return nil
}
