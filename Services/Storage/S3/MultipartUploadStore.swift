import Contracts
import Foundation
import Postgres

/// S3 multipart uploads in progress (`storage.s3_multipart_uploads` and `…_parts`, migration
/// 0005), always scoped by tenant: a part is only ever reached through its upload's row, which
/// names the tenant.
struct MultipartUploadStore: Sendable {
    let pool: PostgresPool

    struct Upload: Sendable, Equatable {
        var id: UUID
        var bucket: String
        var name: String
        var contentType: String
        var cacheControl: String
        var userMetadata: JSONValue?
        var createdAt: Date
    }

    struct Part: Sendable, Equatable {
        var number: Int
        /// Names the part's file (`ObjectFiles.partPath`).
        var file: UUID
        var size: Int64
        /// Lower-case hex.
        var md5: String
        var createdAt: Date

        /// The part's ETag as S3 clients expect it: the quoted MD5.
        var etag: String { "\"" + md5 + "\"" }
    }

    /// The upload is gone (aborted, completed, or never was).
    struct NoUpload: Error {}

    private static let uploadColumns = "id, bucket_id, name, content_type, cache_control, user_metadata, created_at"

    func create(_ upload: Upload, tenant: UUID) async throws {
        do {
            try await pool.query("""
                INSERT INTO storage.s3_multipart_uploads (id, tenant_id, bucket_id, name, content_type, cache_control, user_metadata)
                VALUES (\(upload.id), \(tenant), \(upload.bucket), \(upload.name), \(upload.contentType), \(upload.cacheControl),
                        \(upload.userMetadata.map(PostgresJSON.init)))
                """)
        } catch let error as PostgresError where error.kind == .foreignKeyViolation {
            throw ObjectStore.Refusal.noBucket
        }
    }

    /// The tenant's upload `id` of `name` in `bucket`.
    func upload(_ id: UUID, bucket: String, name: String, tenant: UUID) async throws -> Upload? {
        try await pool.query("""
            SELECT \(unescaped: Self.uploadColumns) FROM storage.s3_multipart_uploads
            WHERE id = \(id) AND tenant_id = \(tenant) AND bucket_id = \(bucket) AND name = \(name)
            """).first.map(Self.upload)
    }

    /// The tenant's uploads in progress in `bucket` whose names start with `prefix`, by name then
    /// age, at most `limit`.
    func uploads(bucket: String, prefix: String, tenant: UUID, limit: Int) async throws -> [Upload] {
        try await pool.query("""
            SELECT \(unescaped: Self.uploadColumns) FROM storage.s3_multipart_uploads
            WHERE tenant_id = \(tenant) AND bucket_id = \(bucket) AND name LIKE \(ObjectStore.likeEscaped(prefix) + "%")
            ORDER BY name, created_at LIMIT \(limit)
            """).map(Self.upload)
    }

    /// The upload's parts by number.
    func parts(of upload: UUID) async throws -> [Part] {
        try await pool.query("""
            SELECT part_number, file, size, md5, created_at FROM storage.s3_multipart_parts WHERE upload_id = \(upload) ORDER BY part_number
            """).map(Self.part)
    }

    /// The bytes the upload's parts other than `number` hold: what a new part may add to.
    func size(of upload: UUID, excluding number: Int) async throws -> Int64 {
        try await pool.query("""
            SELECT coalesce(sum(size), 0)::bigint AS size FROM storage.s3_multipart_parts WHERE upload_id = \(upload) AND part_number <> \(number)
            """).first?.decode("size") ?? 0
    }

    /// The bytes every upload in progress of the tenant holds, but part `number` of `upload`:
    /// what a new part may add to before the quota is passed.
    func pendingSize(tenant: UUID, excluding upload: UUID, number: Int) async throws -> Int64 {
        try await pool.query("""
            SELECT coalesce(sum(p.size), 0)::bigint AS size
            FROM storage.s3_multipart_parts p JOIN storage.s3_multipart_uploads u ON u.id = p.upload_id
            WHERE u.tenant_id = \(tenant) AND NOT (p.upload_id = \(upload) AND p.part_number = \(number))
            """).first?.decode("size") ?? 0
    }

    /// Records a part whose file is in place, replacing the part of that number; returns the
    /// replaced part's file (the caller removes it). Throws `NoUpload` when the tenant's upload is
    /// gone, holding its row meanwhile so an abort waits for this.
    func put(_ part: Part, upload: UUID, tenant: UUID) async throws -> UUID? {
        try await pool.withTransaction { tx in
            guard try await !tx.query("""
                SELECT 1 FROM storage.s3_multipart_uploads WHERE id = \(upload) AND tenant_id = \(tenant) FOR SHARE
                """).isEmpty else { throw NoUpload() }
            let replaced: UUID? = try await tx.query("""
                SELECT file FROM storage.s3_multipart_parts WHERE upload_id = \(upload) AND part_number = \(part.number) FOR UPDATE
                """).first?.decode("file")
            try await tx.query("""
                INSERT INTO storage.s3_multipart_parts (upload_id, part_number, file, size, md5)
                VALUES (\(upload), \(part.number), \(part.file), \(part.size), \(part.md5))
                ON CONFLICT (upload_id, part_number) DO UPDATE
                SET file = excluded.file, size = excluded.size, md5 = excluded.md5, created_at = now()
                """)
            return replaced
        }
    }

    /// Removes the tenant's upload and its parts' rows; false when it was not there.
    func remove(_ id: UUID, tenant: UUID) async throws -> Bool {
        try await !pool.query("DELETE FROM storage.s3_multipart_uploads WHERE id = \(id) AND tenant_id = \(tenant) RETURNING id").isEmpty
    }

    /// Every upload of the tenant and every part file its rows name (the consistency check).
    func files(tenant: UUID) async throws -> (uploads: Set<UUID>, parts: Set<UUID>) {
        let rows = try await pool.query("""
            SELECT u.id, p.file FROM storage.s3_multipart_uploads u LEFT JOIN storage.s3_multipart_parts p ON p.upload_id = u.id
            WHERE u.tenant_id = \(tenant)
            """)
        var uploads = Set<UUID>(), parts = Set<UUID>()
        for row in rows {
            uploads.insert(try row.decode("id"))
            if let file: UUID = try row.decode("file") { parts.insert(file) }
        }
        return (uploads, parts)
    }

    /// Every upload of the bucket (before the bucket goes: its files are the caller's to remove).
    func ids(bucket: String, tenant: UUID) async throws -> [UUID] {
        try await pool.query("SELECT id FROM storage.s3_multipart_uploads WHERE tenant_id = \(tenant) AND bucket_id = \(bucket)")
            .map { try $0.decode("id") }
    }

    private static func upload(_ row: PostgresRow) throws -> Upload {
        Upload(id: try row.decode("id"), bucket: try row.decode("bucket_id"), name: try row.decode("name"),
               contentType: try row.decode("content_type"), cacheControl: try row.decode("cache_control"),
               userMetadata: try row.decode("user_metadata", as: PostgresJSON<JSONValue>?.self)?.value, createdAt: try row.decode("created_at"))
    }

    private static func part(_ row: PostgresRow) throws -> Part {
        Part(number: try row.decode("part_number"), file: try row.decode("file"), size: try row.decode("size"), md5: try row.decode("md5"),
             createdAt: try row.decode("created_at"))
    }
}
