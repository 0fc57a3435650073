-- Reports are partitioned by the month they were received in (UTC), so
-- that no new report goes into a past month (what is written there later
-- is the moves of its reports still open), a month can be archived whole,
-- and what reads or moves a report by id touches its month only.
--
-- The partition key is the report's id: a new report's id is its month,
-- yyyymm, followed by nine digits of a counter (202612000000042), drawn by
-- the column's default. What reads or moves one report by id (every
-- workflow move, the report page, a re-route) names its month's partition
-- (postgres/report_months.go, reportTable), so that the months kept cost
-- it nothing. Reports stored before this migration keep their ids, which
-- are below any month's, in the partition reports_before. A month holds at
-- most a billion reports; ids stay below 2^53, exact in JavaScript, until
-- the year 90071.
--
-- A partitioned table has no index unique across partitions other than
-- one on its key, so the external_id each client gives (its retry key)
-- is kept unique by report_keys, written by a trigger in the statement that
-- stores the report: a second report with the same external_id fails with
-- a unique violation there, whoever writes it. The tables that refer to a
-- report (its events, tasks, facts...) refer to its key there.
--
-- Months are made ahead by postgres/report_months.go (the current month
-- and the next two), and by intake for a month that has none, through
-- report_month_make. There is no default partition: a report never waits
-- for rows to be moved out of one.

-- +goose Up
-- Every reader and writer of reports waits while the reports stored before
-- are copied: with ten million reports, several minutes.
LOCK TABLE reports IN ACCESS EXCLUSIVE MODE;

-- +goose StatementBegin
DO $$
BEGIN
    IF (SELECT max(id) FROM reports) >= 100000000000000 THEN
        RAISE EXCEPTION 'reports holds ids from 10^14 on, which this migration keeps for months';
    END IF;
END
$$;
-- +goose StatementEnd

-- report_month_floor is the first id of the month (UTC) of t.
-- +goose StatementBegin
CREATE FUNCTION report_month_floor(t timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (extract(year FROM t AT TIME ZONE 'UTC')::bigint * 100 + extract(month FROM t AT TIME ZONE 'UTC')::bigint) * 1000000000
$$;
-- +goose StatementEnd

-- report_months_first is the first id of any month: the reports from
-- before reports were kept by month lie below it.
-- +goose StatementBegin
CREATE FUNCTION report_months_first() RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 100000000000000::bigint
$$;
-- +goose StatementEnd

-- report_month_from is the least id a report of a month reported at t or
-- later can have: the first of the month of t less a day, since each
-- month's partition holds only reports reported at most a day after the
-- month ended (its CHECK constraint, below; intake refuses a reported_at
-- more than five minutes ahead). The least bigint for no time (NULL) or an
-- infinite one. A statement that reads a window from t adds
-- "id < report_months_first() OR id >= report_month_from(t)" so that the
-- months before are left out of its plan.
-- +goose StatementBegin
CREATE FUNCTION report_month_from(t timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN isfinite(t) THEN report_month_floor(t - interval '24 hours') ELSE -9223372036854775808 END
$$;
-- +goose StatementEnd

-- The counter behind the nine digits of new reports' ids.
CREATE SEQUENCE report_serial AS bigint;

CREATE TABLE reports_by_month (LIKE reports INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)
    PARTITION BY RANGE (id);
ALTER TABLE reports_by_month ALTER COLUMN id SET DEFAULT report_month_floor(now()) + nextval('report_serial') % 1000000000;
CREATE TABLE reports_before (LIKE reports_by_month INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE);
ALTER TABLE reports_by_month ATTACH PARTITION reports_before FOR VALUES FROM (MINVALUE) TO (100000000000000);
INSERT INTO reports_by_month SELECT * FROM reports;

CREATE TABLE report_keys (
    external_id text PRIMARY KEY,
    report_id   bigint NOT NULL UNIQUE
);
INSERT INTO report_keys SELECT external_id, id FROM reports;

-- Takes the foreign keys of report_events, report_tasks, report_facts,
-- checkin_reports and party_meeting_items with it; they are made again
-- below, to report_keys.
DROP TABLE reports CASCADE;
ALTER TABLE reports_by_month RENAME TO reports;

-- A unique index rather than a primary key: pg_dump writes each month's
-- part of a primary key as a constraint of its own, which gridmap restore
-- --replace (pg_restore --clean) cannot drop; it leaves the parts of an
-- index to the index.
CREATE UNIQUE INDEX reports_pkey ON reports (id);
CREATE INDEX reports_location ON reports USING gist (location);
CREATE INDEX reports_status ON reports (status, id);
CREATE INDEX reports_primary ON reports (layer_id, primary_code, id);
CREATE INDEX reports_deadline ON reports (deadline_at) WHERE deadline_at IS NOT NULL;
CREATE INDEX reports_reported ON reports (reported_at, id);
CREATE INDEX reports_scope ON reports USING gin (scope_codes);
CREATE INDEX reports_external_prefix ON reports (external_id text_pattern_ops);
CREATE INDEX reports_due ON reports (due_at, id);
CREATE INDEX reports_duplicate_of ON reports (duplicate_of) WHERE duplicate_of IS NOT NULL;
CREATE INDEX reports_cell ON reports (cell) INCLUDE (reported_at, category, status, urgent, due_at);
CREATE INDEX reports_filed_by ON reports (filed_by, reported_at) WHERE filed_by IS NOT NULL;

ALTER TABLE reports ADD CONSTRAINT reports_category_fkey FOREIGN KEY (category) REFERENCES categories (code);
ALTER TABLE reports ADD CONSTRAINT reports_layer_id_fkey FOREIGN KEY (layer_id) REFERENCES layers (id) ON DELETE SET NULL;
-- What refers to a report refers to its key: a foreign key to a
-- partitioned table is checked by a statement that PostgreSQL 15 plans
-- once and then runs locking every month, so each event written would
-- cost more with every month kept.
ALTER TABLE reports ADD CONSTRAINT reports_duplicate_of_fkey FOREIGN KEY (duplicate_of) REFERENCES report_keys (report_id) ON DELETE SET NULL;
ALTER TABLE report_events ADD CONSTRAINT report_events_report_id_fkey FOREIGN KEY (report_id) REFERENCES report_keys (report_id) ON DELETE CASCADE;
ALTER TABLE report_tasks ADD CONSTRAINT report_tasks_report_id_fkey FOREIGN KEY (report_id) REFERENCES report_keys (report_id) ON DELETE CASCADE;
ALTER TABLE report_facts ADD CONSTRAINT report_facts_report_id_fkey FOREIGN KEY (report_id) REFERENCES report_keys (report_id) ON DELETE CASCADE;
ALTER TABLE checkin_reports ADD CONSTRAINT checkin_reports_report_id_fkey FOREIGN KEY (report_id) REFERENCES report_keys (report_id) ON DELETE CASCADE;
ALTER TABLE party_meeting_items ADD CONSTRAINT party_meeting_items_report_id_fkey FOREIGN KEY (report_id) REFERENCES report_keys (report_id) ON DELETE CASCADE;

-- The triggers the table had (migrations 00022 and 00028).
CREATE TRIGGER report_cell_set BEFORE INSERT OR UPDATE OF location ON reports
    FOR EACH ROW EXECUTE FUNCTION report_cell_set();
CREATE TRIGGER report_scope_insert AFTER INSERT ON reports REFERENCING NEW TABLE AS new_reports
    FOR EACH STATEMENT EXECUTE FUNCTION report_scope_insert();
CREATE TRIGGER report_scope_delete AFTER DELETE ON reports REFERENCING OLD TABLE AS old_reports
    FOR EACH STATEMENT EXECUTE FUNCTION report_scope_delete();
CREATE TRIGGER report_scope_update AFTER UPDATE ON reports FOR EACH ROW
    WHEN (OLD.layer_id IS DISTINCT FROM NEW.layer_id OR OLD.reported_at IS DISTINCT FROM NEW.reported_at
          OR OLD.scope_codes IS DISTINCT FROM NEW.scope_codes)
    EXECUTE FUNCTION report_scope_update();
CREATE TRIGGER report_scope_truncate AFTER TRUNCATE ON reports FOR EACH STATEMENT EXECUTE FUNCTION report_scope_truncate();

-- report_keys_insert keeps the key of each report inserted; an
-- external_id already kept fails the statement (23505, report_keys_pkey).
-- For each row, so that the key is there before the foreign keys of the
-- same statement's first event are checked (they are checked in the order
-- the rows were written; statement triggers run after all of them).
-- +goose StatementBegin
CREATE FUNCTION report_keys_insert() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO report_keys VALUES (NEW.external_id, NEW.id);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER report_keys_insert AFTER INSERT ON reports FOR EACH ROW EXECUTE FUNCTION report_keys_insert();

-- report_keys_delete lets go of the keys of deleted reports, and with them
-- of what refers to the reports (their events, tasks, facts...: ON DELETE
-- CASCADE) and of the links of their duplicates (SET NULL).
-- +goose StatementBegin
CREATE FUNCTION report_keys_delete() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    DELETE FROM report_keys k USING old_reports r WHERE k.external_id = r.external_id AND k.report_id = r.id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER report_keys_delete AFTER DELETE ON reports REFERENCING OLD TABLE AS old_reports
    FOR EACH STATEMENT EXECUTE FUNCTION report_keys_delete();

-- Each report's probable duplicates (the reports whose duplicate_of it
-- is), kept by triggers: a report's page and a list's rows read them here
-- by the report's id, not from every month of reports.
CREATE TABLE report_duplicates (
    of bigint NOT NULL,
    id bigint NOT NULL,
    PRIMARY KEY (of, id)
);
INSERT INTO report_duplicates SELECT duplicate_of, id FROM reports WHERE duplicate_of IS NOT NULL;

-- +goose StatementBegin
CREATE FUNCTION report_duplicates_follow() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.duplicate_of IS NOT NULL THEN
        DELETE FROM report_duplicates WHERE of = OLD.duplicate_of AND id = OLD.id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.duplicate_of IS NOT NULL THEN
        INSERT INTO report_duplicates VALUES (NEW.duplicate_of, NEW.id);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER report_duplicates_insert AFTER INSERT ON reports FOR EACH ROW
    WHEN (NEW.duplicate_of IS NOT NULL) EXECUTE FUNCTION report_duplicates_follow();
-- (No column list: the SET NULL of an original's deletion counts too.)
CREATE TRIGGER report_duplicates_update AFTER UPDATE ON reports FOR EACH ROW
    WHEN (OLD.duplicate_of IS DISTINCT FROM NEW.duplicate_of) EXECUTE FUNCTION report_duplicates_follow();
CREATE TRIGGER report_duplicates_delete AFTER DELETE ON reports FOR EACH ROW
    WHEN (OLD.duplicate_of IS NOT NULL) EXECUTE FUNCTION report_duplicates_follow();

-- report_beside_truncate empties, with reports, the tables kept beside
-- it and what refers to its reports' keys. (The keys are deleted, not
-- truncated: reports' duplicate_of refers to them, and a TRUNCATE of them
-- would reach back to reports, which the statement has open.)
-- +goose StatementBegin
CREATE FUNCTION report_beside_truncate() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    TRUNCATE report_events, report_tasks, report_facts, checkin_reports, party_meeting_items, report_duplicates CASCADE;
    DELETE FROM report_keys;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER report_beside_truncate AFTER TRUNCATE ON reports FOR EACH STATEMENT EXECUTE FUNCTION report_beside_truncate();

-- A report's id and external_id never change: other systems hold them.
-- +goose StatementBegin
CREATE FUNCTION report_keys_fixed() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'report %: a report''s id and external_id do not change', OLD.id USING ERRCODE = 'check_violation';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER report_keys_fixed BEFORE UPDATE OF id, external_id ON reports FOR EACH ROW
    WHEN (OLD.id <> NEW.id OR OLD.external_id <> NEW.external_id)
    EXECUTE FUNCTION report_keys_fixed();

-- report_month_make makes the partition of reports for the month (UTC) of
-- t, reports_yyyymm, unless it is there; a table of that name left
-- detached is attached again. It holds the reports reported at most a day
-- after the month (report_month_from). Returns whether it made one. A table made
-- beside reports and then attached, so that reports' readers and writers
-- do not wait for it (CREATE TABLE ... PARTITION OF would lock them out);
-- attaching clones reports' foreign keys, which takes categories, layers
-- and report_keys for a moment.
-- +goose StatementBegin
CREATE FUNCTION report_month_make(t timestamptz) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    month timestamp := date_trunc('month', t AT TIME ZONE 'UTC');
    name text := 'reports_' || to_char(month, 'YYYYMM');
BEGIN
    IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = 'reports'::regclass AND inhrelid = to_regclass(name)) THEN
        RETURN false;
    END IF;
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE %I (LIKE reports INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)', name);
    END IF;
    -- report_month_from(reported_at) <= the month's first id, stated
    -- without a function call: a CHECK calling one costs every update of a
    -- report about 70 us. (Made again for a table left detached that has
    -- lost it: the lists' pruning relies on it.)
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = name::regclass AND conname = name || '_reported') THEN
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (reported_at < %L)', name, name || '_reported',
            (month + interval '1 month' + interval '24 hours') AT TIME ZONE 'UTC');
    END IF;
    EXECUTE format('ALTER TABLE reports ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', name,
        report_month_floor(month AT TIME ZONE 'UTC'), report_month_floor((month + interval '1 month') AT TIME ZONE 'UTC'));
    RETURN true;
END
$$;
-- +goose StatementEnd

-- report_estimated_extent is an estimate of the box of reports'
-- locations: the union of each month's (read from the root of its GiST
-- index, or its statistics; an empty month counts for nothing). PostGIS
-- 3.3's ST_EstimatedExtent fails on a partitioned table.
-- +goose StatementBegin
CREATE FUNCTION report_estimated_extent() RETURNS box2d LANGUAGE sql STABLE AS $$
    SELECT ST_Extent(ST_EstimatedExtent(n.nspname::text, c.relname::text, 'location')::geometry)::box2d
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE i.inhparent = 'reports'::regclass
$$;
-- +goose StatementEnd

-- Every event's trigger reads its report by id (migration 00018): planned
-- for that id each time, it reads and locks the report's month only; a
-- plan kept by the connection would lock every month.
ALTER FUNCTION report_facts_apply() SET plan_cache_mode = force_custom_plan;

SELECT report_month_make(now() + m * interval '1 month') FROM generate_series(0, 2) m;

ANALYZE reports;
ANALYZE report_keys;
ANALYZE report_duplicates;

-- +goose Down
LOCK TABLE reports IN ACCESS EXCLUSIVE MODE;

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM reports WHERE id >= 100000000000000) THEN
        RAISE EXCEPTION 'reports were received since reports were partitioned by month: their ids do not fit the schema before it';
    END IF;
END
$$;
-- +goose StatementEnd

CREATE TABLE reports_flat (LIKE reports INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS);
ALTER TABLE reports_flat ALTER COLUMN id DROP DEFAULT;
INSERT INTO reports_flat SELECT * FROM reports;
ALTER TABLE reports_flat ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('reports_flat', 'id'), max(id)) FROM reports_flat HAVING max(id) IS NOT NULL;

DROP TABLE reports CASCADE;
DROP TABLE report_keys CASCADE;
DROP TABLE report_duplicates;
DROP FUNCTION report_month_make(timestamptz);
DROP FUNCTION report_keys_fixed();
DROP FUNCTION report_beside_truncate();
DROP FUNCTION report_duplicates_follow();
DROP FUNCTION report_keys_delete();
DROP FUNCTION report_keys_insert();
DROP SEQUENCE report_serial;
DROP FUNCTION report_estimated_extent();
DROP FUNCTION report_month_from(timestamptz);
DROP FUNCTION report_months_first();
ALTER FUNCTION report_facts_apply() RESET plan_cache_mode;
DROP FUNCTION report_month_floor(timestamptz);
ALTER TABLE reports_flat RENAME TO reports;

ALTER TABLE reports ADD CONSTRAINT reports_pkey PRIMARY KEY (id);
ALTER TABLE reports ADD CONSTRAINT reports_external_id_key UNIQUE (external_id);
CREATE INDEX reports_location ON reports USING gist (location);
CREATE INDEX reports_status ON reports (status, id);
CREATE INDEX reports_primary ON reports (layer_id, primary_code, id);
CREATE INDEX reports_deadline ON reports (deadline_at) WHERE deadline_at IS NOT NULL;
CREATE INDEX reports_reported ON reports (reported_at, id);
CREATE INDEX reports_scope ON reports USING gin (scope_codes);
CREATE INDEX reports_external_prefix ON reports (external_id text_pattern_ops);
CREATE INDEX reports_due ON reports (due_at, id);
CREATE INDEX reports_duplicate_of ON reports (duplicate_of) WHERE duplicate_of IS NOT NULL;
CREATE INDEX reports_cell ON reports (cell) INCLUDE (reported_at, category, status, urgent, due_at);
CREATE INDEX reports_filed_by ON reports (filed_by, reported_at) WHERE filed_by IS NOT NULL;

ALTER TABLE reports ADD CONSTRAINT reports_category_fkey FOREIGN KEY (category) REFERENCES categories (code);
ALTER TABLE reports ADD CONSTRAINT reports_layer_id_fkey FOREIGN KEY (layer_id) REFERENCES layers (id) ON DELETE SET NULL;
ALTER TABLE reports ADD CONSTRAINT reports_duplicate_of_fkey FOREIGN KEY (duplicate_of) REFERENCES reports (id) ON DELETE SET NULL;
ALTER TABLE report_events ADD CONSTRAINT report_events_report_id_fkey FOREIGN KEY (report_id) REFERENCES reports (id) ON DELETE CASCADE;
ALTER TABLE report_tasks ADD CONSTRAINT report_tasks_report_id_fkey FOREIGN KEY (report_id) REFERENCES reports (id) ON DELETE CASCADE;
ALTER TABLE report_facts ADD CONSTRAINT report_facts_report_id_fkey FOREIGN KEY (report_id) REFERENCES reports (id) ON DELETE CASCADE;
ALTER TABLE checkin_reports ADD CONSTRAINT checkin_reports_report_id_fkey FOREIGN KEY (report_id) REFERENCES reports (id) ON DELETE CASCADE;
ALTER TABLE party_meeting_items ADD CONSTRAINT party_meeting_items_report_id_fkey FOREIGN KEY (report_id) REFERENCES reports (id) ON DELETE CASCADE;

CREATE TRIGGER report_cell_set BEFORE INSERT OR UPDATE OF location ON reports
    FOR EACH ROW EXECUTE FUNCTION report_cell_set();
CREATE TRIGGER report_scope_insert AFTER INSERT ON reports REFERENCING NEW TABLE AS new_reports
    FOR EACH STATEMENT EXECUTE FUNCTION report_scope_insert();
CREATE TRIGGER report_scope_delete AFTER DELETE ON reports REFERENCING OLD TABLE AS old_reports
    FOR EACH STATEMENT EXECUTE FUNCTION report_scope_delete();
CREATE TRIGGER report_scope_update AFTER UPDATE ON reports FOR EACH ROW
    WHEN (OLD.layer_id IS DISTINCT FROM NEW.layer_id OR OLD.reported_at IS DISTINCT FROM NEW.reported_at
          OR OLD.scope_codes IS DISTINCT FROM NEW.scope_codes)
    EXECUTE FUNCTION report_scope_update();
CREATE TRIGGER report_scope_truncate AFTER TRUNCATE ON reports FOR EACH STATEMENT EXECUTE FUNCTION report_scope_truncate();
ANALYZE reports;
