-- Indicators of a scoped caller from the daily sums. A caller scoped to a
-- grid sees the reports whose primary chain names it and those it only
-- co-owns (migration 00013). The cells of migration 00021 count the first
-- (the grid's own cells, at its level); this adds a cell level
-- '@co-owned' counting, for each code of a report's scope_codes that its
-- primary chain does not name, the report as co-owned there. A scoped
-- caller's total is then its grid's cells plus its '@co-owned' cells, and
-- its rows the cells of its subtree's grids (postgres/stats_rollup.go
-- says when those are exact). Reports near a boundary are the only ones
-- with such codes, so the sums grow by a few per cent.

-- +goose Up
-- report_rollup_cells is what the facts of one report add to the sums: a
-- cell for every report ('*'), for each grid of its primary chain, for
-- each of its departments, and for each code of its scope_codes that its
-- primary chain does not name ('@co-owned').
-- +goose StatementBegin
CREATE FUNCTION report_rollup_cells(f_layer_id text, f_reported_at timestamptz, f_category text, f_chain jsonb, f_scope_codes text[], f_departments text[],
    f_status text, f_due_at timestamptz, f_closed_at timestamptz, f_registered boolean, f_closed_on_time boolean, f_resolved boolean,
    f_reworked boolean, f_extended boolean, f_suspended boolean) RETURNS TABLE (
    layer_id text, level text, code text, category text, day date, status text, due_day date, hb smallint,
    n integer, registered integer, closed integer, closed_on_time integer, registered_closed integer,
    resolved integer, reworked integer, extended integer, suspended integer)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(f_layer_id, ''), k.level, k.code, f_category, (f_reported_at AT TIME ZONE 'UTC')::date,
        CASE WHEN f_closed_at IS NULL THEN f_status ELSE '' END,
        CASE WHEN f_closed_at IS NULL THEN (f_due_at AT TIME ZONE 'UTC')::date ELSE '-infinity'::date END,
        report_handling_bin(f_reported_at, f_closed_at),
        1, f_registered::int, (f_closed_at IS NOT NULL)::int, f_closed_on_time::int, (f_registered AND f_closed_at IS NOT NULL)::int,
        f_resolved::int, f_reworked::int, f_extended::int, f_suspended::int
    FROM (SELECT '*' AS level, '' AS code
          UNION ALL SELECT e.key, e.value FROM jsonb_each_text(f_chain) e
          UNION ALL SELECT DISTINCT '#department', d FROM unnest(f_departments) d
          UNION ALL SELECT DISTINCT '@co-owned', s FROM unnest(f_scope_codes) s
              WHERE NOT EXISTS (SELECT FROM jsonb_each_text(f_chain) e WHERE e.value = s)) k
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION report_rollup_append() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- INSERT ... ON CONFLICT DO UPDATE (every event but a report's first)
    -- fires the INSERT and the UPDATE triggers, one of them with nothing.
    IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (SELECT FROM new_facts) THEN
            RETURN NULL;
        END IF;
        INSERT INTO report_rollup_delta
        SELECT c.layer_id, c.level, c.code, c.category, c.day, c.status, c.due_day, c.hb, sum(c.n), sum(c.registered), sum(c.closed),
            sum(c.closed_on_time), sum(c.registered_closed), sum(c.resolved), sum(c.reworked), sum(c.extended), sum(c.suspended)
        FROM new_facts f CROSS JOIN LATERAL report_rollup_cells(f.layer_id, f.reported_at, f.category, f.chain, f.scope_codes, f.departments, f.status, f.due_at, f.closed_at, f.registered, f.closed_on_time, f.resolved, f.reworked, f.extended, f.suspended) c
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
    ELSIF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT FROM old_facts) THEN
            RETURN NULL;
        END IF;
        INSERT INTO report_rollup_delta
        SELECT c.layer_id, c.level, c.code, c.category, c.day, c.status, c.due_day, c.hb, -sum(c.n), -sum(c.registered), -sum(c.closed),
            -sum(c.closed_on_time), -sum(c.registered_closed), -sum(c.resolved), -sum(c.reworked), -sum(c.extended), -sum(c.suspended)
        FROM old_facts f CROSS JOIN LATERAL report_rollup_cells(f.layer_id, f.reported_at, f.category, f.chain, f.scope_codes, f.departments, f.status, f.due_at, f.closed_at, f.registered, f.closed_on_time, f.resolved, f.reworked, f.extended, f.suspended) c
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
    ELSE
        IF NOT EXISTS (SELECT FROM new_facts) THEN
            RETURN NULL;
        END IF;
        INSERT INTO report_rollup_delta
        SELECT c.layer_id, c.level, c.code, c.category, c.day, c.status, c.due_day, c.hb, sum(s * c.n), sum(s * c.registered),
            sum(s * c.closed), sum(s * c.closed_on_time), sum(s * c.registered_closed), sum(s * c.resolved), sum(s * c.reworked),
            sum(s * c.extended), sum(s * c.suspended)
        FROM (SELECT n.*, 1 AS s FROM new_facts n UNION ALL SELECT o.*, -1 FROM old_facts o) f CROSS JOIN LATERAL report_rollup_cells(f.layer_id, f.reported_at, f.category, f.chain, f.scope_codes, f.departments, f.status, f.due_at, f.closed_at, f.registered, f.closed_on_time, f.resolved, f.reworked, f.extended, f.suspended) c
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
        HAVING sum(s * c.n) <> 0 OR sum(s * c.registered) <> 0 OR sum(s * c.closed) <> 0 OR sum(s * c.closed_on_time) <> 0
            OR sum(s * c.registered_closed) <> 0 OR sum(s * c.resolved) <> 0 OR sum(s * c.reworked) <> 0
            OR sum(s * c.extended) <> 0 OR sum(s * c.suspended) <> 0;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

DROP FUNCTION report_rollup_cells(text, timestamptz, text, jsonb, text[], text, timestamptz, timestamptz, boolean, boolean, boolean,
    boolean, boolean, boolean);

-- The co-owned cells of the facts stored before, as deltas: the next fold
-- moves them into their cells, and the indicators read deltas too.
INSERT INTO report_rollup_delta
SELECT c.layer_id, c.level, c.code, c.category, c.day, c.status, c.due_day, c.hb, sum(c.n), sum(c.registered), sum(c.closed),
    sum(c.closed_on_time), sum(c.registered_closed), sum(c.resolved), sum(c.reworked), sum(c.extended), sum(c.suspended)
FROM report_facts f CROSS JOIN LATERAL report_rollup_cells(f.layer_id, f.reported_at, f.category, f.chain, f.scope_codes, f.departments, f.status, f.due_at, f.closed_at, f.registered, f.closed_on_time, f.resolved, f.reworked, f.extended, f.suspended) c
WHERE c.level = '@co-owned'
    AND EXISTS (SELECT FROM unnest(f.scope_codes) s WHERE NOT EXISTS (SELECT FROM jsonb_each_text(f.chain) e WHERE e.value = s))
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

-- Every version's parent, for a grid's subtree over its history.
CREATE INDEX grid_versions_parent ON grid_versions (layer_id, parent_code);

-- +goose Down
DROP INDEX grid_versions_parent;
DELETE FROM report_rollup_delta WHERE level = '@co-owned';
DELETE FROM report_rollup WHERE level = '@co-owned';
-- +goose StatementBegin
CREATE FUNCTION report_rollup_cells(f_layer_id text, f_reported_at timestamptz, f_category text, f_chain jsonb, f_departments text[],
    f_status text, f_due_at timestamptz, f_closed_at timestamptz, f_registered boolean, f_closed_on_time boolean, f_resolved boolean,
    f_reworked boolean, f_extended boolean, f_suspended boolean) RETURNS TABLE (
    layer_id text, level text, code text, category text, day date, status text, due_day date, hb smallint,
    n integer, registered integer, closed integer, closed_on_time integer, registered_closed integer,
    resolved integer, reworked integer, extended integer, suspended integer)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(f_layer_id, ''), k.level, k.code, f_category, (f_reported_at AT TIME ZONE 'UTC')::date,
        CASE WHEN f_closed_at IS NULL THEN f_status ELSE '' END,
        CASE WHEN f_closed_at IS NULL THEN (f_due_at AT TIME ZONE 'UTC')::date ELSE '-infinity'::date END,
        report_handling_bin(f_reported_at, f_closed_at),
        1, f_registered::int, (f_closed_at IS NOT NULL)::int, f_closed_on_time::int, (f_registered AND f_closed_at IS NOT NULL)::int,
        f_resolved::int, f_reworked::int, f_extended::int, f_suspended::int
    FROM (SELECT '*' AS level, '' AS code
          UNION ALL SELECT e.key, e.value FROM jsonb_each_text(f_chain) e
          UNION ALL SELECT DISTINCT '#department', d FROM unnest(f_departments) d) k
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION report_rollup_append() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- INSERT ... ON CONFLICT DO UPDATE (every event but a report's first)
    -- fires the INSERT and the UPDATE triggers, one of them with nothing.
    IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (SELECT FROM new_facts) THEN
            RETURN NULL;
        END IF;
        INSERT INTO report_rollup_delta
        SELECT c.layer_id, c.level, c.code, c.category, c.day, c.status, c.due_day, c.hb, sum(c.n), sum(c.registered), sum(c.closed),
            sum(c.closed_on_time), sum(c.registered_closed), sum(c.resolved), sum(c.reworked), sum(c.extended), sum(c.suspended)
        FROM new_facts f CROSS JOIN LATERAL report_rollup_cells(f.layer_id, f.reported_at, f.category, f.chain, f.departments, f.status, f.due_at, f.closed_at, f.registered, f.closed_on_time, f.resolved, f.reworked, f.extended, f.suspended) c
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
    ELSIF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT FROM old_facts) THEN
            RETURN NULL;
        END IF;
        INSERT INTO report_rollup_delta
        SELECT c.layer_id, c.level, c.code, c.category, c.day, c.status, c.due_day, c.hb, -sum(c.n), -sum(c.registered), -sum(c.closed),
            -sum(c.closed_on_time), -sum(c.registered_closed), -sum(c.resolved), -sum(c.reworked), -sum(c.extended), -sum(c.suspended)
        FROM old_facts f CROSS JOIN LATERAL report_rollup_cells(f.layer_id, f.reported_at, f.category, f.chain, f.departments, f.status, f.due_at, f.closed_at, f.registered, f.closed_on_time, f.resolved, f.reworked, f.extended, f.suspended) c
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
    ELSE
        IF NOT EXISTS (SELECT FROM new_facts) THEN
            RETURN NULL;
        END IF;
        INSERT INTO report_rollup_delta
        SELECT c.layer_id, c.level, c.code, c.category, c.day, c.status, c.due_day, c.hb, sum(s * c.n), sum(s * c.registered),
            sum(s * c.closed), sum(s * c.closed_on_time), sum(s * c.registered_closed), sum(s * c.resolved), sum(s * c.reworked),
            sum(s * c.extended), sum(s * c.suspended)
        FROM (SELECT n.*, 1 AS s FROM new_facts n UNION ALL SELECT o.*, -1 FROM old_facts o) f CROSS JOIN LATERAL report_rollup_cells(f.layer_id, f.reported_at, f.category, f.chain, f.departments, f.status, f.due_at, f.closed_at, f.registered, f.closed_on_time, f.resolved, f.reworked, f.extended, f.suspended) c
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
        HAVING sum(s * c.n) <> 0 OR sum(s * c.registered) <> 0 OR sum(s * c.closed) <> 0 OR sum(s * c.closed_on_time) <> 0
            OR sum(s * c.registered_closed) <> 0 OR sum(s * c.resolved) <> 0 OR sum(s * c.reworked) <> 0
            OR sum(s * c.extended) <> 0 OR sum(s * c.suspended) <> 0;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

DROP FUNCTION report_rollup_cells(text, timestamptz, text, jsonb, text[], text[], text, timestamptz, timestamptz, boolean, boolean, boolean,
    boolean, boolean, boolean);
