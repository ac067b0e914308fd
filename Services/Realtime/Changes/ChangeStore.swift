import Contracts
import Foundation
import Postgres

/// What realtime reads of a tenant's schema for its database changes, as the platform role:
/// changes kept in the outbox, whether a table has row-level security, and whether a
/// subscriber's claims may read a changed row.
struct ChangeStore: Sendable {
    let pool: PostgresPool

    /// A change kept in the tenant's outbox (nil when already removed).
    func outboxed(_ reference: DatabaseChange.OutboxReference) async throws -> String? {
        try await pool.query("""
            SELECT payload FROM \(unescaped: PostgresQuery.quoteIdentifier(reference.schema)).realtime_outbox WHERE id = \(reference.outbox)
            """).first?.decode("payload")
    }

    /// Whether the table has row-level security on.
    func rowSecurity(schema: String, table: String) async throws -> Bool {
        try await pool.query("""
            SELECT c.relrowsecurity FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = \(schema) AND c.relname = \(table)
            """).first?.decode("relrowsecurity") ?? false
    }

    /// Whether a statement acting for `claims` (as `request.jwt.claims`) sees the changed row
    /// now: the table's row-level security policies decide, as for any read of it by the
    /// platform role. A row changed or removed again since is seen as it is now.
    func visible(_ change: DatabaseChange, claims: String) async throws -> Bool {
        let types = change.columnTypes
        let keys = change.primaryKey
        guard !keys.isEmpty, let record = change.record, keys.allSatisfy({ types[$0] != nil && record[$0] != nil }) else { return false }
        let table = PostgresQuery.quoteIdentifier(change.schema) + "." + PostgresQuery.quoteIdentifier(change.table)
        let condition = keys.map { key in
            "\(PostgresQuery.quoteIdentifier(key)) = ($1::jsonb ->> \(PostgresQuery.quoteLiteral(key)))::\(PostgresQuery.quoteIdentifier(types[key]!))"
        }.joined(separator: " AND ")
        let key = JSONText.serialize(.object(record.filter { keys.contains($0.key) }))
        return try await pool.withTransaction { connection in
            try await connection.query("SELECT set_config('request.jwt.claims', \(claims), true)")
            let found = try await connection.query(PostgresQuery(
                unsafeSQL: "SELECT EXISTS (SELECT 1 FROM \(table) WHERE \(condition)) AS visible", binds: [key.postgresBind]
            ))
            return try found.single().decode("visible")
        }
    }
}
