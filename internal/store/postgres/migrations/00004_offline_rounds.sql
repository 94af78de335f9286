-- Rounds of offline-fetch shared by several processes (package rounds):
-- one row per round. The users' jobs themselves are River's (river_job,
-- created by rivermigrate), with only the round's id and the user's sub as
-- arguments: never a token.

-- +goose Up

-- key names the round: "every 1h0m0s 2026-01-02T03:00:00Z" for a scheduled
-- round (so the interval's round is started once however many workers
-- run), "run <time>" for a one-off run. A round is open until finished_at
-- is set, once none of its jobs is left to run; at most one round is open
-- at a time (the partial unique index), so a second one is never started
-- by accident while one runs.
CREATE TABLE offline_rounds (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         text        NOT NULL UNIQUE,
    open        boolean     NOT NULL DEFAULT true,
    users       integer     NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK (open = (finished_at IS NULL))
);
CREATE UNIQUE INDEX offline_rounds_one_open_idx ON offline_rounds (open) WHERE open;

-- +goose Down
DROP TABLE offline_rounds;
