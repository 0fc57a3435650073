-- Indicators over long windows (GET /v1/stats): the facts of migration
-- 00018 summed per day, per grid of every level, per department and in
-- total, so that a year of a district reads a few thousand sums instead of
-- a million facts.
--
-- The sums stay exact and current without a hot row: a statement-level
-- trigger on report_facts appends what each statement changed to
-- report_rollup_delta (the new facts counted, the old ones taken back),
-- in the same transaction; a job folds the deltas into report_rollup
-- (postgres/stats_rollup.go), and the indicators read both. Concurrent
-- intakes never wait on each other's sums: they only append.
--
-- A cell is (layer, level, code, category, UTC day of reported_at) and,
-- for a report not closed, its status and the UTC day of its due_at, so
-- that "overdue now" is a sum too (cells due before today, plus the
-- facts due earlier today). Level '*' (code '') holds every report of
-- the layer, '#department' each department of a report's assignment.
-- Handling times (closed_at - reported_at) are counted in 48 bins
-- (report_handling_bin), from which the median is interpolated.

-- +goose Up

-- report_handling_bin is the bin of the handling time of a report reported
-- at r and closed at c (NULL while not closed): 0 below 5 minutes, then
-- bin k holds [300 * 1.25^(k-1), 300 * 1.25^k) seconds, the last (47)
-- everything from about 100 days on (300 * 1.25^46 s). gridmap.HandlingBin
-- states the same bounds for the median.
-- +goose StatementBegin
CREATE FUNCTION report_handling_bin(r timestamptz, c timestamptz) RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN c IS NULL THEN NULL
                WHEN extract(epoch FROM c - r) < 300 THEN 0
                ELSE least(47, 1 + floor(ln(extract(epoch FROM c - r)::float8 / 300) / ln(1.25)))::smallint END
$$;
-- +goose StatementEnd

-- report_rollup_cells is what the facts of one report (its columns of
-- report_facts) add to the sums: a cell
-- for every report ('*'), for each grid of its primary chain and for each
-- of its departments.
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

CREATE TABLE report_rollup_delta (
    layer_id          text NOT NULL,
    level             text NOT NULL,
    code              text NOT NULL,
    category          text NOT NULL,
    day               date NOT NULL,
    status            text NOT NULL,
    due_day           date NOT NULL,
    hb                smallint,
    n                 integer NOT NULL,
    registered        integer NOT NULL,
    closed            integer NOT NULL,
    closed_on_time    integer NOT NULL,
    registered_closed integer NOT NULL,
    resolved          integer NOT NULL,
    reworked          integer NOT NULL,
    extended          integer NOT NULL,
    suspended         integer NOT NULL
);
-- Every fold deletes what intake appended: vacuumed often, the table stays
-- a few pages long however many reports pass through it.
ALTER TABLE report_rollup_delta SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000);

CREATE TABLE report_rollup (
    layer_id          text NOT NULL,
    level             text NOT NULL,
    code              text NOT NULL,
    category          text NOT NULL,
    day               date NOT NULL,
    status            text NOT NULL,
    due_day           date NOT NULL,
    n                 integer NOT NULL,
    registered        integer NOT NULL,
    closed            integer NOT NULL,
    closed_on_time    integer NOT NULL,
    registered_closed integer NOT NULL,
    resolved          integer NOT NULL,
    reworked          integer NOT NULL,
    extended          integer NOT NULL,
    suspended         integer NOT NULL,
    h0 integer NOT NULL DEFAULT 0,
    h1 integer NOT NULL DEFAULT 0,
    h2 integer NOT NULL DEFAULT 0,
    h3 integer NOT NULL DEFAULT 0,
    h4 integer NOT NULL DEFAULT 0,
    h5 integer NOT NULL DEFAULT 0,
    h6 integer NOT NULL DEFAULT 0,
    h7 integer NOT NULL DEFAULT 0,
    h8 integer NOT NULL DEFAULT 0,
    h9 integer NOT NULL DEFAULT 0,
    h10 integer NOT NULL DEFAULT 0,
    h11 integer NOT NULL DEFAULT 0,
    h12 integer NOT NULL DEFAULT 0,
    h13 integer NOT NULL DEFAULT 0,
    h14 integer NOT NULL DEFAULT 0,
    h15 integer NOT NULL DEFAULT 0,
    h16 integer NOT NULL DEFAULT 0,
    h17 integer NOT NULL DEFAULT 0,
    h18 integer NOT NULL DEFAULT 0,
    h19 integer NOT NULL DEFAULT 0,
    h20 integer NOT NULL DEFAULT 0,
    h21 integer NOT NULL DEFAULT 0,
    h22 integer NOT NULL DEFAULT 0,
    h23 integer NOT NULL DEFAULT 0,
    h24 integer NOT NULL DEFAULT 0,
    h25 integer NOT NULL DEFAULT 0,
    h26 integer NOT NULL DEFAULT 0,
    h27 integer NOT NULL DEFAULT 0,
    h28 integer NOT NULL DEFAULT 0,
    h29 integer NOT NULL DEFAULT 0,
    h30 integer NOT NULL DEFAULT 0,
    h31 integer NOT NULL DEFAULT 0,
    h32 integer NOT NULL DEFAULT 0,
    h33 integer NOT NULL DEFAULT 0,
    h34 integer NOT NULL DEFAULT 0,
    h35 integer NOT NULL DEFAULT 0,
    h36 integer NOT NULL DEFAULT 0,
    h37 integer NOT NULL DEFAULT 0,
    h38 integer NOT NULL DEFAULT 0,
    h39 integer NOT NULL DEFAULT 0,
    h40 integer NOT NULL DEFAULT 0,
    h41 integer NOT NULL DEFAULT 0,
    h42 integer NOT NULL DEFAULT 0,
    h43 integer NOT NULL DEFAULT 0,
    h44 integer NOT NULL DEFAULT 0,
    h45 integer NOT NULL DEFAULT 0,
    h46 integer NOT NULL DEFAULT 0,
    h47 integer NOT NULL DEFAULT 0,
    PRIMARY KEY (layer_id, level, day, code, category, status, due_day)
);
-- Cells left empty (a report moved on to another status) are removed by
-- the fold through this index.
CREATE INDEX report_rollup_empty ON report_rollup (layer_id) WHERE n = 0;

-- The facts due earlier today, not closed: the part of "overdue now" the
-- day cells cannot tell.
CREATE INDEX report_facts_open_due ON report_facts (due_at) WHERE closed_at IS NULL;

-- report_rollup_append appends to report_rollup_delta the cells of the
-- facts a statement inserted (sign 1), deleted (-1) or updated (the old
-- taken back, the new counted), summed per cell and bin, leaving out what
-- cancels.
-- +goose StatementBegin
CREATE FUNCTION report_rollup_append() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
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

CREATE TRIGGER report_rollup_insert AFTER INSERT ON report_facts REFERENCING NEW TABLE AS new_facts
    FOR EACH STATEMENT EXECUTE FUNCTION report_rollup_append();
CREATE TRIGGER report_rollup_update AFTER UPDATE ON report_facts REFERENCING OLD TABLE AS old_facts NEW TABLE AS new_facts
    FOR EACH STATEMENT EXECUTE FUNCTION report_rollup_append();
CREATE TRIGGER report_rollup_delete AFTER DELETE ON report_facts REFERENCING OLD TABLE AS old_facts
    FOR EACH STATEMENT EXECUTE FUNCTION report_rollup_append();

-- The facts stored before, summed straight into the cells.
INSERT INTO report_rollup (layer_id, level, code, category, day, status, due_day, n, registered, closed, closed_on_time,
    registered_closed, resolved, reworked, extended, suspended,
    h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, h20, h21, h22, h23, h24, h25, h26, h27, h28, h29, h30, h31, h32, h33, h34, h35, h36, h37, h38, h39, h40, h41, h42, h43, h44, h45, h46, h47)
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
FROM report_facts f CROSS JOIN LATERAL report_rollup_cells(f.layer_id, f.reported_at, f.category, f.chain, f.departments, f.status, f.due_at, f.closed_at, f.registered, f.closed_on_time, f.resolved, f.reworked, f.extended, f.suspended) c
GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- +goose Down
DROP TRIGGER report_rollup_delete ON report_facts;
DROP TRIGGER report_rollup_update ON report_facts;
DROP TRIGGER report_rollup_insert ON report_facts;
DROP FUNCTION report_rollup_append();
DROP INDEX report_facts_open_due;
DROP TABLE report_rollup;
DROP TABLE report_rollup_delta;
DROP FUNCTION report_rollup_cells(text, timestamptz, text, jsonb, text[], text, timestamptz, timestamptz, boolean, boolean, boolean,
    boolean, boolean, boolean);
DROP FUNCTION report_handling_bin(timestamptz, timestamptz);
