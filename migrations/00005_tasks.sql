-- Department tasks: escalating a report (吹哨) opens a task for each
-- department called in, each with its own report-in (报到) deadline.

-- +goose Up
CREATE TABLE report_tasks (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id      bigint NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    department     text NOT NULL REFERENCES departments (code),
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'reported_in')),
    report_in_due  timestamptz NOT NULL,
    reported_in_at timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX report_tasks_open ON report_tasks (report_id, department) WHERE status = 'open';

-- +goose Down
DROP TABLE report_tasks;
