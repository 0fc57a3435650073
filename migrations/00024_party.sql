-- Party organisations of grids, streets' joint meetings, leaders' grids
-- and their check-ins (issue 17).
--
-- A party organisation belongs to a grid's code, like its people: a code
-- survives boundary versions, so the row is keyed by (layer, code) and not
-- by a grid version. Grids and accounts are referred to by text and id as
-- elsewhere: deleting a grid leaves its organisation to be deleted or
-- re-attached by hand, and lists show only current grids.

-- +goose Up
CREATE TABLE party_orgs (
    layer_id    text NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
    grid_code   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('branch', 'group')),
    name        text NOT NULL CHECK (name <> ''),
    secretary   jsonb NOT NULL,
    members     jsonb NOT NULL DEFAULT '[]',
    street_code text,
    version     integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    updated_by  text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (layer_id, grid_code)
);

CREATE TABLE party_meetings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer_id    text NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
    street_code text NOT NULL,
    held_at     timestamptz NOT NULL,
    title       text NOT NULL CHECK (title <> ''),
    attendees   text[] NOT NULL DEFAULT '{}',
    created_by  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX party_meetings_street ON party_meetings (layer_id, street_code, held_at DESC);

-- One row per report a meeting took up; event_id is the report's consult
-- event, tier the report's tier after the meeting.
CREATE TABLE party_meeting_items (
    meeting_id bigint NOT NULL REFERENCES party_meetings (id) ON DELETE CASCADE,
    position   integer NOT NULL,
    report_id  bigint NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    decision   text NOT NULL DEFAULT '',
    escalate   boolean NOT NULL DEFAULT false,
    event_id   bigint NOT NULL,
    tier       text NOT NULL,
    PRIMARY KEY (meeting_id, position)
);
CREATE INDEX party_meeting_items_report ON party_meeting_items (report_id);

-- An account with a row here is a leader (包联领导); its grids are in
-- leader_grids.
CREATE TABLE leaders (
    account_id       bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    visits_per_month integer NOT NULL CHECK (visits_per_month BETWEEN 0 AND 100),
    updated_by       text NOT NULL DEFAULT '',
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE leader_grids (
    account_id bigint NOT NULL REFERENCES leaders (account_id) ON DELETE CASCADE,
    layer_id   text NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
    grid_code  text NOT NULL,
    PRIMARY KEY (account_id, layer_id, grid_code)
);
CREATE INDEX leader_grids_grid ON leader_grids (layer_id, grid_code);

-- A check-in (下沉报到). A visit names the one grid it visited (layer_id,
-- grid_code: the finest assigned grid covering the point, else the nearest
-- within the allowance, gridmap.CheckIn); a check-in outside names none and
-- has its distance to the nearest assigned grid, and is imprecise when its
-- stated accuracy was worse than gridmap.CheckInAccuracyCap. day is the
-- check-in's date in the deployment's time zone: visits are counted as
-- distinct (grid, day). client_id is the client's name for it, one per
-- account, so that a retry stores nothing. The assignment is judged when
-- the check-in arrives: later changes of the leader's grids do not rewrite
-- it.
CREATE TABLE checkins (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    client_id   text,
    location    geometry(Point, 4326) NOT NULL,
    -- the point as sent, [lon, lat], when its crs was not WGS84
    original    jsonb,
    crs         text NOT NULL,
    accuracy_m  double precision NOT NULL CHECK (accuracy_m >= 0),
    at          timestamptz NOT NULL,
    day         date NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    note        text NOT NULL DEFAULT '',
    photo_url   text NOT NULL DEFAULT '',
    visit       boolean NOT NULL,
    imprecise   boolean NOT NULL DEFAULT false,
    layer_id    text,
    grid_code   text,
    distance_m  double precision,
    UNIQUE (account_id, client_id),
    CHECK (visit = (grid_code IS NOT NULL)),
    CHECK (visit OR distance_m IS NOT NULL),
    CHECK (NOT (visit AND imprecise))
);
CREATE INDEX checkins_account_at ON checkins (account_id, at);

-- On-site work: a report the leader filed, resolved or closed within
-- gridmap.OnSiteWindow of a visit's check-in, linked when it happened.
CREATE TABLE checkin_reports (
    checkin_id bigint NOT NULL REFERENCES checkins (id) ON DELETE CASCADE,
    report_id  bigint NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    action     text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (checkin_id, report_id, action)
);
CREATE INDEX checkin_reports_report ON checkin_reports (report_id);

-- +goose Down
DROP TABLE checkin_reports;
DROP TABLE checkins;
DROP TABLE leader_grids;
DROP TABLE leaders;
DROP TABLE party_meeting_items;
DROP TABLE party_meetings;
DROP TABLE party_orgs;
