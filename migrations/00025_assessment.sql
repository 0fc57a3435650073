-- Assessment of the people in the field (述职评议考核): who filed each
-- report, and each grid's patrol coverage per day, measured once a day is
-- over and kept.
--
-- Coverage of a day costs seconds (postgres/patrol_coverage.go); a month's
-- assessment would measure thirty days. A day is measured once it is over
-- (gridmap serve measures the last 31 days when not kept, every 5 minutes,
-- and a day asked for) and its rows are kept in patrol_days, with a row in
-- patrol_day_runs saying the day of that layer and level is complete.
-- Points can arrive late (a phone that was offline sends yesterday's walk
-- this morning): intake then appends a row to patrol_day_changes for the
-- worker's layer and each day over (or about to be) the stored points fall
-- on, in the same statement; the next measurement of that day takes the
-- rows it saw and measures again. Appending, never updating, keeps intake free of shared
-- row locks, and a change committed after the measurement began keeps its
-- row for the next one.

-- +goose Up
-- The username of the account that filed the report (a grid worker
-- reporting what they found); NULL when filed with an API token.
ALTER TABLE reports ADD COLUMN filed_by text;
CREATE INDEX reports_filed_by ON reports (filed_by, reported_at) WHERE filed_by IS NOT NULL;

-- A layer's measured days, of its default patrol level (gridmap.PatrolLevel:
-- the level patrol coverage is kept for; another level is measured when
-- asked). day
-- is a date in the time zone tz (gridmap serve --tz). started_at is when
-- the measurement read the day's changes: of two measurements of a day the
-- later one is kept.
CREATE TABLE patrol_day_runs (
    layer_id    text NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
    tz          text NOT NULL,
    day         date NOT NULL,
    level       text NOT NULL,
    started_at  timestamptz NOT NULL,
    measured_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (layer_id, tz, day)
);

-- One row per grid of the level, as the grids and their workers were when
-- the day was measured (gridmap.CoverageRow).
CREATE TABLE patrol_days (
    layer_id   text NOT NULL,
    tz         text NOT NULL,
    day        date NOT NULL,
    code       text NOT NULL,
    name       text NOT NULL,
    workers    integer NOT NULL,
    points     integer NOT NULL,
    covered_m2 double precision NOT NULL,
    area_m2    double precision NOT NULL,
    coverage   double precision NOT NULL, -- gridmap.CoverageShare
    PRIMARY KEY (layer_id, tz, day, code),
    FOREIGN KEY (layer_id, tz, day) REFERENCES patrol_day_runs ON DELETE CASCADE
);
CREATE INDEX patrol_days_code ON patrol_days (layer_id, tz, code, day);

-- The points each worker of the layer recorded that day (the worker's
-- days on patrol).
CREATE TABLE patrol_worker_days (
    layer_id   text NOT NULL,
    tz         text NOT NULL,
    day        date NOT NULL,
    account_id bigint NOT NULL,
    points     integer NOT NULL,
    PRIMARY KEY (layer_id, tz, day, account_id),
    FOREIGN KEY (layer_id, tz, day) REFERENCES patrol_day_runs ON DELETE CASCADE
);
CREATE INDEX patrol_worker_days_account ON patrol_worker_days (account_id, day);

CREATE TABLE patrol_day_changes (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer_id text NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
    tz       text NOT NULL,
    day      date NOT NULL
);
CREATE INDEX patrol_day_changes_day ON patrol_day_changes (layer_id, tz, day);

-- A job that one instance runs at a time holds its lease until a time
-- (postgres.takeLease); another instance takes it once it has run out.
CREATE TABLE job_leases (
    name   text PRIMARY KEY,
    holder text NOT NULL,
    until  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE job_leases;
DROP TABLE patrol_day_changes;
DROP TABLE patrol_worker_days;
DROP TABLE patrol_days;
DROP TABLE patrol_day_runs;
DROP INDEX reports_filed_by;
ALTER TABLE reports DROP COLUMN filed_by;
