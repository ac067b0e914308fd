import Contracts
import Foundation
import Postgres

/// The rows of every tenant's objects (`storage.objects`), always scoped by tenant and bucket, and
/// each tenant's `used_bytes`, kept in the same transactions: a write that would pass the quota
/// changes nothing.
///
/// `actingUser` is the project's signed-in user a change is made for (nil: the project itself,
/// with its secret key): a user replaces, moves and removes only objects they own.
struct ObjectStore: Sendable {
    let pool: PostgresPool

    enum Refusal: Error, Equatable {
        /// The key exists and the write may not replace it.
        case exists
        /// The object belongs to another user.
        case notOwner
        /// The tenant's quota would be passed.
        case quota
        /// The bucket is gone.
        case noBucket
        /// No such object.
        case notFound
    }

    private static let columns = """
        id, bucket_id, name, owner, version, size, content_type, cache_control, sha256, user_metadata, created_at, updated_at, last_accessed_at
        """

    func object(_ name: String, bucket: String, tenant: UUID) async throws -> StoredObject? {
        try await pool.query("""
            SELECT \(unescaped: Self.columns) FROM storage.objects WHERE tenant_id = \(tenant) AND bucket_id = \(bucket) AND name = \(name)
            """).first.map(Self.object)
    }

    /// The tenant's bucket and, in the same round trip, the named object in it: nil when there is
    /// no such bucket, no object when the bucket has none of that name. (Reads name both; one
    /// query where two would do the same.)
    func object(_ name: String, inBucket bucket: String, tenant: UUID) async throws -> (bucket: Bucket, object: StoredObject?)? {
        guard let row = try await pool.query("""
            SELECT \(unescaped: Self.bucketAndObjectColumns)
            FROM storage.buckets b
            LEFT JOIN storage.objects o ON o.tenant_id = b.tenant_id AND o.bucket_id = b.id AND o.name = \(name)
            WHERE b.tenant_id = \(tenant) AND b.id = \(bucket)
            """).first
        else { return nil }
        let object = try row.decode("id", as: UUID?.self) == nil ? nil : try Self.object(row)
        return (try BucketStore.bucket(row, prefix: "b__"), object)
    }

    /// Up to `limit` objects of the bucket whose names start with `prefix`, past the cursor, by
    /// name (`ObjectListing`'s reads); only `owner`'s when given.
    func page(bucket: String, tenant: UUID, prefix: String, after cursor: ObjectListing.Cursor, owner: UUID? = nil,
              limit: Int) async throws -> [StoredObject] {
        let pattern = Self.likeEscaped(prefix) + "%"
        return try await pool.query("""
            SELECT \(unescaped: Self.columns) FROM storage.objects
            WHERE tenant_id = \(tenant) AND bucket_id = \(bucket) AND name LIKE \(pattern)
              AND (name > \(cursor.key) OR (\(cursor.inclusive) AND name = \(cursor.key)))
              AND (\(owner)::uuid IS NULL OR owner = \(owner))
            ORDER BY name LIMIT \(limit)
            """).map(Self.object)
    }

    /// The bucket's columns (`b__…`) and the object's, for `object(_:inBucket:tenant:)`.
    private static let bucketAndObjectColumns = BucketStore.prefixedColumns(of: "b") + ", "
        + columns.split(separator: ",").map { "o." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")

    /// The named objects that exist, by name.
    func objects(_ names: [String], bucket: String, tenant: UUID) async throws -> [String: StoredObject] {
        let rows = try await pool.query("""
            SELECT \(unescaped: Self.columns) FROM storage.objects
            WHERE tenant_id = \(tenant) AND bucket_id = \(bucket) AND name IN (SELECT jsonb_array_elements_text(\(PostgresJSON(names))))
            """).map(Self.object)
        return Dictionary(rows.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// What an upload wrote, to record.
    struct Write: Sendable {
        var name: String
        var bucket: String
        var owner: UUID?
        var version: UUID
        var size: Int64
        var contentType: String
        var cacheControl: String
        var sha256: String
        var userMetadata: JSONValue?
    }

    /// Records a written version as the object of its name: a new row, or (with `upsert`) the
    /// existing row pointed at the new version. Returns the row and the version it replaced,
    /// whose file the caller removes after this commit.
    func put(_ write: Write, tenant: UUID, upsert: Bool, actingUser: UUID?) async throws -> (object: StoredObject, replaced: UUID?) {
        do {
            return try await pool.withTransaction { tx in
                let existing = try await tx.query("""
                    SELECT \(unescaped: Self.columns) FROM storage.objects
                    WHERE tenant_id = \(tenant) AND bucket_id = \(write.bucket) AND name = \(write.name) FOR UPDATE
                    """).first.map(Self.object)
                if let existing {
                    guard upsert else { throw Refusal.exists }
                    guard actingUser == nil || existing.owner == actingUser else { throw Refusal.notOwner }
                }
                try await Self.charge(write.size - (existing?.size ?? 0), tenant: tenant, on: tx)
                let row: PostgresRow?
                if let existing {
                    row = try await tx.query("""
                        UPDATE storage.objects SET version = \(write.version), size = \(write.size), content_type = \(write.contentType),
                            cache_control = \(write.cacheControl), sha256 = \(write.sha256),
                            user_metadata = \(write.userMetadata.map(PostgresJSON.init)), owner = coalesce(\(write.owner), owner),
                            updated_at = now(), last_accessed_at = now()
                        WHERE id = \(existing.id)
                        RETURNING \(unescaped: Self.columns)
                        """).first
                } else {
                    row = try await tx.query("""
                        INSERT INTO storage.objects (id, tenant_id, bucket_id, name, owner, version, size, content_type, cache_control, sha256, user_metadata)
                        VALUES (\(UUID()), \(tenant), \(write.bucket), \(write.name), \(write.owner), \(write.version), \(write.size),
                                \(write.contentType), \(write.cacheControl), \(write.sha256), \(write.userMetadata.map(PostgresJSON.init)))
                        ON CONFLICT (tenant_id, bucket_id, name) DO NOTHING
                        RETURNING \(unescaped: Self.columns)
                        """).first
                }
                // Another upload of the same new name committed first.
                guard let row else { throw Refusal.exists }
                return (try Self.object(row), existing?.version)
            }
        } catch let error as PostgresError where error.kind == .foreignKeyViolation {
            throw Refusal.noBucket
        }
    }

    /// Removes the named objects that exist (and that `actingUser` owns); returns their rows.
    func remove(_ names: [String], bucket: String, tenant: UUID, actingUser: UUID?) async throws -> [StoredObject] {
        try await pool.withTransaction { tx in
            let removed = try await tx.query("""
                DELETE FROM storage.objects
                WHERE tenant_id = \(tenant) AND bucket_id = \(bucket)
                  AND name IN (SELECT jsonb_array_elements_text(\(PostgresJSON(names))))
                  AND (\(actingUser)::uuid IS NULL OR owner = \(actingUser))
                RETURNING \(unescaped: Self.columns)
                """).map(Self.object)
            try await Self.charge(-removed.reduce(0) { $0 + $1.size }, tenant: tenant, on: tx)
            return removed
        }
    }

    /// Removes every object of the bucket; returns the versions whose files are to go.
    func removeAll(bucket: String, tenant: UUID) async throws -> [UUID] {
        try await pool.withTransaction { tx in
            let removed = try await tx.query("""
                DELETE FROM storage.objects WHERE tenant_id = \(tenant) AND bucket_id = \(bucket) RETURNING version, size
                """)
            let freed: Int64 = try removed.reduce(0) { $0 + (try $1.decode("size", as: Int64.self)) }
            try await Self.charge(-freed, tenant: tenant, on: tx)
            return try removed.map { try $0.decode("version") }
        }
    }

    /// Renames an object (within its bucket or into another of the tenant's); the bytes stay.
    func move(_ name: String, bucket: String, to newName: String, in newBucket: String, tenant: UUID, actingUser: UUID?) async throws {
        do {
            try await pool.withTransaction { tx in
                guard let source = try await tx.query("""
                    SELECT \(unescaped: Self.columns) FROM storage.objects
                    WHERE tenant_id = \(tenant) AND bucket_id = \(bucket) AND name = \(name) FOR UPDATE
                    """).first.map(Self.object) else { throw Refusal.notFound }
                guard actingUser == nil || source.owner == actingUser else { throw Refusal.notOwner }
                try await tx.query("""
                    UPDATE storage.objects SET bucket_id = \(newBucket), name = \(newName), updated_at = now() WHERE id = \(source.id)
                    """)
            }
        } catch let error as PostgresError where error.kind == .uniqueViolation {
            throw Refusal.exists
        } catch let error as PostgresError where error.kind == .foreignKeyViolation {
            throw Refusal.noBucket
        }
    }

    /// How a listing is ordered: by one of these columns, then by name.
    static let sortColumns: Set<String> = ["name", "updated_at", "created_at", "last_accessed_at"]

    /// One level of a bucket under `prefix` (ending in `/`, or empty): the first `limit` objects
    /// directly in it and the first `limit` folders (next segments of deeper names), in the
    /// listing's order (`column`, which must be one of `sortColumns`), whose name starts with
    /// `search` (case-insensitively); only the objects `owner` owns when given. Whatever the page,
    /// its entries are among these, so the caller merges and cuts the two.
    func level(bucket: String, tenant: UUID, prefix: String, search: String, owner: UUID?, column: String, descending: Bool,
               limit: Int) async throws -> (folders: [String], objects: [StoredObject]) {
        let direction = descending ? "DESC" : "ASC"
        let order = column == "name" || !Self.sortColumns.contains(column)
            ? "lower(name) COLLATE \"C\" \(direction), name \(direction)"
            : "\(column) \(direction), lower(name) COLLATE \"C\" \(direction)"
        let pattern = Self.likeEscaped(prefix) + "%"
        let start = prefix.unicodeScalars.count + 1  // PostgreSQL counts code points
        let searchPattern = Self.likeEscaped(search.lowercased()) + "%"
        return try await pool.withTransaction { tx in
            let folders: [String] = try await tx.query("""
                SELECT DISTINCT split_part(substr(name, \(start)::int), '/', 1) AS entry,
                       lower(split_part(substr(name, \(start)::int), '/', 1)) COLLATE "C" AS sort_key FROM storage.objects
                WHERE tenant_id = \(tenant) AND bucket_id = \(bucket) AND name LIKE \(pattern)
                  AND strpos(substr(name, \(start)::int), '/') > 0 AND (\(owner)::uuid IS NULL OR owner = \(owner))
                  AND lower(split_part(substr(name, \(start)::int), '/', 1)) LIKE \(searchPattern)
                ORDER BY sort_key \(unescaped: direction), entry \(unescaped: direction) LIMIT \(limit)
                """).map { try $0.decode("entry") }
            let objects = try await tx.query("""
                SELECT \(unescaped: Self.columns) FROM storage.objects
                WHERE tenant_id = \(tenant) AND bucket_id = \(bucket) AND name LIKE \(pattern)
                  AND strpos(substr(name, \(start)::int), '/') = 0 AND (\(owner)::uuid IS NULL OR owner = \(owner))
                  AND lower(substr(name, \(start)::int)) LIKE \(searchPattern)
                ORDER BY \(unescaped: order) LIMIT \(limit)
                """).map(Self.object)
            return (folders, objects)
        }
    }

    /// What is left of the tenant's quota (0 for a tenant not registered here).
    func room(tenant: UUID) async throws -> Int64 {
        try await pool.query("SELECT greatest(quota_bytes - used_bytes, 0) AS room FROM storage.tenants WHERE id = \(tenant)")
            .first?.decode("room") ?? 0
    }

    /// Charges `delta` bytes to the tenant's use (a negative delta frees), refused with `quota`
    /// when a charge would pass the quota; in the caller's transaction, which holds the tenant's
    /// row until it commits.
    static func charge(_ delta: Int64, tenant: UUID, on tx: PostgresConnection) async throws {
        guard delta != 0 else { return }
        let charged = try await tx.query("""
            UPDATE storage.tenants SET used_bytes = greatest(used_bytes + \(delta), 0)
            WHERE id = \(tenant) AND (\(delta) < 0 OR used_bytes + \(delta) <= quota_bytes)
            RETURNING used_bytes
            """)
        guard !charged.isEmpty else { throw Refusal.quota }
    }

    /// `LIKE` matches `text` literally.
    static func likeEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }

    private static func object(_ row: PostgresRow) throws -> StoredObject {
        StoredObject(id: try row.decode("id"), bucketID: try row.decode("bucket_id"), name: try row.decode("name"), owner: try row.decode("owner"),
                     version: try row.decode("version"), size: try row.decode("size"), contentType: try row.decode("content_type"),
                     cacheControl: try row.decode("cache_control"), sha256: try row.decode("sha256"),
                     userMetadata: try row.decode("user_metadata", as: PostgresJSON<JSONValue>?.self)?.value,
                     createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"),
                     lastAccessedAt: try row.decode("last_accessed_at"))
    }
}
