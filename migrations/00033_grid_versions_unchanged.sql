-- A grid version is never changed in place: every writer closes it (sets
-- valid_to) and stores the next version. History, report assignments made
-- as of a version, cached tiles and the lookup index rely on it: the index
-- reloads a layer after each edit by reading only the versions it does not
-- hold, so a version changed in place was seen only after a restart. A hand
-- edit in place is now refused, saying what to do instead. Setting
-- valid_to is not touched. (A later migration that must rewrite versions
-- disables the trigger around its statement; one that adds a column adds
-- it to the trigger's list, which a test compares with the table's.)

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION grid_version_unchanged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'grid % of layer % version % is never changed in place', OLD.code, OLD.layer_id, OLD.version
        USING ERRCODE = 'restrict_violation',
              HINT = 'edit grids through gridmap (the editor, PUT /v1/layers/{layer}/grids/{code}, an import): it closes the version and stores the next, and refreshes the tile shapes, cached tiles and lookup indexes that rely on it';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER grid_versions_unchanged
    BEFORE UPDATE OF id, layer_id, code, version, name, level, parent_code, geom, attributes, valid_from, author, reason
    ON grid_versions FOR EACH ROW EXECUTE FUNCTION grid_version_unchanged();

-- +goose Down
DROP TRIGGER grid_versions_unchanged ON grid_versions;
DROP FUNCTION grid_version_unchanged();
