import Foundation
import Postgres
import TenantKit

/// Buckets of every tenant (`storage.buckets`), always scoped by the tenant: one project's
/// statements cannot name another's rows.
struct BucketStore: Sendable {
    let pool: PostgresPool

    /// A bucket of this id exists already.
    struct Exists: Error {}

    /// The tenant was removed since the request named it.
    struct NoTenant: Error {}

    private static let columns = "id, name, public, user_access, file_size_limit, allowed_mime_types, created_at, updated_at"

    func create(_ bucket: Bucket, tenant: UUID) async throws {
        do {
            try await pool.query("""
                INSERT INTO storage.buckets (tenant_id, id, name, public, user_access, file_size_limit, allowed_mime_types)
                VALUES (\(tenant), \(bucket.id), \(bucket.name), \(bucket.isPublic), \(bucket.userAccess.rawValue),
                        \(bucket.fileSizeLimit), \(bucket.allowedMimeTypes.map(PostgresJSON.init)))
                """)
        } catch let error as PostgresError where error.kind == .uniqueViolation {
            throw Exists()
        } catch let error as PostgresError where error.kind == .foreignKeyViolation {
            throw NoTenant()
        }
    }

    func bucket(_ id: String, tenant: UUID) async throws -> Bucket? {
        try await pool.query("SELECT \(unescaped: Self.columns) FROM storage.buckets WHERE tenant_id = \(tenant) AND id = \(id)")
            .first.map { try Self.bucket($0) }
    }

    /// The tenant's buckets by id (only public ones when `publicOnly`).
    func list(tenant: UUID, publicOnly: Bool) async throws -> [Bucket] {
        try await pool.query("""
            SELECT \(unescaped: Self.columns) FROM storage.buckets
            WHERE tenant_id = \(tenant) AND (public OR NOT \(publicOnly)) ORDER BY id
            """).map { try Self.bucket($0) }
    }

    /// A change to a bucket; nil fields stay as they are (`.some(nil)` clears a limit).
    struct Changes: Sendable {
        var isPublic: Bool?
        var userAccess: Bucket.UserAccess?
        var fileSizeLimit: Int64??
        var allowedMimeTypes: [String]??

        var isEmpty: Bool { isPublic == nil && userAccess == nil && fileSizeLimit == nil && allowedMimeTypes == nil }
    }

    /// False when there is no such bucket.
    func update(_ id: String, tenant: UUID, _ changes: Changes) async throws -> Bool {
        let setLimit = changes.fileSizeLimit != nil, setTypes = changes.allowedMimeTypes != nil
        let limit = changes.fileSizeLimit ?? nil, types = changes.allowedMimeTypes ?? nil
        return try await pool.query("""
            UPDATE storage.buckets SET
                public = coalesce(\(changes.isPublic), public),
                user_access = coalesce(\(changes.userAccess?.rawValue), user_access),
                file_size_limit = CASE WHEN \(setLimit) THEN \(limit) ELSE file_size_limit END,
                allowed_mime_types = CASE WHEN \(setTypes) THEN \(types.map(PostgresJSON.init)) ELSE allowed_mime_types END,
                updated_at = now()
            WHERE tenant_id = \(tenant) AND id = \(id)
            RETURNING id
            """).count == 1
    }

    enum Deletion: Sendable { case deleted, notFound, notEmpty }

    /// Deletes an empty bucket; a bucket still holding objects stays (checked under the
    /// bucket's row lock, so an upload cannot slip in between).
    func delete(_ id: String, tenant: UUID) async throws -> Deletion {
        try await pool.withTransaction { tx in
            guard try await !tx.query("SELECT 1 FROM storage.buckets WHERE tenant_id = \(tenant) AND id = \(id) FOR UPDATE").isEmpty else {
                return .notFound
            }
            guard try await tx.query("SELECT 1 FROM storage.objects WHERE tenant_id = \(tenant) AND bucket_id = \(id) LIMIT 1").isEmpty else {
                return .notEmpty
            }
            try await tx.query("DELETE FROM storage.buckets WHERE tenant_id = \(tenant) AND id = \(id)")
            return .deleted
        }
    }

    /// The bucket columns of `alias`, each named `<alias>__<column>`, for a read that joins
    /// another table (`bucket(_:prefix: "<alias>__")` decodes them).
    static func prefixedColumns(of alias: String) -> String {
        columns.split(separator: ",").map { column in
            let name = column.trimmingCharacters(in: .whitespaces)
            return "\(alias).\(name) AS \(alias)__\(name)"
        }.joined(separator: ", ")
    }

    static func bucket(_ row: PostgresRow, prefix: String = "") throws -> Bucket {
        Bucket(id: try row.decode(prefix + "id"), name: try row.decode(prefix + "name"), isPublic: try row.decode(prefix + "public"),
               userAccess: Bucket.UserAccess(rawValue: try row.decode(prefix + "user_access")) ?? .owner,
               fileSizeLimit: try row.decode(prefix + "file_size_limit"),
               allowedMimeTypes: try row.decode(prefix + "allowed_mime_types", as: PostgresJSON<[String]>?.self)?.value,
               createdAt: try row.decode(prefix + "created_at"), updatedAt: try row.decode(prefix + "updated_at"))
    }
}
