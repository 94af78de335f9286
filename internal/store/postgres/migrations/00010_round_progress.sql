-- A round's progress, for signin-admin rounds: the users done (ok,
-- revoked or skipped) and failed so far, added by each offline-fetch
-- process from what it reported (package rounds, every 200 ms or so).
-- users - done - failed are waiting: queued, running or to be retried.

-- +goose Up
ALTER TABLE offline_rounds
    ADD COLUMN done   integer NOT NULL DEFAULT 0,
    ADD COLUMN failed integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE offline_rounds DROP COLUMN done, DROP COLUMN failed;
