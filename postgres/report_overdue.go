package postgres

import (
	"context"
	"time"
)

// EscalateOverdue raises the tier of every open report past a deadline
// (its overall due_at, or the due time of the step it waits for) by one
// step (吹哨), once per deadline, with an escalate event by "overdue".
// Suspended reports wait. Rows are claimed with SKIP LOCKED and marked with
// the deadline they fired for in the same statement, so concurrent
// instances never fire twice for one deadline. Returns how many reports it
// escalated.
func (s *ReportStore) EscalateOverdue(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.db.Pool.QueryRow(ctx, `WITH open AS (
		  SELECT id, status, tier, least(due_at, (assignment->>'step_due_at')::timestamptz) AS deadline,
		         CASE WHEN (assignment->>'step_due_at')::timestamptz < due_at THEN assignment->>'next_step' END AS step
		  FROM reports
		  WHERE status NOT IN ('closed', 'rejected', 'suspended') AND due_at IS NOT NULL),
		due AS (
		  SELECT o.* FROM open o JOIN reports r ON r.id = o.id
		  WHERE o.deadline < $1 AND r.escalated_due_at IS DISTINCT FROM o.deadline
		  ORDER BY o.deadline LIMIT 1000 FOR UPDATE OF r SKIP LOCKED),
		up AS (
		  UPDATE reports r SET escalated_due_at = due.deadline, updated_at = now(),
		    tier = CASE r.tier WHEN 'grid' THEN 'street' WHEN 'street' THEN 'district' ELSE 'city' END,
		    assignment = jsonb_set(r.assignment, '{tier}',
		      to_jsonb(CASE r.tier WHEN 'grid' THEN 'street' WHEN 'street' THEN 'district' ELSE 'city' END))
		  FROM due WHERE r.id = due.id
		  RETURNING r.id, r.status, r.tier, due.deadline, due.step),
		ev AS (
		  INSERT INTO report_events (report_id, action, from_status, to_status, actor, note)
		  SELECT id, 'escalate', status, status, 'overdue',
		         'past its ' || coalesce(step || ' step ', '') || 'deadline of ' || to_char(deadline AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') ||
		         ' UTC: escalated to the ' || tier || ' tier'
		  FROM up RETURNING report_id),
		n AS (SELECT CASE WHEN count(*) > 0 THEN pg_notify($2, report_boxes(array_agg(report_id))) END FROM ev)
		SELECT count(*) FROM up, n`, now, ReportChannel).Scan(&n)
	return n, translate(err, "overdue escalation")
}

// FollowOverdue escalates overdue reports every interval until ctx ends.
func (s *ReportStore) FollowOverdue(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.EscalateOverdue(ctx, time.Now()); err != nil {
			if ctx.Err() != nil {
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
