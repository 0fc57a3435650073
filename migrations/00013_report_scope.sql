-- Jurisdiction: a scoped caller sees the reports whose primary grid or a
-- co-owner lies in its subtree, that is whose owners' chains name its grid.
-- scope_codes lists every code of those chains, as gridmap.ReportScopeCodes
-- computes them whenever an assignment is written; a GIN index over it
-- answers "reports in the subtree of X" without reading the others.

-- +goose Up
ALTER TABLE reports ADD COLUMN scope_codes text[] NOT NULL DEFAULT '{}';
-- Reports stored before: the same codes, read from their assignment.
UPDATE reports SET scope_codes = ARRAY(SELECT DISTINCT c FROM jsonb_array_elements_text(
    jsonb_path_query_array(assignment, '$.primary.chain[*].code')
    || jsonb_path_query_array(assignment, '$.co_owners[*].chain[*].code')) c ORDER BY c);
CREATE INDEX reports_scope ON reports USING gin (scope_codes);

-- +goose Down
DROP INDEX reports_scope;
ALTER TABLE reports DROP COLUMN scope_codes;
