-- Every change of a credentials row, by anyone (a replica of signin,
-- offline-fetch, signin-admin, psql), is announced on the channel
-- signin_credentials with the row's sub as stored (escaped, see
-- escapeText), once the transaction commits: signin's replicas keep rows in
-- memory (Config.RecordCache) and drop a user's on hearing of it. An empty
-- payload means "every row": TRUNCATE, or a sub too long for a
-- notification's payload (under 8000 bytes; the store's subs are at most
-- 255, but a row written by hand might not be).

-- +goose Up

-- +goose StatementBegin
CREATE FUNCTION credentials_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('signin_credentials', '');
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('signin_credentials',
            CASE WHEN octet_length(OLD.sub) < 4000 THEN OLD.sub ELSE '' END);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        -- pg_notify folds a payload sent twice in one transaction into
        -- one: an UPDATE keeping its sub notifies once.
        PERFORM pg_notify('signin_credentials',
            CASE WHEN octet_length(NEW.sub) < 4000 THEN NEW.sub ELSE '' END);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER credentials_notify_row
    AFTER INSERT OR UPDATE OR DELETE ON credentials
    FOR EACH ROW EXECUTE FUNCTION credentials_notify();

CREATE TRIGGER credentials_notify_truncate
    AFTER TRUNCATE ON credentials
    FOR EACH STATEMENT EXECUTE FUNCTION credentials_notify();

-- +goose Down
DROP TRIGGER credentials_notify_truncate ON credentials;
DROP TRIGGER credentials_notify_row ON credentials;
DROP FUNCTION credentials_notify();
