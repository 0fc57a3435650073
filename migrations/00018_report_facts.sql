-- Indicators (GET /v1/stats): one narrow row of facts per report, kept
-- current in the same transaction as every report event, so that the
-- figures of a time window read only that window's facts (by reported_at)
-- and never the wide reports rows (geometry, assignment JSON) nor their
-- event history.
--
-- Every write of a report is a statement that also inserts its event
-- (postgres/report_event.go eventSQL: intake, workflow moves, overdue
-- escalation, re-routes), so a trigger on report_events is the one place
-- the facts follow from: it runs at the end of that statement, sees the
-- report as the statement left it, and commits or rolls back with it.
-- What each fact means is stated in stats.go (gridmap.Stats).

-- +goose Up
CREATE TABLE report_facts (
    report_id      bigint PRIMARY KEY REFERENCES reports (id) ON DELETE CASCADE,
    layer_id       text,
    reported_at    timestamptz NOT NULL,
    category       text NOT NULL,
    -- the primary owner's chain, level -> code ({} outside coverage)
    chain          jsonb NOT NULL DEFAULT '{}',
    -- gridmap.ReportScopeCodes, as reports.scope_codes: for jurisdiction
    scope_codes    text[] NOT NULL DEFAULT '{}',
    departments    text[] NOT NULL DEFAULT '{}',
    status         text NOT NULL,
    due_at         timestamptz NOT NULL,
    registered     boolean NOT NULL DEFAULT false, -- a register event
    resolved       boolean NOT NULL DEFAULT false, -- a resolve event
    reworked       boolean NOT NULL DEFAULT false, -- a reject of a resolved report
    extended       boolean NOT NULL DEFAULT false, -- an extend event
    suspended      boolean NOT NULL DEFAULT false, -- a suspend event
    closed_at      timestamptz,                    -- the close event's time
    closed_on_time boolean NOT NULL DEFAULT false  -- closed_at <= due_at in force then
);
CREATE INDEX report_facts_reported ON report_facts (reported_at);
CREATE INDEX report_facts_scope ON report_facts USING gin (scope_codes);

-- report_facts_chain is an assignment's primary chain as level -> code.
-- +goose StatementBegin
CREATE FUNCTION report_facts_chain(a jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(c->>'level', c->>'code'), '{}')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(a->'primary'->'chain') = 'array' THEN a->'primary'->'chain' ELSE '[]' END) c
$$;
-- +goose StatementEnd

-- report_facts_departments is an assignment's department codes.
-- +goose StatementBegin
CREATE FUNCTION report_facts_departments(a jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY(SELECT d->>'code'
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(a->'departments') = 'array' THEN a->'departments' ELSE '[]' END) d)
$$;
-- +goose StatementEnd

-- report_facts_apply folds one event into its report's facts: the report's
-- current state is copied, the flags only ever turn on.
-- +goose StatementBegin
CREATE FUNCTION report_facts_apply() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO report_facts AS f (report_id, layer_id, reported_at, category, chain, scope_codes, departments, status, due_at,
        registered, resolved, reworked, extended, suspended, closed_at, closed_on_time)
    SELECT r.id, r.layer_id, r.reported_at, r.category, report_facts_chain(r.assignment), r.scope_codes,
        report_facts_departments(r.assignment), r.status, r.due_at,
        NEW.action = 'register', NEW.action = 'resolve', NEW.action = 'reject' AND NEW.from_status = 'resolved',
        NEW.action = 'extend', NEW.action = 'suspend',
        CASE WHEN NEW.to_status = 'closed' THEN NEW.at END, NEW.to_status = 'closed' AND NEW.at <= r.due_at
    FROM reports r WHERE r.id = NEW.report_id
    ON CONFLICT (report_id) DO UPDATE SET layer_id = EXCLUDED.layer_id, category = EXCLUDED.category, chain = EXCLUDED.chain,
        scope_codes = EXCLUDED.scope_codes, departments = EXCLUDED.departments, status = EXCLUDED.status, due_at = EXCLUDED.due_at,
        registered = f.registered OR EXCLUDED.registered, resolved = f.resolved OR EXCLUDED.resolved,
        reworked = f.reworked OR EXCLUDED.reworked, extended = f.extended OR EXCLUDED.extended,
        suspended = f.suspended OR EXCLUDED.suspended, closed_at = coalesce(EXCLUDED.closed_at, f.closed_at),
        closed_on_time = f.closed_on_time OR EXCLUDED.closed_on_time;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER report_facts_apply AFTER INSERT ON report_events FOR EACH ROW EXECUTE FUNCTION report_facts_apply();

-- report_facts_backfill writes the facts of the reports of layer l (every
-- report when l is NULL) from their state and history, as the trigger would
-- have: for reports stored before it, and for reports written in bulk.
-- +goose StatementBegin
CREATE FUNCTION report_facts_backfill(l text) RETURNS void LANGUAGE sql VOLATILE AS $$
INSERT INTO report_facts (report_id, layer_id, reported_at, category, chain, scope_codes, departments, status, due_at,
    registered, resolved, reworked, extended, suspended, closed_at, closed_on_time)
SELECT r.id, r.layer_id, r.reported_at, r.category, report_facts_chain(r.assignment), r.scope_codes,
    report_facts_departments(r.assignment), r.status, r.due_at,
    coalesce(h.registered, false), coalesce(h.resolved, false), coalesce(h.reworked, false), coalesce(h.extended, false),
    coalesce(h.suspended, false), h.closed_at, coalesce(h.closed_at <= r.due_at, false)
FROM reports r LEFT JOIN (
    SELECT e.report_id, bool_or(e.action = 'register') AS registered, bool_or(e.action = 'resolve') AS resolved,
        bool_or(e.action = 'reject' AND e.from_status = 'resolved') AS reworked, bool_or(e.action = 'extend') AS extended,
        bool_or(e.action = 'suspend') AS suspended, max(e.at) FILTER (WHERE e.to_status = 'closed') AS closed_at
    FROM report_events e GROUP BY e.report_id) h ON h.report_id = r.id
WHERE l IS NULL OR r.layer_id = l;
$$;
-- +goose StatementEnd

-- Reports stored before.
SELECT report_facts_backfill(NULL);

-- +goose Down
DROP TRIGGER report_facts_apply ON report_events;
DROP FUNCTION report_facts_backfill(text);
DROP FUNCTION report_facts_apply();
DROP FUNCTION report_facts_departments(jsonb);
DROP FUNCTION report_facts_chain(jsonb);
DROP TABLE report_facts;
