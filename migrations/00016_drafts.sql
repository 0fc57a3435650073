-- Drafts: a whole copy of a layer that an editor loads from a messy file and
-- cleans up before publishing it. Drafts live in tables of their own rather
-- than as versions in grid_versions: every lookup, tile, search, assignment
-- and re-routing query reads grid_versions (or the grids view), so a draft
-- kept apart cannot leak into any of them, and none of those queries needs
-- an extra condition that one of them could forget.

-- +goose Up
CREATE TABLE drafts (
    layer_id          text PRIMARY KEY REFERENCES layers (id) ON DELETE CASCADE,
    author            text NOT NULL DEFAULT '',
    -- The layer's data version the draft was started from.
    base_data_version bigint NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The draft's grids: one row per code, no history (publishing makes the
-- versions). version counts the draft's own edits, for if_match.
CREATE TABLE draft_grids (
    layer_id    text NOT NULL REFERENCES drafts (layer_id) ON DELETE CASCADE,
    code        text NOT NULL CHECK (code <> ''),
    version     integer NOT NULL CHECK (version >= 1),
    name        text NOT NULL DEFAULT '',
    level       text NOT NULL,
    parent_code text CHECK (parent_code IS NULL OR parent_code <> code),
    geom        geometry(MultiPolygon, 4326) NOT NULL,
    attributes  jsonb NOT NULL DEFAULT '{}',
    -- The people to publish with the grid; NULL keeps the published ones.
    people      jsonb,
    -- Always NULL: a draft holds only current grids. The column lets the
    -- changeset and coverage statements read a draft exactly as they read
    -- grid_versions, with the table name as the only difference.
    valid_to    timestamptz CHECK (valid_to IS NULL),
    PRIMARY KEY (layer_id, code)
);
CREATE INDEX draft_grids_parent ON draft_grids (layer_id, parent_code);
CREATE INDEX draft_grids_geom ON draft_grids USING gist (geom);

-- +goose Down
DROP TABLE draft_grids;
DROP TABLE drafts;
