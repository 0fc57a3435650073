-- Overdue escalation finds reports by the next deadline they escalate at,
-- which the workflow computes (dispatch.NextDeadline) and writes with every
-- report event; the query compares times and knows no rule about statuses
-- or about which deadline comes first.

-- +goose Up
ALTER TABLE reports ADD COLUMN deadline_at timestamptz;
-- Reports stored before: the earliest of the overall and the step deadline
-- not yet escalated for, for reports that still wait on one.
UPDATE reports SET deadline_at = (
    SELECT min(d) FROM (VALUES (due_at), ((assignment->>'step_due_at')::timestamptz)) v (d)
    WHERE d IS NOT NULL AND (escalated_due_at IS NULL OR d > escalated_due_at))
WHERE status NOT IN ('closed', 'rejected', 'suspended');
CREATE INDEX reports_deadline ON reports (deadline_at) WHERE deadline_at IS NOT NULL;

-- +goose Down
DROP INDEX reports_deadline;
ALTER TABLE reports DROP COLUMN deadline_at;
