-- Sign-in writes nothing: the session cookie is the session (sealed, with
-- its own id, user and issue time). What the database keeps is what ended
-- sessions: per user, the time at or before which every session they were
-- issued is ended (sign-out everywhere, disconnect, Google's security
-- events, signin-admin sessions end: one row write, however many sessions
-- the user holds), and the SHA-256 of each single session signed out, until
-- that session would have expired anyway. The sessions table (a row per
-- sign-in, with a data column nothing used) goes: no cookie of this version
-- names a row of it, and its holders sign in again once.

-- +goose Up
DROP TABLE sessions;

CREATE TABLE session_ends (
    sub         text COLLATE "C" PRIMARY KEY,
    valid_after timestamptz,          -- null: never ended all at once
    keep_until  timestamptz NOT NULL  -- every session it ends has expired by then
);
CREATE INDEX session_ends_keep_until_idx ON session_ends (keep_until);

CREATE TABLE ended_sessions (
    sub        text COLLATE "C" NOT NULL,
    key        text        NOT NULL,  -- SHA-256 of the session id, base64url
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (sub, key)
);
CREATE INDEX ended_sessions_expires_at_idx ON ended_sessions (expires_at);

-- +goose Down
DROP TABLE ended_sessions;
DROP TABLE session_ends;
CREATE TABLE sessions (
    id_hash    bytea       PRIMARY KEY,
    sub        text COLLATE "C" NOT NULL,
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_sub_idx ON sessions (sub);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
