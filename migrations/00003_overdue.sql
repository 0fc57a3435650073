-- Overdue escalation: the deadline a report was last escalated for, so the
-- job fires once per deadline (an extension sets a new one) however many
-- instances run it and however often they restart.

-- +goose Up
ALTER TABLE reports ADD COLUMN escalated_due_at timestamptz;
CREATE INDEX reports_overdue ON reports (due_at) WHERE status NOT IN ('closed', 'rejected', 'suspended');

-- +goose Down
DROP INDEX reports_overdue;
ALTER TABLE reports DROP COLUMN escalated_due_at;
