-- The tenant migration version each ready project's schema is known to have reached, so that
-- start-up finds the tenants a new tenant migration has to reach with one indexed query,
-- not one catalog read per tenant. NULL: not known (projects made before this column) — the
-- tenant upgrade visits them once. Each tenant's own `_migrations` stays the record.
ALTER TABLE projects ADD COLUMN tenant_schema_version integer;

CREATE INDEX projects_tenant_schema_version ON projects ((coalesce(tenant_schema_version, 0)), created_at)
    WHERE status = 'ready';
