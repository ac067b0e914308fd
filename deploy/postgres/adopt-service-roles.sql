-- Moves a database that ran with one login role for every service (`platform`, LOGIN
-- CREATEROLE, owner of the database) to the four service roles of service-roles.sql, each
-- owning only its schema. For psql as the superuser, in the services' database, once:
--
--   psql -X -v ON_ERROR_STOP=1 -d platform \
--        -v auth_password=… -v provisioning_password=… \
--        -v realtime_password=… -v storage_password=… \
--        -f deploy/postgres/adopt-service-roles.sql
--
-- To keep the passwords off the command line, give them as `\set auth_password '…'` lines on
-- stdin and end with `\i deploy/postgres/adopt-service-roles.sql` (keep -v ON_ERROR_STOP=1 on
-- the command line: without it psql exits 0 after an error in an included file). Optional
-- variables: old_role=<name> when the single role is not called `platform`;
-- keep_database_owner=1 to skip step 4 below.
--
-- The procedure:
--
--   1. Stop all four services (every replica): nothing may connect as `platform` meanwhile.
--   2. Back up the database (pg_dump, or a snapshot).
--   3. Run this script as the superuser (not as `platform`: the session's own role cannot be
--      renamed). It is one transaction: it changes everything or nothing, and may be run again.
--   4. Give each service its own DATABASE_URL (platform_auth, platform_provisioning,
--      platform_realtime, platform_storage, with the passwords given here), and provisioning
--      AUTH_DATABASE_ROLE=platform_auth and REALTIME_DATABASE_ROLE=platform_realtime
--      (compose.yaml and k8s/configmap.yaml set them).
--   5. Start provisioning alone, with that configuration. Its tenant upgrade (tenant migration
--      0006) grants auth's and realtime's roles what they use in each tenant's schema, one
--      tenant at a time, in the background. Wait until it is done: provisioning logs "tenant
--      schemas upgraded", and
--
--        SELECT count(*) FROM provisioning.projects
--         WHERE status = 'ready' AND coalesce(tenant_schema_version, 0) < 6;
--
--      answers 0.
--   6. Start auth, realtime and storage. (Before step 5 is done, auth and realtime cannot reach
--      the tables of a tenant not yet upgraded.)
--
-- What it does:
--
--   1. ALTER ROLE platform RENAME TO platform_provisioning. The role stays the same role (the
--      same OID), so it keeps CREATEROLE, the `provisioning` schema and its tables, every
--      tenant role it created (and, on PostgreSQL 16 and later, its ADMIN OPTION on each), and
--      the grants the tenants' schemas gave it. Renaming clears an MD5 password (PostgreSQL
--      warns: "MD5 password cleared because of role rename"); a SCRAM password is kept. Either
--      way step 2 sets provisioning_password. On PostgreSQL 16 and later it also gets ADMIN
--      OPTION (without INHERIT or SET) on each project's tenant role it lacks it on: the tenant
--      roles of a database that was moved from PostgreSQL 15 by pg_upgrade or a dump, which
--      PostgreSQL 16 would not let it grant itself any more.
--   2. service-roles.sql, then service-schemas.sql (both from this folder): the three other
--      roles, the passwords, CONNECT and TEMPORARY on the database for the four roles only,
--      CREATE for provisioning only, and the schemas (existing ones are kept).
--   3. Schemas auth, realtime and storage, and everything in them (tables, partitioned and
--      foreign tables, views, materialized views, sequences, functions, procedures,
--      aggregates, types, domains, statistics objects), to platform_auth, platform_realtime
--      and platform_storage. Indexes, and sequences of identity or serial columns, follow
--      their table. Anything else in those schemas left with another owner stops the script.
--   4. The database to the superuser running this (ALTER DATABASE … OWNER TO CURRENT_USER).
--      Optional, and recommended: whoever owns the database may change its settings for every
--      session (ALTER DATABASE … SET), grant CONNECT to others and drop it, and (PostgreSQL
--      15 and later, through pg_database_owner) owns its `public` schema, which is on every
--      session's default search_path. Provisioning needs none of that, only the CREATE on the
--      database (tenant schemas) that service-schemas.sql grants it. -v keep_database_owner=1
--      leaves the owner as it is.
--
-- Not done here: the grants the tenants' schemas gave `platform` stay with
-- platform_provisioning; provisioning's tenant migrations decide what it keeps.
\set ON_ERROR_STOP on

-- A missing password stops the script before it changes anything.
\if :{?auth_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'adopt-service-roles.sql: -v auth_password=… is missing'; END $$;
\endif
\if :{?provisioning_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'adopt-service-roles.sql: -v provisioning_password=… is missing'; END $$;
\endif
\if :{?realtime_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'adopt-service-roles.sql: -v realtime_password=… is missing'; END $$;
\endif
\if :{?storage_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'adopt-service-roles.sql: -v storage_password=… is missing'; END $$;
\endif
\if :{?old_role}
\else
\set old_role platform
\endif

BEGIN;

SELECT set_config('platform.adopt_old_role', :'old_role', true) \gset adopt_

-- 1. The single role becomes provisioning's.
DO $$
DECLARE
    old_role text := current_setting('platform.adopt_old_role');
BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'adopt-service-roles.sql must run as a superuser, not as %', current_user;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = old_role) THEN
        IF old_role = 'platform_provisioning' THEN
            NULL;  -- already provisioning's name
        ELSIF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'platform_provisioning') THEN
            RAISE EXCEPTION 'both % and platform_provisioning exist: which one is provisioning''s is for the operator to decide', old_role;
        ELSIF old_role = session_user THEN
            RAISE EXCEPTION 'connect as the superuser, not as %: a session''s own role cannot be renamed', old_role;
        ELSE
            EXECUTE format('ALTER ROLE %I RENAME TO platform_provisioning', old_role);
            RAISE NOTICE 'renamed role % to platform_provisioning', old_role;
        END IF;
    ELSIF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'platform_provisioning') THEN
        RAISE NOTICE 'no role %, platform_provisioning exists: already renamed', old_role;
    ELSE
        RAISE EXCEPTION 'neither % nor platform_provisioning exists: nothing to adopt (a new database: service-roles.sql and service-schemas.sql)', old_role;
    END IF;
END
$$;

-- 1b. PostgreSQL 16 and later: ADMIN OPTION on every project's tenant role. A CREATEROLE role
-- may grant (to itself, for tenant DDL) only roles it has ADMIN OPTION on; PostgreSQL 16 gives
-- it that on the roles it creates, but a tenant role created on PostgreSQL 15 and carried over
-- by pg_upgrade or a dump has none, and provisioning could no longer migrate or drop that
-- tenant. Granted the way PostgreSQL 16 grants it to a role's creator: ADMIN OPTION only, no
-- INHERIT, no SET (no standing membership).
DO $$
DECLARE
    tenant_role name;
BEGIN
    IF current_setting('server_version_num')::int < 160000 OR to_regclass('provisioning.projects') IS NULL THEN
        RETURN;
    END IF;
    FOR tenant_role IN
        SELECT r.rolname FROM provisioning.projects p JOIN pg_catalog.pg_roles r ON r.rolname = 'tenant_' || p.slug
         WHERE NOT r.rolsuper
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                            WHERE m.roleid = r.oid AND m.member = 'platform_provisioning'::regrole AND m.admin_option)
         ORDER BY 1
    LOOP
        EXECUTE format('GRANT %I TO platform_provisioning WITH ADMIN OPTION, INHERIT FALSE, SET FALSE', tenant_role);
        RAISE NOTICE 'platform_provisioning: ADMIN OPTION on %', tenant_role;
    END LOOP;
END
$$;

-- 2. The other roles, the passwords, the database's grants and the schemas.
\ir service-roles.sql
\ir service-schemas.sql

-- 3. Each service's schema and everything in it to its role.
DO $$
DECLARE
    pair   text[];
    nsp    oid;
    role_name text;
    item   record;
    left_over text;
BEGIN
    FOREACH pair SLICE 1 IN ARRAY ARRAY[['auth', 'platform_auth'], ['realtime', 'platform_realtime'], ['storage', 'platform_storage']] LOOP
        role_name := pair[2];
        SELECT oid INTO STRICT nsp FROM pg_catalog.pg_namespace WHERE nspname = pair[1];
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', pair[1], role_name);

        -- Tables (their indexes, TOAST tables, row types and owned sequences follow), views.
        FOR item IN
            SELECT c.relname, c.relkind FROM pg_catalog.pg_class c
             WHERE c.relnamespace = nsp AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
               AND c.relowner <> role_name::regrole
             ORDER BY c.relkind, c.relname
        LOOP
            EXECUTE format('ALTER %s %I.%I OWNER TO %I',
                           CASE item.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                             WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                           pair[1], item.relname, role_name);
        END LOOP;

        -- Sequences no column owns (the others moved with their table above).
        FOR item IN
            SELECT c.relname FROM pg_catalog.pg_class c
             WHERE c.relnamespace = nsp AND c.relkind = 'S' AND c.relowner <> role_name::regrole
             ORDER BY c.relname
        LOOP
            EXECUTE format('ALTER SEQUENCE %I.%I OWNER TO %I', pair[1], item.relname, role_name);
        END LOOP;

        -- Functions, procedures, aggregates (regprocedure: the qualified, quoted signature).
        FOR item IN
            SELECT p.oid::regprocedure AS signature FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = nsp AND p.proowner <> role_name::regrole
             ORDER BY p.proname, p.oid
        LOOP
            EXECUTE format('ALTER ROUTINE %s OWNER TO %I', item.signature, role_name);
        END LOOP;

        -- Enums, ranges and their multiranges, domains, composite types (not a table's row type,
        -- not an array type: those follow their table or element type). Ranges first, and each
        -- owner read again: a multirange follows its range on some PostgreSQL versions, not on
        -- others (15.18 leaves it behind).
        FOR item IN
            SELECT t.oid, t.typname, t.typtype FROM pg_catalog.pg_type t
             WHERE t.typnamespace = nsp AND t.typowner <> role_name::regrole
               AND t.typtype IN ('b', 'c', 'd', 'e', 'r', 'm')
               AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
               AND NOT EXISTS (SELECT FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
             ORDER BY t.typtype = 'm', t.typname
        LOOP
            IF (SELECT t.typowner FROM pg_catalog.pg_type t WHERE t.oid = item.oid) <> role_name::regrole THEN
                EXECUTE format('ALTER %s %I.%I OWNER TO %I', CASE item.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                               pair[1], item.typname, role_name);
            END IF;
        END LOOP;

        -- Extended statistics objects.
        FOR item IN
            SELECT s.stxname FROM pg_catalog.pg_statistic_ext s
             WHERE s.stxnamespace = nsp AND s.stxowner <> role_name::regrole
        LOOP
            EXECUTE format('ALTER STATISTICS %I.%I OWNER TO %I', pair[1], item.stxname, role_name);
        END LOOP;

        -- Nothing in the schema may keep another owner (collations, operators, text search
        -- objects, conversions, operator classes and families are not expected here).
        SELECT string_agg(what, ', ') INTO left_over FROM (
            SELECT 'relation ' || c.relname AS what FROM pg_catalog.pg_class c WHERE c.relnamespace = nsp AND c.relowner <> role_name::regrole
            UNION ALL SELECT 'routine ' || p.oid::regprocedure FROM pg_catalog.pg_proc p WHERE p.pronamespace = nsp AND p.proowner <> role_name::regrole
            UNION ALL SELECT 'type ' || t.typname FROM pg_catalog.pg_type t WHERE t.typnamespace = nsp AND t.typowner <> role_name::regrole
            UNION ALL SELECT 'statistics ' || s.stxname FROM pg_catalog.pg_statistic_ext s WHERE s.stxnamespace = nsp AND s.stxowner <> role_name::regrole
            UNION ALL SELECT 'collation ' || o.collname FROM pg_catalog.pg_collation o WHERE o.collnamespace = nsp AND o.collowner <> role_name::regrole
            UNION ALL SELECT 'operator ' || o.oprname FROM pg_catalog.pg_operator o WHERE o.oprnamespace = nsp AND o.oprowner <> role_name::regrole
            UNION ALL SELECT 'operator class ' || o.opcname FROM pg_catalog.pg_opclass o WHERE o.opcnamespace = nsp AND o.opcowner <> role_name::regrole
            UNION ALL SELECT 'operator family ' || o.opfname FROM pg_catalog.pg_opfamily o WHERE o.opfnamespace = nsp AND o.opfowner <> role_name::regrole
            UNION ALL SELECT 'conversion ' || o.conname FROM pg_catalog.pg_conversion o WHERE o.connamespace = nsp AND o.conowner <> role_name::regrole
            UNION ALL SELECT 'text search configuration ' || o.cfgname FROM pg_catalog.pg_ts_config o WHERE o.cfgnamespace = nsp AND o.cfgowner <> role_name::regrole
            UNION ALL SELECT 'text search dictionary ' || o.dictname FROM pg_catalog.pg_ts_dict o WHERE o.dictnamespace = nsp AND o.dictowner <> role_name::regrole
        ) objects;
        IF left_over IS NOT NULL THEN
            RAISE EXCEPTION 'schema % still has objects not owned by %: %', pair[1], role_name, left_over;
        END IF;
        RAISE NOTICE 'schema % and everything in it: owned by %', pair[1], role_name;
    END LOOP;
END
$$;

-- 4. The database to the superuser.
\if :{?keep_database_owner}
\else
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I OWNER TO CURRENT_USER', current_database());
END
$$;
\endif

COMMIT;
