-- Grid workers' patrols: the points their phones record, their last
-- positions, the live feed's worker events, and the worker a report is
-- dispatched to.
--
-- Track points come by the million a day and leave after the retention
-- (gridmap serve --track-retention): the table is partitioned by UTC day,
-- partitions are made ahead by the retention job (by intake for a day
-- without one) and detached and dropped whole by it
-- (postgres/track_partitions.go). There is no default partition: DETACH
-- PARTITION ... CONCURRENTLY needs none. A point
-- is stored once per account, device and time, so a retried batch stores
-- nothing twice. There is no foreign key to accounts: checking one per
-- point would cost intake a third of its rate, and accounts are disabled,
-- not deleted.

-- +goose Up
CREATE TABLE track_points (
    account_id bigint NOT NULL,
    device     text NOT NULL,
    t          timestamptz NOT NULL,
    location   geometry(Point, 4326) NOT NULL,
    accuracy_m real,
    PRIMARY KEY (account_id, device, t)
) PARTITION BY RANGE (t);
-- A worker's points in time order whatever the device: playback, coverage,
-- the last patrol of a grid.
CREATE INDEX track_points_account_t ON track_points (account_id, t);

-- The last position of each worker, moved by intake only forwards in time.
-- layer_id and scope_codes are the worker's person grid and the codes of
-- its chain when the position was written (gridmap.WorkerGrid), for
-- keeping scoped readers to their workers as reports' scope_codes do.
CREATE TABLE worker_positions (
    account_id  bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    device      text NOT NULL,
    t           timestamptz NOT NULL,
    location    geometry(Point, 4326) NOT NULL,
    accuracy_m  real,
    layer_id    text,
    scope_codes text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX worker_positions_t ON worker_positions (t);
-- The workers of some grids, for the nearest on-duty workers of a report.
CREATE INDEX worker_positions_scope ON worker_positions USING gin (scope_codes);

-- A worker's new position in the live feed, numbered like report events
-- and boundary changes (migration 00010): id from feed_ids when written,
-- seq by the feed after commit. data is the event as served.
CREATE TABLE worker_events (
    id          bigint PRIMARY KEY DEFAULT nextval('feed_ids'),
    seq         bigint,
    account_id  bigint NOT NULL,
    layer_id    text,
    scope_codes text[] NOT NULL DEFAULT '{}',
    data        json NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX worker_events_feed ON worker_events (seq) WHERE seq IS NOT NULL;
CREATE INDEX worker_events_unnumbered ON worker_events (id) WHERE seq IS NULL;
CREATE INDEX worker_events_at ON worker_events (at);

-- The worker (an account's username) a report was last dispatched to.
ALTER TABLE reports ADD COLUMN assignee text;

-- +goose Down
ALTER TABLE reports DROP COLUMN assignee;
DROP TABLE worker_events;
DROP TABLE worker_positions;
DROP TABLE track_points;
