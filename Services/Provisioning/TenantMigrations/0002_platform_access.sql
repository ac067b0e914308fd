-- The platform reaches the tenant's tables through privileges the tenant's role grants to the
-- platform's login role (the session user: every service connects as it), not through a
-- membership in the tenant's role. A login role that is a member of thousands of tenant roles
-- pays a membership walk that grows like N² after every role change in the cluster, and can act
-- on a stale membership list (docs/measurements/tenant-ddl-roles.md); with direct grants its
-- privilege checks find their ACL entry at once.
--
-- Exactly what auth's tenant-user store does: read and change users, append to and verify the
-- audit log. The audit log stays append-only through its triggers (no UPDATE/DELETE here
-- either); the tenant role keeps ownership of everything.

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), session_user);
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON users TO SESSION_USER;
GRANT SELECT, INSERT ON audit_log TO SESSION_USER;
