-- Auth and realtime connect as login roles of their own (deploy/postgres/service-roles.sql),
-- not as provisioning's, which ran migrations 2 and 5 and so received their grants. This one
-- grants the same to the roles provisioning names in `platform.auth_role` and
-- `platform.realtime_role` (its AUTH_DATABASE_ROLE and REALTIME_DATABASE_ROLE; unset, its own
-- role, as before):
--
-- - auth: the schema, read and change users, append to and read the audit log;
-- - realtime: the schema, its opt-in functions, the outbox, and every table already opted in;
--   `realtime_reader()` (whom `realtime_enable` grants a table to) becomes realtime's role.
--
-- Provisioning keeps what migrations 2 and 5 gave it: it can take the tenant's role whenever it
-- needs it (CREATEROLE, and on PostgreSQL 16 ADMIN OPTION on the role: its maker's, or given by
-- deploy/postgres/adopt-service-roles.sql), so those grants give it nothing it lacks, and
-- revoking them here would cut off a service still connecting as the old single role during an
-- upgrade.

DO $$
DECLARE
    auth_role     name := coalesce(nullif(current_setting('platform.auth_role', true), ''), session_user);
    realtime_role name := coalesce(nullif(current_setting('platform.realtime_role', true), ''), session_user);
    enabled       name;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I, %I', current_schema(), auth_role, realtime_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON users TO %I', auth_role);
    EXECUTE format('GRANT SELECT, INSERT ON audit_log TO %I', auth_role);
    EXECUTE format('CREATE OR REPLACE FUNCTION realtime_reader() RETURNS name LANGUAGE sql IMMUTABLE AS %L',
                   format('SELECT %L::name', realtime_role));
    EXECUTE format('GRANT EXECUTE ON FUNCTION realtime_enable(regclass), realtime_disable(regclass), realtime_tables() TO %I',
                   realtime_role);
    EXECUTE format('GRANT SELECT ON realtime_outbox TO %I', realtime_role);
    FOR enabled IN SELECT realtime_tables() LOOP
        EXECUTE format('GRANT SELECT ON %I.%I TO %I', current_schema(), enabled, realtime_role);
    END LOOP;
END
$$;
