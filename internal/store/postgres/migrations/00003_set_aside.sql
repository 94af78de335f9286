-- A credentials row that cannot be read (damaged, or written by a newer
-- program) is moved here when the user grants offline access again, so that
-- the new grant can take its place and an operator can still look at it.

-- +goose Up
CREATE TABLE credentials_set_aside (
    LIKE credentials INCLUDING DEFAULTS,
    set_aside_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE credentials_set_aside;
