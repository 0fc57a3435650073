package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
)

// overdueBatch is how many overdue reports one transaction escalates.
const overdueBatch = 100

// EscalateOverdue escalates every report whose next deadline (its overall
// deadline or its step's, whichever comes first and has not fired yet:
// dispatch.NextDeadline) has passed: the tier goes up one step and the
// report's departments are called in, each with a report-in task (吹哨), by
// actor "overdue", once per deadline. Suspended and done reports wait for
// no deadline. Rows are claimed with SKIP LOCKED, so concurrent instances
// never fire twice for one deadline. Returns how many reports it escalated.
func (s *ReportStore) EscalateOverdue(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		n, err := s.escalateBatch(ctx, now)
		total += n
		if err != nil || n < overdueBatch {
			return total, err
		}
	}
}

func (s *ReportStore) escalateBatch(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+stateColumns+`, r.deadline_at FROM reports r
			WHERE r.deadline_at < $1 ORDER BY r.deadline_at LIMIT $2 FOR UPDATE OF r SKIP LOCKED`, now, overdueBatch)
		if err != nil {
			return err
		}
		type due struct {
			*lockedReport
			deadline time.Time
		}
		var overdue []due
		for rows.Next() {
			var d due
			var err error
			if d.lockedReport, err = scanLocked(rowWith{rows, &d.deadline}); err != nil {
				rows.Close()
				return err
			}
			overdue = append(overdue, d)
		}
		if err := rows.Err(); err != nil || len(overdue) == 0 {
			return err
		}
		cal, err := readCalendar(ctx, tx, s.tz, now)
		if err != nil {
			return err
		}
		for _, d := range overdue {
			out, err := dispatch.Apply(d.state, dispatch.Move{Action: dispatch.ActionEscalate, At: now, Category: d.category,
				Urgent: d.urgent, Calendar: cal, Deadline: &d.deadline})
			if err != nil {
				return err
			}
			e := &gridmap.ReportEvent{Action: dispatch.ActionEscalate, From: d.state.Status, To: out.State.Status,
				Actor: "overdue", Note: out.Note, Departments: out.Departments}
			if err := recordEvent(ctx, tx, d.id, nil, e, &out, d.about); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, translate(err, "overdue escalation")
	}
	return n, nil
}

// rowWith scans a row whose last column goes to extra, after the columns
// its caller scans.
type rowWith struct {
	pgx.Row
	extra any
}

func (r rowWith) Scan(dest ...any) error { return r.Row.Scan(append(dest, r.extra)...) }

// FollowOverdue escalates overdue reports every interval until ctx ends.
func (s *ReportStore) FollowOverdue(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.EscalateOverdue(ctx, time.Now()); err != nil {
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return
			}
			s.db.Logger.Warn("overdue escalation failed; retrying", "err", err)
		} else if n > 0 {
			s.db.Logger.Info("overdue reports escalated", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
