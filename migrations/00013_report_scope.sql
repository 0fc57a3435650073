-- Jurisdiction: a scoped caller sees the reports whose primary grid or a
-- co-owner lies in its subtree, that is whose owners' chains name its grid.
-- report_scope_codes lists every code of those chains; a GIN index over it
-- answers "reports in the subtree of X" without reading the others. It is
-- the SQL side of gridmap.Scope.HoldsReport (a test holds the two equal).

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION report_scope_codes(assignment jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_path_query_array(assignment, '$.primary.chain[*].code')
        || jsonb_path_query_array(assignment, '$.co_owners[*].chain[*].code')
$$;
-- +goose StatementEnd
CREATE INDEX reports_scope ON reports USING gin (report_scope_codes(assignment));

-- +goose Down
DROP INDEX reports_scope;
DROP FUNCTION report_scope_codes(jsonb);
