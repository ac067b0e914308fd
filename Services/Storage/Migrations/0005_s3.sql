-- The S3-compatible endpoint (`/storage/v1/s3`, Services/Storage/S3/): each project's access
-- keys, and its multipart uploads in progress.

-- A project's S3 access keys, issued and revoked through `/v1/tenants/{slug}/s3/credentials`
-- with the project's secret key. A request signed with one acts as the project itself (the
-- service principal: every bucket of the project, no other project's).
--
-- Why the secret is kept as it was issued, not hashed like the API keys: SigV4 is an HMAC whose
-- key is derived from the secret (HMAC("AWS4" + secret, date) → region → service →
-- "aws4_request"), so verifying a signature means computing it, which needs the secret itself;
-- no one-way form of it (a hash, or a derived key, which changes every day and per region) can
-- check a request. It is shown to the project once, at creation, never listed again; only the
-- storage service's database role reads this table. Revoking a key sets `revoked_at`: the
-- secret is wiped at once and the row stays, so an old key id stays refused (403
-- InvalidAccessKeyId) and the list shows when it was revoked.
CREATE TABLE s3_credentials (
    id                 uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- 32 hex digits, as Supabase issues them; what clients send in `Credential=<id>/…`.
    access_key_id      text        NOT NULL UNIQUE,
    -- 64 hex digits; NULL once revoked.
    secret_access_key  text,
    description        text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    revoked_at         timestamptz,
    CHECK ((revoked_at IS NULL) = (secret_access_key IS NOT NULL))
);
CREATE INDEX s3_credentials_tenant ON s3_credentials (tenant_id, created_at);

-- Multipart uploads in progress (CreateMultipartUpload … CompleteMultipartUpload or Abort).
-- What the finished object is stored with is taken at creation, as S3 does. The parts' bytes
-- are files, `<STORAGE_ROOT>/<tenant-id>/multipart/<upload-id>/<file-uuid>` (ObjectFiles); a
-- completed upload is concatenated into one object file and recorded like any upload, then
-- its rows and part files go.
CREATE TABLE s3_multipart_uploads (
    id              uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    bucket_id       text        NOT NULL,
    name            text        COLLATE "C" NOT NULL,
    content_type    text        NOT NULL,
    cache_control   text        NOT NULL,
    user_metadata   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, bucket_id) REFERENCES buckets (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX s3_multipart_uploads_bucket ON s3_multipart_uploads (tenant_id, bucket_id, name);

-- One row per part number; uploading a part number again replaces its row (and file).
CREATE TABLE s3_multipart_parts (
    upload_id    uuid        NOT NULL REFERENCES s3_multipart_uploads (id) ON DELETE CASCADE,
    part_number  integer     NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
    -- Names the part's file in the upload's directory.
    file         uuid        NOT NULL UNIQUE,
    size         bigint      NOT NULL CHECK (size >= 0),
    -- MD5 of the part, lowercase hex: its ETag, as S3 clients expect one.
    md5          text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upload_id, part_number)
);
