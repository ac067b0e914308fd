import Contracts
import Foundation
import Postgres
import ServiceKit

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

    // MARK: The per-table opt-in (the tenant's own functions, tenant migration 5)

    /// The tables realtime delivers changes of.
    func tables(schema: String) async throws -> [String] {
        try await tenantCall {
            try await pool.query("SELECT name::text AS name FROM \(unescaped: PostgresQuery.quoteIdentifier(schema)).realtime_tables() AS name")
                .map { try $0.decode("name", as: String.self) }
        }
    }

    /// Opts a table in; false when the schema has no such table.
    func enable(schema: String, table: String) async throws -> Bool {
        try await call("realtime_enable", schema: schema, table: table)
    }

    /// Opts a table out; false when the schema has no such table.
    func disable(schema: String, table: String) async throws -> Bool {
        try await call("realtime_disable", schema: schema, table: table)
    }

    private func call(_ function: String, schema: String, table: String) async throws -> Bool {
        try await tenantCall {
            let exists = try await !pool.query("""
                SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = \(schema) AND c.relname = \(table) AND c.relkind IN ('r', 'p')
                """).isEmpty
            guard exists else { return false }
            try await pool.query("""
                SELECT \(unescaped: PostgresQuery.quoteIdentifier(schema) + "." + function)((quote_ident(\(schema)) || '.' || quote_ident(\(table)))::regclass)
                """)
            return true
        }
    }

    /// A tenant whose schema predates tenant migration 5 (the upgrader has not reached it yet)
    /// has none of its functions: 409 rather than an error.
    private func tenantCall<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch let error as PostgresError where error.sqlState == "42883" {
            throw APIError.conflict(code: "tenant_not_upgraded", "The project's database is not yet on the version that has realtime's changes; retry shortly.")
        } catch let error as PostgresError where error.sqlState == "42501" {
            // The platform's own tables, or a table the project's role does not own.
            throw APIError.validation(field: "table", "This table cannot take part in realtime's changes: only tables of the project's own, not the platform's users, audit_log or realtime_outbox.")
        }
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
        let keys = change.primaryKey
        guard !keys.isEmpty, let record = change.record, keys.allSatisfy({ record[$0] != nil }) else { return false }
        let table = PostgresQuery.quoteIdentifier(change.schema) + "." + PostgresQuery.quoteIdentifier(change.table)
        // The key's values typed by the table's own row type, whatever their types are.
        let condition = keys.map { key in
            let column = PostgresQuery.quoteIdentifier(key)
            return "t.\(column) = (jsonb_populate_record(NULL::\(table), $1::jsonb)).\(column)"
        }.joined(separator: " AND ")
        let key = JSONText.serialize(.object(record.filter { keys.contains($0.key) }))
        return try await pool.withTransaction { connection in
            try await connection.query("SELECT set_config('request.jwt.claims', \(claims), true)")
            let found = try await connection.query(PostgresQuery(
                unsafeSQL: "SELECT EXISTS (SELECT 1 FROM \(table) AS t WHERE \(condition)) AS visible", binds: [key.postgresBind]
            ))
            return try found.single().decode("visible")
        }
    }
}
