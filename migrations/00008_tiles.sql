-- Vector tiles: the zoom range of each level, generalised copies of every
-- current grid per zoom band with a label point, and a log of where each
-- change to a layer happened, from which tile ETags are derived.

-- +goose Up
ALTER TABLE layers ADD COLUMN zooms jsonb NOT NULL DEFAULT '{}';

-- One row per current grid and band (see tiles.BandZooms), in EPSG:3857,
-- simplified so that neighbours still share their edges. A grid smaller
-- than a band's tolerance has no row in that band. Maintained in the same
-- transaction as every grid write.
CREATE TABLE grid_shapes (
    layer_id   text NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
    band       smallint NOT NULL,
    code       text NOT NULL,
    version_id bigint NOT NULL REFERENCES grid_versions (id) ON DELETE CASCADE,
    geom       geometry(MultiPolygon, 3857) NOT NULL,
    PRIMARY KEY (layer_id, code, band)
);
CREATE INDEX grid_shapes_geom ON grid_shapes USING gist (geom);

-- Where each current grid's name is drawn: its pole of inaccessibility.
CREATE TABLE grid_labels (
    layer_id   text NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
    code       text NOT NULL,
    version_id bigint NOT NULL REFERENCES grid_versions (id) ON DELETE CASCADE,
    geom       geometry(Point, 3857) NOT NULL,
    PRIMARY KEY (layer_id, code)
);
CREATE INDEX grid_labels_geom ON grid_labels USING gist (geom);

-- Every committed change to a layer's boundaries or definition, with the
-- area it touched (the whole world when it may have touched anything). A
-- tile's version is the newest change whose area meets the tile.
CREATE TABLE layer_changes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer_id     text NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
    data_version bigint NOT NULL,
    area         geometry(Polygon, 3857) NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX layer_changes_area ON layer_changes USING gist (area);

-- The payload announcing changed reports on gridmap_reports: the lon/lat
-- box of each (up to 100; past that one box around them all), so that
-- report tiles elsewhere stay cached.
-- +goose StatementBegin
CREATE FUNCTION report_boxes(ids bigint[]) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN count(*) <= 100 THEN
        json_build_object('boxes', coalesce(json_agg(json_build_array(
            ST_XMin(location), ST_YMin(location), ST_XMax(location), ST_YMax(location))), '[]'))::text
    ELSE json_build_object('boxes', json_build_array(json_build_array(
            min(ST_XMin(location)), min(ST_YMin(location)), max(ST_XMax(location)), max(ST_YMax(location)))))::text
    END
    FROM reports WHERE id = ANY(ids)
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION report_boxes;
DROP TABLE layer_changes;
DROP TABLE grid_labels;
DROP TABLE grid_shapes;
ALTER TABLE layers DROP COLUMN zooms;
