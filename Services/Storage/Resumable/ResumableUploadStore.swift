import Contracts
import Foundation
import Postgres

/// A resumable upload in progress (`storage.resumable_uploads`).
struct ResumableUpload: Sendable, Equatable {
    var id: UUID
    var tenant: UUID
    var metadata: UploadMetadata
    /// `Upload-Length`: the object's size.
    var length: Int64
    /// The bytes on disk for sure (fsynced before this advanced).
    var offset: Int64
    /// The project's user who created it; nil for the project itself (its secret key).
    var owner: UUID?
    var upsert: Bool
    var expiresAt: Date
    /// Whether `expiresAt` has passed, by the database's clock (the one that set it).
    var isExpired: Bool
}

/// The rows of resumable uploads, always scoped by tenant: one project's id never finds another
/// project's upload. Times are the database's (`now()`), so one clock decides expiry.
///
/// For the consistency check: `liveIDs(tenant:)` names the uploads whose files
/// (`ResumableFiles.inventory`) are wanted; `expired(tenant:)` lists what may go, and `remove`
/// removes a row, or `removeExpired(tenant:)` all of them at once (then remove their files with
/// `ResumableFiles.remove`).
struct ResumableUploadStore: Sendable {
    let pool: PostgresPool

    private static let columns = """
        id, tenant_id, bucket_id, object_name, upload_length, upload_offset, content_type, cache_control, user_metadata, owner, upsert,
        expires_at, expires_at <= now() AS expired
        """

    /// Records a new upload at offset 0, expiring `lifetime` seconds from now.
    func create(id: UUID, tenant: UUID, metadata: UploadMetadata, length: Int64, owner: UUID?, upsert: Bool,
                lifetime: Int) async throws -> ResumableUpload {
        let row = try await pool.query("""
            INSERT INTO storage.resumable_uploads
                (id, tenant_id, bucket_id, object_name, upload_length, content_type, cache_control, user_metadata, owner, upsert, expires_at)
            VALUES (\(id), \(tenant), \(metadata.bucket), \(metadata.objectName), \(length), \(metadata.contentType), \(metadata.cacheControl),
                    \(metadata.userMetadata.map(PostgresJSON.init)), \(owner), \(upsert), now() + \(Double(lifetime))::float8 * interval '1 second')
            RETURNING \(unescaped: Self.columns)
            """).single()
        return try Self.upload(row)
    }

    func upload(_ id: UUID, tenant: UUID) async throws -> ResumableUpload? {
        try await pool.query("""
            SELECT \(unescaped: Self.columns) FROM storage.resumable_uploads WHERE id = \(id) AND tenant_id = \(tenant)
            """).first.map(Self.upload)
    }

    /// Moves the durable offset from `offset` to `newOffset` and the expiry to at least
    /// `lifetime` seconds from now; nil when the row is gone or its offset is no longer
    /// `offset` (another writer's: the caller's bytes are not what the row names).
    func advance(_ id: UUID, tenant: UUID, from offset: Int64, to newOffset: Int64, lifetime: Int) async throws -> ResumableUpload? {
        try await pool.query("""
            UPDATE storage.resumable_uploads
            SET upload_offset = \(newOffset), expires_at = greatest(expires_at, now() + \(Double(lifetime))::float8 * interval '1 second')
            WHERE id = \(id) AND tenant_id = \(tenant) AND upload_offset = \(offset)
            RETURNING \(unescaped: Self.columns)
            """).first.map(Self.upload)
    }

    /// Removes the row; false when it was not there.
    @discardableResult
    func remove(_ id: UUID, tenant: UUID) async throws -> Bool {
        !(try await pool.query("DELETE FROM storage.resumable_uploads WHERE id = \(id) AND tenant_id = \(tenant) RETURNING id")).isEmpty
    }

    /// The bytes the tenant's live uploads will take once complete: room they hold in the quota,
    /// so that uploads started together cannot each be promised it.
    func reserved(tenant: UUID) async throws -> Int64 {
        try await pool.query("""
            SELECT coalesce(sum(upload_length), 0)::bigint AS reserved FROM storage.resumable_uploads
            WHERE tenant_id = \(tenant) AND expires_at > now()
            """).first?.decode("reserved") ?? 0
    }

    // MARK: Consistency

    /// The ids of the tenant's uploads, expired or not: every file in `resumable/` whose id is
    /// not here has no row and may go.
    func liveIDs(tenant: UUID) async throws -> Set<UUID> {
        Set(try await pool.query("SELECT id FROM storage.resumable_uploads WHERE tenant_id = \(tenant)").map { try $0.decode("id") })
    }

    /// The tenant's uploads whose expiry has passed: to `remove`, then their files
    /// (`ResumableFiles.remove`). Their HEAD and PATCH already answer 410.
    func expired(tenant: UUID) async throws -> [UUID] {
        try await pool.query("""
            SELECT id FROM storage.resumable_uploads WHERE tenant_id = \(tenant) AND expires_at <= now() ORDER BY expires_at
            """).map { try $0.decode("id") }
    }

    /// Removes the tenant's expired uploads' rows in one statement; their ids, whose files
    /// (`ResumableFiles.remove`) go next.
    func removeExpired(tenant: UUID) async throws -> [UUID] {
        try await pool.query("""
            DELETE FROM storage.resumable_uploads WHERE tenant_id = \(tenant) AND expires_at <= now() RETURNING id
            """).map { try $0.decode("id") }
    }

    private static func upload(_ row: PostgresRow) throws -> ResumableUpload {
        let metadata = UploadMetadata(bucket: try row.decode("bucket_id"), objectName: try row.decode("object_name"),
                                      contentType: try row.decode("content_type"), cacheControl: try row.decode("cache_control"),
                                      userMetadata: try row.decode("user_metadata", as: PostgresJSON<JSONValue>?.self)?.value)
        return ResumableUpload(id: try row.decode("id"), tenant: try row.decode("tenant_id"), metadata: metadata,
                               length: try row.decode("upload_length"), offset: try row.decode("upload_offset"), owner: try row.decode("owner"),
                               upsert: try row.decode("upsert"), expiresAt: try row.decode("expires_at"), isExpired: try row.decode("expired"))
    }
}
