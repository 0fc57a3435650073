-- Webhook deliveries go a department at a time, in order: the claim reads
-- each department's undelivered deliveries by id (postgres/outbox.go).

-- +goose Up
CREATE INDEX outbox_department_pending ON outbox (department, id) WHERE delivered_at IS NULL;

-- +goose Down
DROP INDEX outbox_department_pending;
