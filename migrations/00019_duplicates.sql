-- Probable duplicates and recurring problems (类事). A category says how
-- near in metres and in hours a new report must be to an open report of
-- the same category to be linked to it as a probable duplicate (0 in
-- either turns linking off); the link is stored with the report at intake
-- and never dropped. Linking reads the reports_location gist index; the
-- originals list their duplicates through reports_duplicate_of.
-- Linking is off (distance 0) until a category sets a distance: intake
-- pays for it only where a deployment asks. Outside a transaction, so
-- that the index is built CONCURRENTLY while intake goes on; each step
-- can be run again.

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE categories
    ADD COLUMN IF NOT EXISTS duplicate_within_m double precision NOT NULL DEFAULT 0
        CHECK (duplicate_within_m >= 0 AND duplicate_within_m <= 500),
    ADD COLUMN IF NOT EXISTS duplicate_within_hours double precision NOT NULL DEFAULT 72
        CHECK (duplicate_within_hours >= 0 AND duplicate_within_hours <= 8760);
ALTER TABLE reports ADD COLUMN IF NOT EXISTS duplicate_of bigint REFERENCES reports (id) ON DELETE SET NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS reports_duplicate_of ON reports (duplicate_of) WHERE duplicate_of IS NOT NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS reports_duplicate_of;
ALTER TABLE reports DROP COLUMN duplicate_of;
ALTER TABLE categories DROP COLUMN duplicate_within_hours, DROP COLUMN duplicate_within_m;
