-- Reports and the responsibility list: categories with departments and time
-- limits, the working-day calendar, reports with their assignment, and the
-- event history of each report.

-- +goose Up
CREATE TABLE categories (
    code         text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name         text NOT NULL CHECK (name <> ''),
    parent_code  text REFERENCES categories (code) ON DELETE SET NULL,
    departments  text[] NOT NULL DEFAULT '{}',
    limit_value  double precision NOT NULL CHECK (limit_value >= 0),
    limit_clock  text NOT NULL CHECK (limit_clock IN ('urgent_hours', 'working_hours', 'working_days', 'calendar_days')),
    urgent_value double precision CHECK (urgent_value >= 0),
    urgent_clock text CHECK (urgent_clock IN ('urgent_hours', 'working_hours', 'working_days', 'calendar_days')),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((urgent_value IS NULL) = (urgent_clock IS NULL))
);

-- Dates that break the Monday-Friday rule: holidays, and weekend days
-- worked in exchange (调休).
CREATE TABLE calendar_days (
    day     date PRIMARY KEY,
    working boolean NOT NULL,
    name    text NOT NULL DEFAULT ''
);

CREATE TABLE reports (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id   text NOT NULL UNIQUE CHECK (external_id <> ''),
    -- sha256 of the request's content: a retry with the same external_id
    -- and content is the same report, other content is a conflict.
    content_hash  bytea NOT NULL,
    category      text NOT NULL REFERENCES categories (code),
    description   text NOT NULL DEFAULT '',
    location      geometry(Geometry, 4326) NOT NULL,
    original      jsonb,
    crs           text NOT NULL,
    accuracy_m    double precision NOT NULL DEFAULT 0 CHECK (accuracy_m >= 0),
    source        text NOT NULL DEFAULT '',
    urgent        boolean NOT NULL DEFAULT false,
    reported_at   timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL,
    -- the status a suspended report resumes to
    resume_status text,
    layer_id      text REFERENCES layers (id) ON DELETE SET NULL,
    primary_code  text,
    tier          text NOT NULL,
    due_at        timestamptz NOT NULL,
    assignment    jsonb NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reports_location ON reports USING gist (location);
CREATE INDEX reports_status ON reports (status, id);
CREATE INDEX reports_primary ON reports (layer_id, primary_code, id);
CREATE INDEX reports_received ON reports (received_at, id);

CREATE TABLE report_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id   bigint NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    action      text NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    actor       text NOT NULL DEFAULT '',
    note        text NOT NULL DEFAULT '',
    departments text[] NOT NULL DEFAULT '{}',
    data        jsonb,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX report_events_report ON report_events (report_id, id);

-- +goose Down
DROP TABLE report_events;
DROP TABLE reports;
DROP TABLE calendar_days;
DROP TABLE categories;
