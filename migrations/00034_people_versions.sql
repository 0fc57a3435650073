-- Each layer's people responsible are counted as they change: every
-- statement that writes grid_people (gridmap's own, an import's COPY, or
-- one by hand) moves its layers' version here, in the writer's own
-- transaction, so that a snapshot sees the version and the people it
-- counts together. A rebuild of a layer's lookup index after a boundary
-- edit then reads the people again only when this version moved since the
-- index read them; it read every grid's people each time, 1.5 to 2.6 s of
-- a province's rebuild. A layer without a row has version 0. The table is
-- bookkeeping: rows deleted by hand, or people written with the triggers
-- off (session_replication_role = replica, DISABLE TRIGGER), leave an
-- index with the people it had until the layer's version next moves or
-- the service restarts.
--
-- The trigger takes the layers' rows (FOR KEY SHARE) before their version
-- rows, in order of id: an import or a publish holds its layer's row from
-- its start and writes people at its end, and a people change taking the
-- version row first would close a cycle with it.

-- +goose Up
CREATE TABLE layer_people_versions (
    layer_id text PRIMARY KEY,
    version  bigint NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION count_people_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM 1 FROM layers ORDER BY id FOR KEY SHARE;
        INSERT INTO layer_people_versions (layer_id, version)
        SELECT id, 1 FROM layers ORDER BY id
        ON CONFLICT (layer_id) DO UPDATE SET version = layer_people_versions.version + 1;
    ELSE
        -- changed_rows: the rows the statement wrote or removed (its
        -- transition table, named so by each trigger below).
        PERFORM 1 FROM layers WHERE id IN (SELECT layer_id FROM changed_rows) ORDER BY id FOR KEY SHARE;
        INSERT INTO layer_people_versions (layer_id, version)
        SELECT layer_id, 1 FROM (SELECT DISTINCT layer_id FROM changed_rows) c ORDER BY layer_id
        ON CONFLICT (layer_id) DO UPDATE SET version = layer_people_versions.version + 1;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER people_inserted AFTER INSERT ON grid_people
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION count_people_change();
CREATE TRIGGER people_deleted AFTER DELETE ON grid_people
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION count_people_change();
-- An update is counted for the layers its rows left and those they went
-- to: two triggers, as a trigger names one transition table of each kind.
CREATE TRIGGER people_updated_from AFTER UPDATE ON grid_people
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION count_people_change();
CREATE TRIGGER people_updated_to AFTER UPDATE ON grid_people
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION count_people_change();
CREATE TRIGGER people_truncated AFTER TRUNCATE ON grid_people
    FOR EACH STATEMENT EXECUTE FUNCTION count_people_change();

-- +goose Down
DROP TRIGGER people_truncated ON grid_people;
DROP TRIGGER people_updated_to ON grid_people;
DROP TRIGGER people_updated_from ON grid_people;
DROP TRIGGER people_deleted ON grid_people;
DROP TRIGGER people_inserted ON grid_people;
DROP FUNCTION count_people_change();
DROP TABLE layer_people_versions;
