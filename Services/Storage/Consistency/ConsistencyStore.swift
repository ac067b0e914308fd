import Foundation
import Postgres

/// The SQL of the consistency check (`ConsistencyCheck`): what the rows say, and the repairs that
/// change rows. Every repair names the version it found, so a row replaced or removed since the
/// check looked is left as it is.
struct ConsistencyStore: Sendable {
    let pool: PostgresPool

    /// Every registered tenant.
    func tenants() async throws -> [UUID] {
        try await pool.query("SELECT id FROM storage.tenants ORDER BY id").map { try $0.decode("id") }
    }

    /// An object's row, as the check reports it.
    struct Row: Sendable, Hashable {
        var bucket: String
        var name: String
        var size: Int64
    }

    /// Every version the tenant's rows name.
    func versions(tenant: UUID) async throws -> [UUID: Row] {
        var versions: [UUID: Row] = [:]
        for row in try await pool.query("SELECT version, bucket_id, name, size FROM storage.objects WHERE tenant_id = \(tenant)") {
            versions[try row.decode("version")] = Row(bucket: try row.decode("bucket_id"), name: try row.decode("name"), size: try row.decode("size"))
        }
        return versions
    }

    /// Whether a row names the version now.
    func names(version: UUID) async throws -> Bool {
        try await !pool.query("SELECT 1 FROM storage.objects WHERE version = \(version)").isEmpty
    }

    /// Removes the row naming `version` (whose file is gone), freeing its bytes from the quota;
    /// false when no row names it any more.
    func removeRow(version: UUID, tenant: UUID) async throws -> Bool {
        try await pool.withTransaction { tx in
            guard let size: Int64 = try await tx.query("""
                DELETE FROM storage.objects WHERE tenant_id = \(tenant) AND version = \(version) RETURNING size
                """).first?.decode("size")
            else { return false }
            try await ObjectStore.charge(-size, tenant: tenant, on: tx)
            return true
        }
    }

    /// The tenant's recorded use and the sum of its objects' sizes.
    func usage(tenant: UUID) async throws -> (recorded: Int64, actual: Int64)? {
        guard let row = try await pool.query("""
            SELECT used_bytes, (SELECT coalesce(sum(size), 0)::int8 FROM storage.objects WHERE tenant_id = t.id) AS actual
            FROM storage.tenants t WHERE id = \(tenant)
            """).first
        else { return nil }
        return (try row.decode("used_bytes"), try row.decode("actual"))
    }

    /// Sets the tenant's recorded use to the sum of its objects' sizes. The tenant's row is locked
    /// first, and the sum read after: a write that charged before has committed by then and is
    /// counted; one that charges after adds its own bytes to the corrected figure.
    func correctUsage(tenant: UUID) async throws {
        try await pool.withTransaction { tx in
            try await tx.query("SELECT 1 FROM storage.tenants WHERE id = \(tenant) FOR UPDATE")
            try await tx.query("""
                UPDATE storage.tenants
                SET used_bytes = (SELECT coalesce(sum(size), 0) FROM storage.objects WHERE tenant_id = \(tenant))
                WHERE id = \(tenant)
                """)
        }
    }
}
