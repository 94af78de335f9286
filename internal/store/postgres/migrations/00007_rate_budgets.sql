-- Budgets of calls to Google shared by every offline-fetch process on the
-- database (offline-fetch -rate): one row per budget ("people" for the
-- People API, "token" for refreshes at the token endpoint). A process takes
-- slots, the times at which it may send its next calls: next_at is the
-- first free one, and each slot taken moves it on by 60 s / (per_minute *
-- factor), so that the fleet's calls are evenly spaced at the rate however
-- many processes take them. A 429 from Google halves factor (at most once
-- a second) and moves next_at past its Retry-After; factor then grows back
-- to 1 with time (see Store.TakeSlots).

-- +goose Up
CREATE TABLE rate_budgets (
    name        text             PRIMARY KEY,
    per_minute  integer          NOT NULL CHECK (per_minute > 0),
    factor      double precision NOT NULL DEFAULT 1 CHECK (factor > 0 AND factor <= 1),
    factor_at   timestamptz      NOT NULL DEFAULT now(),
    next_at     timestamptz      NOT NULL DEFAULT now(),
    refused     bigint           NOT NULL DEFAULT 0,
    lowered_at  timestamptz
);

-- +goose Down
DROP TABLE rate_budgets;
