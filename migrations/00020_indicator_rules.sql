-- The limits flags are raised at (GET and PUT /v1/stats/rules): one row
-- for the deployment, the rules as gridmap.IndicatorRules' JSON. No row
-- means gridmap.DefaultIndicatorRules; a field missing from the stored
-- JSON (one added later) keeps its default, so the defaults are written
-- once, in Go.

-- +goose Up
CREATE TABLE indicator_rules (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    rules      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE indicator_rules;
