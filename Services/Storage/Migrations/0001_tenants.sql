-- Tenants registered by provisioning, with their storage quota.
CREATE TABLE tenants (
    id           uuid        PRIMARY KEY,
    slug         text        NOT NULL UNIQUE,
    quota_bytes  bigint      NOT NULL DEFAULT 1073741824 CHECK (quota_bytes >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
