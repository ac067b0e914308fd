-- A tenant's own tables. Runs with search_path = the tenant's schema, as the tenant's role,
-- so every object below belongs to that role and lives in that schema only.

CREATE TABLE users (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    email             text        NOT NULL,
    -- lower-cased, trimmed: what uniqueness and sign-in use
    email_normalized  text        NOT NULL UNIQUE,
    password_hash     text,
    role              text        NOT NULL DEFAULT 'authenticated',
    metadata          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at   timestamptz,
    banned_until      timestamptz
);

-- Append-only, hash-chained audit log: each row stores the previous row's hash and the
-- SHA-256 of that hash with its own content, so changing or removing any row breaks the chain
-- from that row on (audit_log_verify() names the first broken row).
CREATE TABLE audit_log (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- position in the chain, assigned under the chain lock (ids can commit out of order)
    seq          bigint      NOT NULL UNIQUE,
    occurred_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor        text        NOT NULL,
    action       text        NOT NULL,
    target       text,
    details      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    prev_hash    text        NOT NULL,
    hash         text        NOT NULL
);

CREATE FUNCTION audit_log_hash(prev_hash text, seq bigint, occurred_at timestamptz, actor text,
                               action text, target text, details jsonb)
RETURNS text LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT encode(sha256(convert_to(
        prev_hash || '|' || seq::text || '|'
        || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '|'
        || actor || '|' || action || '|' || coalesce(target, '') || '|' || details::text,
        'UTF8')), 'hex')
$$;

-- Chains each new row to the last one. The advisory lock serialises writers of this tenant's
-- log until they commit, and (in READ COMMITTED, as every writer uses) the SELECT after it sees
-- the previous writer's committed row, so two inserts never chain to the same predecessor.
CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(TG_TABLE_SCHEMA || '.audit_log', 0));
    SELECT seq, hash INTO last_seq, last_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
    NEW.occurred_at := coalesce(NEW.occurred_at, clock_timestamp());
    NEW.hash := audit_log_hash(NEW.prev_hash, NEW.seq, NEW.occurred_at, NEW.actor, NEW.action, NEW.target, NEW.details);
    RETURN NEW;
END
$$;

CREATE FUNCTION audit_log_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_reject_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_reject_change();

-- The id of the first row (in chain order) whose link is broken, or NULL when the chain holds.
CREATE FUNCTION audit_log_verify() RETURNS bigint LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    r record;
    expected_prev text := repeat('0', 64);
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY seq LOOP
        IF r.prev_hash <> expected_prev
           OR r.hash <> audit_log_hash(r.prev_hash, r.seq, r.occurred_at, r.actor, r.action, r.target, r.details) THEN
            RETURN r.id;
        END IF;
        expected_prev := r.hash;
    END LOOP;
    RETURN NULL;
END
$$;

-- Writers give actor, action, target and details; the trigger fills seq, prev_hash and hash.
INSERT INTO audit_log (actor, action) VALUES ('platform', 'tenant.created');
