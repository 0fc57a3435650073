-- The live feed (GET /v1/events) in commit order. Ids are drawn when a row
-- is inserted and transactions commit in another order, so a client that
-- resumed after id 11 never got 10 committed later. Instead every report
-- event and boundary change gets a feed number (seq) after its transaction
-- has committed: the feed (postgres.Feed) numbers the rows still without one,
-- in batches serialised by an advisory lock. Writers set nothing: seq is
-- NULL until then.

-- +goose Up
-- One sequence gives ids to both kinds of events and feed numbers to both,
-- above every id given before: within a batch rows are numbered in id order,
-- which across the two tables is the order they were inserted in, and a
-- report event id from before stays a valid place to resume from. It keeps
-- CACHE 1, the default: numbers drawn one batch after another on different
-- connections must grow.
CREATE SEQUENCE feed_ids;
SELECT setval('feed_ids', greatest((SELECT max(id) FROM report_events), (SELECT max(id) FROM layer_changes), 1));
ALTER TABLE report_events ALTER COLUMN id DROP IDENTITY;
ALTER TABLE report_events ALTER COLUMN id SET DEFAULT nextval('feed_ids');
ALTER TABLE layer_changes ALTER COLUMN id DROP IDENTITY;
ALTER TABLE layer_changes ALTER COLUMN id SET DEFAULT nextval('feed_ids');

-- Report events from before count as numbered by their id: seq 0, which
-- PostgreSQL records for the existing rows without rewriting the table.
ALTER TABLE report_events ADD COLUMN seq bigint DEFAULT 0;
ALTER TABLE report_events ALTER COLUMN seq DROP DEFAULT;
CREATE INDEX report_events_feed ON report_events (seq, id) WHERE seq IS NOT NULL;
CREATE INDEX report_events_unnumbered ON report_events (id) WHERE seq IS NULL;

-- Every change is recorded now, people changes too, with the gridmap.Change
-- JSON announced for it (json, so it is served as written). A people change
-- has no area: tile versions, the newest change meeting a tile, ignore it.
-- Changes recorded before have no JSON and are not in the feed.
ALTER TABLE layer_changes ALTER COLUMN area DROP NOT NULL;
ALTER TABLE layer_changes ADD COLUMN change json, ADD COLUMN seq bigint;
CREATE UNIQUE INDEX layer_changes_feed ON layer_changes (seq) WHERE seq IS NOT NULL;
CREATE INDEX layer_changes_unnumbered ON layer_changes (id) WHERE seq IS NULL AND change IS NOT NULL;

-- +goose Down
DROP INDEX layer_changes_unnumbered;
DROP INDEX layer_changes_feed;
ALTER TABLE layer_changes DROP COLUMN seq, DROP COLUMN change;
DELETE FROM layer_changes WHERE area IS NULL;
ALTER TABLE layer_changes ALTER COLUMN area SET NOT NULL;
DROP INDEX report_events_unnumbered;
DROP INDEX report_events_feed;
ALTER TABLE report_events DROP COLUMN seq;
ALTER TABLE layer_changes ALTER COLUMN id DROP DEFAULT;
ALTER TABLE layer_changes ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('layer_changes', 'id'), greatest((SELECT max(id) FROM layer_changes), 1));
ALTER TABLE report_events ALTER COLUMN id DROP DEFAULT;
ALTER TABLE report_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('report_events', 'id'), greatest((SELECT max(id) FROM report_events), 1));
DROP SEQUENCE feed_ids;
