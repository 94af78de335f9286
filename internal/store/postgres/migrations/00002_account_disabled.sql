-- Google's Cross-Account Protection can disable an account (say, it was
-- hijacked): the app then refuses the user's sign-in until Google enables
-- it again. refreshed_at is when Google last gave the user's tokens, for
-- operators (signin-admin users list).

-- +goose Up
ALTER TABLE credentials ADD COLUMN disabled_at timestamptz;
ALTER TABLE credentials ADD COLUMN disabled_reason text NOT NULL DEFAULT '';
ALTER TABLE credentials ADD COLUMN refreshed_at timestamptz;

-- +goose Down
ALTER TABLE credentials DROP COLUMN refreshed_at;
ALTER TABLE credentials DROP COLUMN disabled_reason;
ALTER TABLE credentials DROP COLUMN disabled_at;
