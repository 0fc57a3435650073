-- Indicators of a scoped caller from the daily sums. A caller scoped to a
-- grid sees the reports whose primary chain names it and those it only
-- co-owns (migration 00013). The cells of migration 00021 count the first
-- (the grid's own cells, at its level); this adds a cell level
-- '@co-owned' counting, for each code of a report's scope_codes that its
-- primary chain does not name, the report as co-owned there. A scoped
-- caller's total is then its grid's cells plus its '@co-owned' cells, and
-- its rows the cells of its subtree's grids (postgres/stats_rollup.go
-- says when those are exact). Only reports near a boundary, or outside
-- every grid, have such codes.

-- +goose Up
-- The fold first (a running fold finishes; no other starts until this
-- commits), then the indexes (they block neither intake nor edits for
-- long), then writers of facts wait while the new trigger function is put
-- in place and the cells of the facts stored before are written: a report
-- filed meanwhile by the old function would have no co-owned cells.
SELECT pg_advisory_xact_lock(29117736998104172); -- postgres.rollupFoldLockID

-- Every version's parent, for a grid's subtree over its history.
CREATE INDEX grid_versions_parent ON grid_versions (layer_id, parent_code);
-- One grid's cells over a window (a scoped caller's), without reading
-- every grid of its level.
CREATE INDEX report_rollup_code ON report_rollup (layer_id, level, code, day);

LOCK TABLE report_facts IN SHARE ROW EXCLUSIVE MODE;

-- report_rollup_cells is what the facts of one report add to the sums: a
-- cell for every report ('*'), for each grid of its primary chain, for
-- each of its departments, and for each code of its scope_codes that its
-- primary chain does not name ('@co-owned'). The function of migration
-- 00021 (without scope_codes) stays for a server of the previous release
-- still answering during an upgrade.
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

-- The co-owned cells of the facts stored before, straight into the cells.
INSERT INTO report_rollup (layer_id, level, code, category, day, status, due_day, n, registered, closed, closed_on_time,
    registered_closed, resolved, reworked, extended, suspended, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, h20, h21, h22, h23, h24, h25, h26, h27, h28, h29, h30, h31, h32, h33, h34, h35, h36, h37, h38, h39, h40, h41, h42, h43, h44, h45, h46, h47)
SELECT c.layer_id, c.level, c.code, c.category, c.day, c.status, c.due_day, sum(c.n), sum(c.registered), sum(c.closed),
    sum(c.closed_on_time), sum(c.registered_closed), sum(c.resolved), sum(c.reworked), sum(c.extended), sum(c.suspended),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 0), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 1), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 2), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 3), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 4), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 5), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 6), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 7), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 8), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 9), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 10), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 11), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 12), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 13), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 14), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 15), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 16), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 17), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 18), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 19), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 20), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 21), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 22), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 23), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 24), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 25), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 26), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 27), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 28), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 29), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 30), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 31), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 32), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 33), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 34), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 35), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 36), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 37), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 38), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 39), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 40), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 41), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 42), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 43), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 44), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 45), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 46), 0),
    coalesce(sum(c.n) FILTER (WHERE c.hb = 47), 0)
FROM report_facts f CROSS JOIN LATERAL report_rollup_cells(f.layer_id, f.reported_at, f.category, f.chain, f.scope_codes, f.departments, f.status, f.due_at, f.closed_at, f.registered, f.closed_on_time, f.resolved, f.reworked, f.extended, f.suspended) c
-- (The function is inlined, and of its cells only the co-owned are made.)
WHERE c.level = '@co-owned'
GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- +goose Down
SELECT pg_advisory_xact_lock(29117736998104172); -- postgres.rollupFoldLockID
LOCK TABLE report_facts IN SHARE ROW EXCLUSIVE MODE;
DROP INDEX report_rollup_code;
DROP INDEX grid_versions_parent;
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

DELETE FROM report_rollup_delta WHERE level = '@co-owned';
DELETE FROM report_rollup WHERE level = '@co-owned';
DROP FUNCTION report_rollup_cells(text, timestamptz, text, jsonb, text[], text[], text, timestamptz, timestamptz, boolean, boolean, boolean,
    boolean, boolean, boolean);
