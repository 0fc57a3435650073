-- Time limits per workflow step: how long a category's reports may wait
-- for registration, dispatch, start, resolution, verification and closing.

-- +goose Up
ALTER TABLE categories ADD COLUMN step_limits jsonb NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE categories DROP COLUMN step_limits;
