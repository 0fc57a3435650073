-- The dispatcher console's report list: the reports a caller acted on
-- (mine) are found by the actor of their events, alone ("user:li") or
-- acting for someone ("token:cad for operator 12"): an equality and a
-- prefix range on actor, in text_pattern_ops so that the range reads the
-- index whatever the database's collation. The deadline order (due_at, id)
-- walks an index instead of sorting every report a filter selects.

-- +goose Up
CREATE INDEX report_events_actor ON report_events (actor text_pattern_ops, report_id);
CREATE INDEX reports_due ON reports (due_at, id);

-- +goose Down
DROP INDEX reports_due;
DROP INDEX report_events_actor;
