-- The four services' login roles (cluster-wide), for psql as the superuser:
--
--   psql -v ON_ERROR_STOP=1 -v auth_password=… -v provisioning_password=… \
--        -v realtime_password=… -v storage_password=… -d platform -f service-roles.sql
--
-- then service-schemas.sql in the database the services share. Idempotent: a second run sets
-- the passwords again and changes nothing else.
--
-- Each service connects as its own role and owns only its schema. Only provisioning has
-- CREATEROLE: it creates one NOLOGIN role per tenant (`tenant_<slug>`). On PostgreSQL 15 a
-- CREATEROLE role may grant itself any non-superuser role (pg_execute_server_program,
-- pg_read_server_files, …), so provisioning's role is then as strong as those; PostgreSQL 16
-- limits it to the roles it created (ADMIN OPTION). Use PostgreSQL 16 or later.
SELECT format('CREATE ROLE %I LOGIN', name)
  FROM unnest(ARRAY['platform_auth', 'platform_provisioning', 'platform_realtime', 'platform_storage']) AS name
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = name)
\gexec
ALTER ROLE platform_auth LOGIN NOCREATEROLE NOCREATEDB PASSWORD :'auth_password';
ALTER ROLE platform_provisioning LOGIN CREATEROLE NOCREATEDB PASSWORD :'provisioning_password';
ALTER ROLE platform_realtime LOGIN NOCREATEROLE NOCREATEDB PASSWORD :'realtime_password';
ALTER ROLE platform_storage LOGIN NOCREATEROLE NOCREATEDB PASSWORD :'storage_password';
-- No "$user" or public on their search path: every service names the schema of what it uses,
-- so an unqualified name resolves to the catalog or nowhere, never to a schema someone with
-- CREATE on the database (provisioning) named after a role.
ALTER ROLE platform_auth SET search_path = pg_catalog;
ALTER ROLE platform_provisioning SET search_path = pg_catalog;
ALTER ROLE platform_realtime SET search_path = pg_catalog;
ALTER ROLE platform_storage SET search_path = pg_catalog;
