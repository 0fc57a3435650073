-- Search: grid names by substring and codes by prefix, both through
-- trigram indexes (which answer LIKE with a pattern known only when the
-- statement runs, as prepared statements need); reports by external id
-- prefix.

-- +goose Up
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX grid_versions_current_name_trgm ON grid_versions USING gin (name gin_trgm_ops) WHERE valid_to IS NULL;
CREATE INDEX grid_versions_current_code_trgm ON grid_versions USING gin (code gin_trgm_ops) WHERE valid_to IS NULL;
CREATE INDEX reports_external_prefix ON reports (external_id text_pattern_ops);

-- +goose Down
DROP INDEX reports_external_prefix;
DROP INDEX grid_versions_current_code_trgm;
DROP INDEX grid_versions_current_name_trgm;
