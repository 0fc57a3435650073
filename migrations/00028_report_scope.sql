-- The reports of each grid by time: a row for each code of a report's
-- scope_codes (migration 00013), with its layer and reported_at, kept by
-- triggers on reports in the same statement. A scoped caller's reports of
-- a window are a range of this table's key, however many reports the
-- other grids hold; the index on scope_codes finds them only through the
-- grid's entries of every time (a district's year is a million), and
-- intersecting those with the window's took 0.7 to 1.2 s with ten million
-- reports in the table.

-- +goose Up
-- Every write to reports (intake, workflow moves, escalations, re-routes)
-- waits while the reports stored before are copied: with ten million
-- reports, several minutes.
LOCK TABLE reports IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE report_scope (
    layer_id    text NOT NULL,
    code        text NOT NULL,
    reported_at timestamptz NOT NULL,
    report_id   bigint NOT NULL
);
-- report_scope_rows are the rows of a report of layer l with scope codes
-- codes, reported at at: one per distinct code, none without a layer.
-- +goose StatementBegin
CREATE FUNCTION report_scope_rows(l text, codes text[], at timestamptz, id bigint)
    RETURNS TABLE (layer_id text, code text, reported_at timestamptz, report_id bigint) LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT l, c, at, id FROM (SELECT DISTINCT c FROM unnest(codes) c) d WHERE l IS NOT NULL
$$;
-- +goose StatementEnd

INSERT INTO report_scope SELECT s.* FROM reports r CROSS JOIN LATERAL report_scope_rows(r.layer_id, r.scope_codes, r.reported_at, r.id) s;
ALTER TABLE report_scope ADD PRIMARY KEY (layer_id, code, reported_at, report_id);
-- Planned with its statistics from the first request on.
ANALYZE report_scope;

-- report_scope_insert adds the rows of the reports a statement inserted.
-- +goose StatementBegin
CREATE FUNCTION report_scope_insert() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO report_scope
    SELECT s.* FROM new_reports r CROSS JOIN LATERAL report_scope_rows(r.layer_id, r.scope_codes, r.reported_at, r.id) s;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- report_scope_delete takes back the rows of the reports a statement
-- deleted.
-- +goose StatementBegin
CREATE FUNCTION report_scope_delete() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    DELETE FROM report_scope s USING old_reports r
    WHERE s.layer_id = r.layer_id AND s.code = ANY(r.scope_codes) AND s.reported_at = r.reported_at AND s.report_id = r.id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- report_scope_update moves the rows of a report whose layer, time or
-- scope codes changed (a re-assignment).
-- +goose StatementBegin
CREATE FUNCTION report_scope_update() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    DELETE FROM report_scope
    WHERE layer_id = OLD.layer_id AND code = ANY(OLD.scope_codes) AND reported_at = OLD.reported_at AND report_id = OLD.id;
    INSERT INTO report_scope SELECT * FROM report_scope_rows(NEW.layer_id, NEW.scope_codes, NEW.reported_at, NEW.id);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER report_scope_insert AFTER INSERT ON reports REFERENCING NEW TABLE AS new_reports
    FOR EACH STATEMENT EXECUTE FUNCTION report_scope_insert();
CREATE TRIGGER report_scope_delete AFTER DELETE ON reports REFERENCING OLD TABLE AS old_reports
    FOR EACH STATEMENT EXECUTE FUNCTION report_scope_delete();
-- Every workflow move writes scope_codes; only a change moves the rows.
-- (No column list: a change a BEFORE trigger makes counts too.)
CREATE TRIGGER report_scope_update AFTER UPDATE ON reports FOR EACH ROW
    WHEN (OLD.layer_id IS DISTINCT FROM NEW.layer_id OR OLD.reported_at IS DISTINCT FROM NEW.reported_at
          OR OLD.scope_codes IS DISTINCT FROM NEW.scope_codes)
    EXECUTE FUNCTION report_scope_update();

-- report_scope_truncate empties the table with reports.
-- +goose StatementBegin
CREATE FUNCTION report_scope_truncate() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    TRUNCATE report_scope;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER report_scope_truncate AFTER TRUNCATE ON reports FOR EACH STATEMENT EXECUTE FUNCTION report_scope_truncate();

-- +goose Down
DROP TRIGGER report_scope_truncate ON reports;
DROP FUNCTION report_scope_truncate();
DROP TRIGGER report_scope_update ON reports;
DROP TRIGGER report_scope_delete ON reports;
DROP TRIGGER report_scope_insert ON reports;
DROP FUNCTION report_scope_update();
DROP FUNCTION report_scope_delete();
DROP FUNCTION report_scope_insert();
DROP TABLE report_scope;
DROP FUNCTION report_scope_rows(text, text[], timestamptz, bigint);
