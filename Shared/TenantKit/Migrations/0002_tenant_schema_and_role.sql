-- Each registered tenant's PostgreSQL schema and role, as provisioning names them
-- (`tenant_<slug>`, the role named after the schema). Filled from the slug for rows written
-- before this migration (none in any deployment so far), then required.
ALTER TABLE tenants
    ADD COLUMN schema text,
    ADD COLUMN role   text;

UPDATE tenants SET schema = 'tenant_' || slug, role = 'tenant_' || slug WHERE schema IS NULL;

ALTER TABLE tenants
    ALTER COLUMN schema SET NOT NULL,
    ALTER COLUMN role   SET NOT NULL,
    ADD CONSTRAINT tenants_slug_format CHECK (slug ~ '^[a-z][a-z0-9_]{2,39}$'),
    ADD CONSTRAINT tenants_schema_named_after_slug CHECK (schema = 'tenant_' || slug),
    ADD CONSTRAINT tenants_role_not_empty CHECK (role <> '');
