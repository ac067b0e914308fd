-- Resumable (TUS 1.0) uploads in progress under /storage/v1/upload/resumable (ResumableController).
-- One row per upload; its bytes so far are the file `<STORAGE_ROOT>/<tenant-id>/resumable/<id>`
-- (ResumableFiles). `upload_offset` is durable: it only advances after the bytes up to it were
-- fsynced, so the offset a HEAD reports is always on disk (the file may be longer after a crash;
-- the next PATCH truncates it back). The row goes when the object is committed, when the client
-- terminates the upload, or, once expired, with the consistency check
-- (ResumableUploadStore.expired / remove); with its tenant, by the cascade (the files go with
-- the tenant's directory).
CREATE TABLE resumable_uploads (
    id             uuid        PRIMARY KEY,
    tenant_id      uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- The bucket is checked at creation and again at the commit; no foreign key, so that an
    -- upload into a bucket removed meanwhile fails at its commit (404) rather than vanishing.
    bucket_id      text        NOT NULL,
    object_name    text        COLLATE "C" NOT NULL,
    -- Upload-Length: the object's size, declared at creation.
    upload_length  bigint      NOT NULL CHECK (upload_length >= 0),
    upload_offset  bigint      NOT NULL DEFAULT 0 CHECK (upload_offset >= 0 AND upload_offset <= upload_length),
    content_type   text        NOT NULL,
    cache_control  text        NOT NULL,
    user_metadata  jsonb,
    -- The project's user who created it (nil: the project itself, with its secret key): only
    -- they (or the secret key) may see, continue or terminate it, and they own the object.
    owner          uuid,
    upsert         boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);

CREATE INDEX resumable_uploads_expiry ON resumable_uploads (tenant_id, expires_at);
