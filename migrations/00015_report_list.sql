-- The dispatcher console's report list: the reports a caller acted on
-- (mine) are found by the actor of their events, alone ("user:li") or
-- acting for someone ("token:cad for operator 12"): an equality and a
-- prefix range on actor, in text_pattern_ops so that the range reads the
-- index whatever the database's collation; only the first 128 characters
-- of an actor are indexed (a system may name a long one; a caller's own is
-- short). The deadline order (due_at, id) walks an index instead of
-- sorting every report a filter selects. Built CONCURRENTLY, outside a
-- transaction, so that intake goes on while a large table is indexed.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS report_events_actor ON report_events (left(actor, 128) text_pattern_ops, report_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS reports_due ON reports (due_at, id);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS reports_due;
DROP INDEX CONCURRENTLY IF EXISTS report_events_actor;
