-- Database changes for realtime's `postgres_changes` (docs/realtime.md "Postgres changes").
--
-- A table takes part once `realtime_enable('<table>')` has put the capture trigger on it (the
-- per-table opt-in, as a table's membership of Supabase's `supabase_realtime` publication):
-- after each inserted, updated or deleted row, `realtime_capture()` NOTIFYs `realtime_changes`
-- with the change as JSON. NOTIFY is transactional: a change is announced when, and only when,
-- its transaction commits. A change whose JSON exceeds what a notification carries (8,000
-- bytes) is kept in `realtime_outbox` and only its id is notified; realtime reads it back. Rows
-- older than ten minutes are removed as the next one is added.
--
-- Realtime checks each change against each subscriber's rights as the platform role (to which
-- `realtime_enable` grants SELECT on the table), with the subscriber's claims in
-- `request.jwt.claims`: row-level security policies on the table apply to that role (it owns
-- nothing), and read the claims through `auth_uid()`, `auth_role()` and `auth_claims()`.

CREATE TABLE realtime_outbox (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX realtime_outbox_created_at ON realtime_outbox (created_at);

-- The claims of the user a statement acts for, as realtime sets them for its checks.
CREATE FUNCTION auth_claims() RETURNS jsonb LANGUAGE sql STABLE
AS $$ SELECT coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $$;

CREATE FUNCTION auth_uid() RETURNS uuid LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$ SELECT nullif(auth_claims() ->> 'sub', '')::uuid $$;

CREATE FUNCTION auth_role() RETURNS text LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$ SELECT auth_claims() ->> 'role' $$;

-- Announces one row's change. The record is the row as JSON (`to_jsonb`); the old record holds
-- the primary key only, unless the table's REPLICA IDENTITY is FULL, as Supabase's do.
-- It runs as the tenant role (SECURITY DEFINER), so whoever writes the row may also fill the
-- outbox.
CREATE FUNCTION realtime_capture() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    columns jsonb;
    keys    text[];
    old_row jsonb;
    change  text;
    stored  bigint;
BEGIN
    SELECT jsonb_agg(jsonb_build_object('name', a.attname, 'type', t.typname) ORDER BY a.attnum)
      INTO columns
      FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped;
    SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
      INTO keys
      FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = TG_RELID AND i.indisprimary;
    IF TG_OP <> 'INSERT' THEN
        old_row := to_jsonb(OLD);
        IF (SELECT relreplident FROM pg_catalog.pg_class WHERE oid = TG_RELID) <> 'f' THEN
            SELECT coalesce(jsonb_object_agg(key, value), '{}') INTO old_row FROM jsonb_each(old_row) WHERE key = ANY (keys);
        END IF;
    END IF;
    change := jsonb_build_object(
        'schema', TG_TABLE_SCHEMA,
        'table', TG_TABLE_NAME,
        'type', TG_OP,
        'commit_timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'columns', columns,
        'primary_key', to_jsonb(keys),
        'record', CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) END,
        'old_record', old_row
    )::text;
    IF octet_length(change) <= 7900 THEN
        PERFORM pg_notify('realtime_changes', change);
    ELSE
        DELETE FROM realtime_outbox WHERE created_at < now() - interval '10 minutes';
        INSERT INTO realtime_outbox (payload) VALUES (change) RETURNING id INTO stored;
        PERFORM pg_notify('realtime_changes', jsonb_build_object('schema', TG_TABLE_SCHEMA, 'outbox', stored)::text);
    END IF;
    RETURN NULL;
END
$$;

-- The platform's login role (the one running this migration): realtime reads enabled tables as it.
DO $$
BEGIN
    EXECUTE format('CREATE FUNCTION realtime_reader() RETURNS name LANGUAGE sql IMMUTABLE AS %L', format('SELECT %L::name', session_user));
END
$$;

-- Puts a table of this schema into realtime's changes (idempotent), and lets realtime read it.
CREATE FUNCTION realtime_enable(target regclass) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    IF (SELECT c.relnamespace <> (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = current_schema()) OR c.relkind NOT IN ('r', 'p')
        FROM pg_catalog.pg_class c WHERE c.oid = target) THEN
        RAISE EXCEPTION 'realtime_enable: % is not a table of schema %', target, current_schema() USING ERRCODE = '42501';
    END IF;
    -- The platform's own tables: users hold password hashes, the audit log is the platform's.
    IF target IN ('users'::regclass, 'audit_log'::regclass, '_migrations'::regclass, 'realtime_outbox'::regclass) THEN
        RAISE EXCEPTION 'realtime_enable: % is the platform''s table', target USING ERRCODE = '42501';
    END IF;
    EXECUTE format('CREATE OR REPLACE TRIGGER realtime_changes AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION realtime_capture()', target);
    EXECUTE format('GRANT SELECT ON %s TO %I', target, realtime_reader());
END
$$;

-- Takes a table out of realtime's changes (idempotent), and realtime's read of it.
CREATE FUNCTION realtime_disable(target regclass) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    IF (SELECT c.relnamespace <> (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = current_schema())
        FROM pg_catalog.pg_class c WHERE c.oid = target) THEN
        RAISE EXCEPTION 'realtime_disable: % is not a table of schema %', target, current_schema() USING ERRCODE = '42501';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS realtime_changes ON %s', target);
    -- Realtime read it for its checks alone (the platform's own tables are never opted in).
    IF target NOT IN ('users'::regclass, 'audit_log'::regclass) THEN
        EXECUTE format('REVOKE SELECT ON %s FROM %I', target, realtime_reader());
    END IF;
END
$$;

-- The tables in realtime's changes.
CREATE FUNCTION realtime_tables() RETURNS SETOF name LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    SELECT c.relname FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
     WHERE t.tgname = 'realtime_changes' AND c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = current_schema())
     ORDER BY 1
$$;

REVOKE ALL ON FUNCTION realtime_enable(regclass), realtime_disable(regclass), realtime_tables() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION realtime_enable(regclass), realtime_disable(regclass), realtime_tables() TO SESSION_USER;
GRANT SELECT ON realtime_outbox TO SESSION_USER;
