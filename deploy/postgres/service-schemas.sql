-- The services' schemas in the database they share, each owned by its service's role
-- (service-roles.sql makes the roles). Plain SQL, run as the superuser in that database;
-- idempotent. The tests run this file too, on each scratch database.
--
-- Nobody but the four roles connects; only provisioning may create schemas (one per tenant).
-- A service's schema grants nothing to anyone: auth's signing keys and sessions, provisioning's
-- sagas and keys, realtime's channels and storage's objects are each readable by their own
-- service alone. Tenants' schemas are provisioning's to make (tenant migrations grant auth and
-- realtime what they use there).
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO platform_auth, platform_provisioning, platform_realtime, platform_storage',
                   current_database());
    EXECUTE format('GRANT CREATE ON DATABASE %I TO platform_provisioning', current_database());
END
$$;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS auth AUTHORIZATION platform_auth;
CREATE SCHEMA IF NOT EXISTS provisioning AUTHORIZATION platform_provisioning;
CREATE SCHEMA IF NOT EXISTS realtime AUTHORIZATION platform_realtime;
CREATE SCHEMA IF NOT EXISTS storage AUTHORIZATION platform_storage;
