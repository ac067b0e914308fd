-- Buckets and objects of every tenant. An object's bytes are one immutable file per version,
-- `<STORAGE_ROOT>/<tenant-id>/objects/<version>` (ObjectFiles): its name never reaches the disk,
-- a rename or move is a row update, an overwrite a new version whose row replaces the old one
-- (the old file is removed after the commit).

CREATE TABLE buckets (
    tenant_id           uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                  text        NOT NULL,
    name                text        NOT NULL,
    -- Anyone with the project's key may read its objects (and through public URLs).
    public              boolean     NOT NULL DEFAULT false,
    -- What a project's signed-in users may read: only their own objects ('owner'), or every
    -- object of the bucket ('authenticated_read'). They may always write their own.
    user_access         text        NOT NULL DEFAULT 'owner' CHECK (user_access IN ('owner', 'authenticated_read')),
    file_size_limit     bigint      CHECK (file_size_limit >= 0),
    -- A JSON array of MIME patterns (`image/*`, `text/plain`); NULL: any type.
    allowed_mime_types  jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE objects (
    id                uuid        PRIMARY KEY,
    tenant_id         uuid        NOT NULL,
    bucket_id         text        NOT NULL,
    -- The object's key in its bucket, NFC-normalised (ObjectName). "C" collation: byte order,
    -- and `name LIKE 'prefix%'` can use the unique index.
    name              text        COLLATE "C" NOT NULL,
    -- The project's user who uploaded it (nil: the project itself, with its secret key).
    owner             uuid,
    -- Names the file holding the bytes.
    version           uuid        NOT NULL UNIQUE,
    size              bigint      NOT NULL CHECK (size >= 0),
    content_type      text        NOT NULL,
    cache_control     text        NOT NULL,
    -- SHA-256 of the bytes, lowercase hex.
    sha256            text        NOT NULL,
    user_metadata     jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    last_accessed_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, bucket_id, name),
    FOREIGN KEY (tenant_id, bucket_id) REFERENCES buckets (tenant_id, id) ON DELETE CASCADE
);

-- What the tenant's objects take, kept with every write in the write's transaction, so the quota
-- holds under concurrent uploads: `used_bytes + size <= quota_bytes` is checked and applied in one
-- UPDATE.
ALTER TABLE tenants ADD COLUMN used_bytes bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0);
