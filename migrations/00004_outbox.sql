-- Notifications out: a durable outbox written in the same transaction as
-- the report events it announces, delivered to each department's webhook
-- at least once, signed with the department's secret.

-- +goose Up
ALTER TABLE departments ADD COLUMN webhook_secret text NOT NULL DEFAULT '';

CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    department      text NOT NULL REFERENCES departments (code) ON DELETE CASCADE,
    url             text NOT NULL,
    event_id        bigint NOT NULL REFERENCES report_events (id) ON DELETE CASCADE,
    payload         jsonb NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- +goose Down
DROP TABLE outbox;
ALTER TABLE departments DROP COLUMN webhook_secret;
