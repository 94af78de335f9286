-- The first schema: offline credentials (one row per user, one column per
-- field of grant.Record, so that an admin can query them) and server-side
-- sessions.

-- +goose Up

-- sub is Google's user id. PostgreSQL text cannot hold NUL, which a sub
-- may (in principle), so the store writes "\" as "\\" and NUL as "\0": a
-- real sub (digits) is stored as it is. COLLATE "C" orders subs bytewise,
-- which List's keyset pagination relies on.
-- Tokens are text: the store may later keep them sealed (AES-GCM, base64).
CREATE TABLE credentials (
    sub            text COLLATE "C" PRIMARY KEY,
    version        integer     NOT NULL,
    email          text        NOT NULL DEFAULT '',
    name           text        NOT NULL DEFAULT '',
    scopes         text[]      NOT NULL DEFAULT '{}',
    status         text        NOT NULL,
    revoked_reason text        NOT NULL DEFAULT '',
    revoked_at     timestamptz,
    access_token   text        NOT NULL DEFAULT '',
    token_type     text        NOT NULL DEFAULT '',
    refresh_token  text        NOT NULL DEFAULT '',
    expiry         timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

-- id_hash is SHA-256 of the random session id the cookie carries: reading
-- this table does not give anyone a cookie that works.
CREATE TABLE sessions (
    id_hash    bytea       PRIMARY KEY,
    sub        text COLLATE "C" NOT NULL,
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_sub_idx ON sessions (sub);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- +goose Down
DROP TABLE sessions;
DROP TABLE credentials;
