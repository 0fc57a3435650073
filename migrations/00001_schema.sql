-- The boundary schema: layers, versioned grids, people, departments.
-- Every grid write inserts a version and closes the previous one (valid_to),
-- so history and as-of reads need nothing more; assignments later pin the
-- grid_versions.id they were computed on.

-- +goose Up
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE layers (
    id           text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('comprehensive', 'departmental')),
    levels       text[] NOT NULL CHECK (cardinality(levels) >= 1),
    code_pattern text NOT NULL DEFAULT '',
    tolerance_m  double precision NOT NULL DEFAULT 30 CHECK (tolerance_m >= 0),
    snap_m       double precision NOT NULL DEFAULT 0.5 CHECK (snap_m >= 0),
    tiers        jsonb NOT NULL DEFAULT '{}',
    -- Bumped by every committed change to the layer's grids; caches key on it.
    data_version bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per version of a grid. The current version has valid_to IS NULL.
CREATE TABLE grid_versions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer_id    text NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
    code        text NOT NULL CHECK (code <> ''),
    version     integer NOT NULL CHECK (version >= 1),
    name        text NOT NULL DEFAULT '',
    level       text NOT NULL,
    parent_code text,
    geom        geometry(MultiPolygon, 4326) NOT NULL,
    attributes  jsonb NOT NULL DEFAULT '{}',
    valid_from  timestamptz NOT NULL DEFAULT now(),
    valid_to    timestamptz,
    author      text NOT NULL DEFAULT '',
    reason      text NOT NULL DEFAULT '',
    UNIQUE (layer_id, code, version),
    CHECK (valid_to IS NULL OR valid_to >= valid_from),
    CHECK (parent_code IS NULL OR parent_code <> code)
);

-- The current version of each grid, found fast by code, by parent and by place.
CREATE UNIQUE INDEX grid_versions_current_code ON grid_versions (layer_id, code) WHERE valid_to IS NULL;
CREATE INDEX grid_versions_current_parent ON grid_versions (layer_id, parent_code) WHERE valid_to IS NULL;
CREATE INDEX grid_versions_current_level ON grid_versions (layer_id, level, code) WHERE valid_to IS NULL;
CREATE INDEX grid_versions_current_geom ON grid_versions USING gist (geom) WHERE valid_to IS NULL;
-- Every version by place, for as-of reads over history.
CREATE INDEX grid_versions_geom ON grid_versions USING gist (geom);

-- Current grids: what most reads want.
CREATE VIEW grids AS
    SELECT * FROM grid_versions WHERE valid_to IS NULL;

CREATE TABLE departments (
    code        text PRIMARY KEY CHECK (code <> ''),
    name        text NOT NULL,
    webhook_url text NOT NULL DEFAULT '',
    -- The departmental layer whose grids name this department's units, if any.
    layer_id    text REFERENCES layers (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- People responsible for a grid (网格长, 网格员, ...). They belong to the
-- grid's code, not to one boundary version.
CREATE TABLE grid_people (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer_id        text NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
    grid_code       text NOT NULL,
    position        integer NOT NULL DEFAULT 0,
    role            text NOT NULL CHECK (role <> ''),
    name            text NOT NULL CHECK (name <> ''),
    phone           text NOT NULL DEFAULT '',
    department      text NOT NULL DEFAULT ''
);
CREATE INDEX grid_people_grid ON grid_people (layer_id, grid_code, position);

-- +goose Down
DROP TABLE grid_people;
DROP TABLE departments;
DROP VIEW grids;
DROP TABLE grid_versions;
DROP TABLE layers;
