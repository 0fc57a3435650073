-- The reports of each grid by time: a row for each code of a report's
-- scope_codes (migration 00013), with its layer and reported_at, kept by
-- triggers on reports in the same statement. A scoped caller's reports of
-- a window are a range of this table's key, however many reports the
-- other grids hold; the index on scope_codes finds them only through the
-- grid's entries of every time (a district's year is a million), and
-- intersecting those with the window's took 0.7 to 1.2 s with ten million
-- reports in the table.

-- +goose Up
-- Writers wait while the reports stored before are copied.
LOCK TABLE reports IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE report_scope (
    layer_id    text NOT NULL,
    code        text NOT NULL,
    reported_at timestamptz NOT NULL,
    report_id   bigint NOT NULL
);
INSERT INTO report_scope
SELECT r.layer_id, c.code, r.reported_at, r.id
FROM reports r CROSS JOIN LATERAL (SELECT DISTINCT code FROM unnest(r.scope_codes) code) c
WHERE r.layer_id IS NOT NULL;
ALTER TABLE report_scope ADD PRIMARY KEY (layer_id, code, reported_at, report_id);
-- Planned with its statistics from the first request on.
ANALYZE report_scope;

-- report_scope_insert adds the rows of the reports a statement inserted.
-- +goose StatementBegin
CREATE FUNCTION report_scope_insert() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO report_scope
    SELECT r.layer_id, c.code, r.reported_at, r.id
    FROM new_reports r CROSS JOIN LATERAL (SELECT DISTINCT code FROM unnest(r.scope_codes) code) c
    WHERE r.layer_id IS NOT NULL;
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
    IF NEW.layer_id IS NOT NULL THEN
        INSERT INTO report_scope SELECT DISTINCT NEW.layer_id, code, NEW.reported_at, NEW.id FROM unnest(NEW.scope_codes) code;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER report_scope_insert AFTER INSERT ON reports REFERENCING NEW TABLE AS new_reports
    FOR EACH STATEMENT EXECUTE FUNCTION report_scope_insert();
CREATE TRIGGER report_scope_delete AFTER DELETE ON reports REFERENCING OLD TABLE AS old_reports
    FOR EACH STATEMENT EXECUTE FUNCTION report_scope_delete();
-- Every workflow move writes scope_codes; only a change moves the rows.
CREATE TRIGGER report_scope_update AFTER UPDATE OF layer_id, reported_at, scope_codes ON reports FOR EACH ROW
    WHEN (OLD.layer_id IS DISTINCT FROM NEW.layer_id OR OLD.reported_at IS DISTINCT FROM NEW.reported_at
          OR OLD.scope_codes IS DISTINCT FROM NEW.scope_codes)
    EXECUTE FUNCTION report_scope_update();

-- +goose Down
DROP TRIGGER report_scope_update ON reports;
DROP TRIGGER report_scope_delete ON reports;
DROP TRIGGER report_scope_insert ON reports;
DROP FUNCTION report_scope_update();
DROP FUNCTION report_scope_delete();
DROP FUNCTION report_scope_insert();
DROP TABLE report_scope;
