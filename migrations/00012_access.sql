-- Sign-in, sessions, tokens and the audit log.
--
-- No secret is stored in clear: passwords as argon2id PHC strings, session,
-- token and sign-in link secrets as their SHA-256. A session's CSRF token is
-- not stored at all: it is derived from the session's secret (an HMAC), so
-- the server can recompute it from the cookie it is shown.
--
-- A scope (and a person link) is kept as text, not as a foreign key: a
-- deleted layer or grid must not widen a scoped account by clearing its
-- scope (ON DELETE SET NULL) nor silently delete it (CASCADE). A scope
-- naming a grid that no longer exists holds nothing.

-- +goose Up
CREATE TABLE accounts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9_.@-]{0,63}$'),
    display_name    text NOT NULL DEFAULT '',
    password_hash   text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role            text NOT NULL CHECK (role IN ('viewer', 'reporter', 'dispatcher', 'editor', 'admin')),
    -- An explicit scope; with none, an account linked to a person is
    -- scoped to the person's grid.
    scope_layer     text,
    scope_code      text,
    person_layer    text,
    person_grid     text,
    person_name     text,
    disabled_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at timestamptz,
    CHECK ((scope_layer IS NULL) = (scope_code IS NULL)),
    CHECK ((person_layer IS NULL) = (person_grid IS NULL) AND (person_grid IS NULL) = (person_name IS NULL))
);

-- A session is found by the SHA-256 of the secret in its cookie.
CREATE TABLE sessions (
    hash         bytea PRIMARY KEY CHECK (length(hash) = 32),
    account_id   bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Written at most about once a minute per session, not on every request.
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    address      text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_account ON sessions (account_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    hash         bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    role         text NOT NULL CHECK (role IN ('viewer', 'reporter', 'dispatcher', 'editor', 'admin')),
    scope_layer  text,
    scope_code   text,
    created_by   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    CHECK ((scope_layer IS NULL) = (scope_code IS NULL))
);

CREATE TABLE signin_links (
    hash       bytea PRIMARY KEY CHECK (length(hash) = 32),
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX signin_links_expires ON signin_links (expires_at);

-- One row per failed (or still running) sign-in attempt, counted per name
-- and per address over the last minutes by every instance sharing the
-- database. Rows older than the window are deleted as new ones come.
CREATE TABLE signin_failures (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text NOT NULL,
    address  text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signin_failures_username ON signin_failures (username, at);
CREATE INDEX signin_failures_address ON signin_failures (address, at);
CREATE INDEX signin_failures_at ON signin_failures (at);

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL DEFAULT '',
    role       text NOT NULL DEFAULT '',
    action     text NOT NULL,
    target     text NOT NULL DEFAULT '',
    request_id text NOT NULL DEFAULT '',
    status     integer NOT NULL DEFAULT 0,
    address    text NOT NULL DEFAULT '',
    before     jsonb,
    after      jsonb
);
CREATE INDEX audit_log_actor ON audit_log (actor, id DESC);
CREATE INDEX audit_log_target ON audit_log (target text_pattern_ops);
CREATE INDEX audit_log_at ON audit_log (at);

-- The audit log is append-only: even its owner cannot rewrite it through
-- SQL without dropping the trigger first. Statement-level, so that an
-- UPDATE or DELETE matching no row is refused too.
-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only;
DROP TABLE signin_failures;
DROP TABLE signin_links;
DROP TABLE tokens;
DROP TABLE sessions;
DROP TABLE accounts;
