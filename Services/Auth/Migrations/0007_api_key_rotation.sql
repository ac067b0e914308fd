-- A key rotation makes a tenant's next set active beside the current one, so a tenant may have
-- two active keys of a kind for a while. The limit (one set, or two during a rotation) is kept
-- by APIKeyStore under the tenant's row lock, which every write of a tenant's keys takes.
DROP INDEX api_keys_one_active_per_kind;
CREATE INDEX api_keys_active_by_tenant ON api_keys (tenant_id, kind) WHERE revoked_at IS NULL;
