-- The reports as an OGC API collection: a department's GIS pulls the
-- reports of a time window (datetime over reported_at), and the
-- collection's temporal extent is the first and last reported_at. Built
-- CONCURRENTLY, outside a transaction, so that intake goes on meanwhile.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS reports_reported ON reports (reported_at, id);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS reports_reported;
