-- Tenants' end users: their sessions and each tenant's own signing keys. The users themselves
-- live in the tenant's schema (`tenant_<slug>.users`), written under the tenant's role.

-- Signing keys: NULL tenant_id for developers' tokens, else the tenant whose users' tokens the
-- key signs (published at /v1/tenants/{slug}/.well-known/jwks.json). One active key per owner.
ALTER TABLE signing_keys ADD COLUMN tenant_id uuid REFERENCES tenants (id) ON DELETE CASCADE;
DROP INDEX signing_keys_one_active;
CREATE UNIQUE INDEX signing_keys_one_active_developer ON signing_keys ((true)) WHERE retired_at IS NULL AND tenant_id IS NULL;
CREATE UNIQUE INDEX signing_keys_one_active_tenant ON signing_keys (tenant_id) WHERE retired_at IS NULL AND tenant_id IS NOT NULL;

-- Sessions belong to a developer, or to a tenant's user (the user's row is in the tenant's
-- schema, so no foreign key can reach it; deleting a user revokes their sessions).
ALTER TABLE sessions
    ALTER COLUMN developer_id DROP NOT NULL,
    ADD COLUMN tenant_id uuid REFERENCES tenants (id) ON DELETE CASCADE,
    ADD COLUMN user_id   uuid,
    ADD CONSTRAINT sessions_one_subject CHECK (
        (developer_id IS NOT NULL AND tenant_id IS NULL AND user_id IS NULL)
        OR (developer_id IS NULL AND tenant_id IS NOT NULL AND user_id IS NOT NULL));
CREATE INDEX sessions_live_by_tenant_user ON sessions (tenant_id, user_id) WHERE revoked_at IS NULL;
