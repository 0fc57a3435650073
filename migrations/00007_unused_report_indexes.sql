-- Two indexes no query uses: the overdue job compares the earlier of the
-- overall and step deadlines, and report lists filter on reported_at and
-- page by id. Every intake paid to maintain them.

-- +goose Up
DROP INDEX reports_overdue;
DROP INDEX reports_received;

-- +goose Down
CREATE INDEX reports_received ON reports (received_at, id);
CREATE INDEX reports_overdue ON reports (due_at) WHERE status NOT IN ('closed', 'rejected', 'suspended');
