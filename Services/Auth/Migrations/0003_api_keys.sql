-- Tenants' API keys, as provisioning minted them: never the key itself, only its SHA-256 (hex)
-- and its first characters, to recognise it in lists. Revoking sets `revoked_at`; the row stays
-- as a record, and its hash can never be stored again (UNIQUE). Removing the tenant removes
-- its keys.
CREATE TABLE api_keys (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text        NOT NULL CHECK (kind IN ('publishable', 'secret')),
    prefix      text        NOT NULL CHECK (length(prefix) BETWEEN 1 AND 16),
    sha256      text        NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- At most one active key of each kind per tenant.
CREATE UNIQUE INDEX api_keys_one_active_per_kind ON api_keys (tenant_id, kind) WHERE revoked_at IS NULL;
