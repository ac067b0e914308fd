import Foundation
import Logging

/// One versioned SQL migration.
public struct Migration: Sendable, Equatable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Loads `NNNN_name.sql` files from a directory, ordered by version. Other files are ignored;
    /// two files with one version are refused.
    public static func load(from directory: URL) throws -> [Migration] {
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
        var migrations: [Migration] = []
        for file in files where file.pathExtension == "sql" {
            let stem = file.deletingPathExtension().lastPathComponent
            guard let separator = stem.firstIndex(of: "_"), let version = Int(stem[..<separator]) else {
                throw PostgresError(.migration, message: "migration file \(file.lastPathComponent) is not named NNNN_name.sql")
            }
            let sql = try String(contentsOf: file, encoding: .utf8)
            migrations.append(Migration(version: version, name: String(stem[stem.index(after: separator)...]), sql: sql))
        }
        return try ordered(migrations)
    }

    /// Migrations from several sources (a service's own folder and a shared kit's) as one list,
    /// ordered by version; two migrations with one version are refused.
    public static func ordered(_ migrations: [Migration]) throws -> [Migration] {
        let sorted = migrations.sorted { $0.version < $1.version }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.version == next.version {
            throw PostgresError(.migration, message: "two migrations have version \(next.version)")
        }
        return sorted
    }
}

/// What a migration run did.
public struct MigrationReport: Sendable, Equatable {
    public var schema: String
    public var applied: [Int]
    public var alreadyApplied: [Int]
}

/// Applies versioned migrations to one schema.
///
/// - Each migration runs in its own transaction (or all pending ones in one: `oneTransaction`)
///   with `search_path` set to the schema, and is recorded in `<schema>._migrations` with the
///   SHA-256 of its text in that same transaction.
/// - A session-level advisory lock keyed by the schema serialises runners, so processes that
///   start at once apply each migration exactly once.
/// - Start-up is refused when an applied migration's text no longer matches its checksum.
/// - Versions recorded in the ledger that this binary does not know (a newer release ran) are
///   tolerated with a warning, so a rolling deploy can run old and new side by side.
public struct MigrationRunner: Sendable {
    public var schema: String
    public var migrations: [Migration]
    /// When set, each migration's SQL runs under this role (`SET LOCAL ROLE`), so what it
    /// creates belongs to that role; the ledger stays the caller's, out of the role's reach.
    ///
    /// The caller needs no standing membership in the role: each transaction that needs the
    /// role's privileges opens with `GRANT role TO CURRENT_USER` and closes with the matching
    /// `REVOKE`, so the membership never outlives it (a caller that is a member of thousands of
    /// roles pays for every privilege check and can act on a stale membership list; see
    /// docs/measurements/tenant-ddl-roles.md). A standing membership the caller already has is
    /// left alone. The schema must exist: it belongs to the role, which made it.
    public var role: String?

    /// When true, every pending migration is applied in one transaction (with the ledger's
    /// creation and read): all of them or none. For a tenant's schema, where that costs one
    /// commit and one membership instead of one per migration; a service's own schema applies
    /// each in its own transaction, so a failing one rolls back alone.
    public var oneTransaction: Bool

    /// Settings each migration's transaction starts with (`set_config(name, value, true)`):
    /// values a migration reads with `current_setting(name, true)` that are the deployment's,
    /// not the migration text's (the roles a tenant's schema grants to), so the text, and its
    /// checksum, stay one for every deployment.
    public var settings: [String: String]

    public init(schema: String, migrations: [Migration], role: String? = nil, oneTransaction: Bool = false,
                settings: [String: String] = [:]) {
        self.schema = schema
        self.migrations = migrations
        self.role = role
        self.oneTransaction = oneTransaction
        self.settings = settings
    }

    @discardableResult
    public func run(on pool: PostgresPool, logger: Logger) async throws -> MigrationReport {
        try await pool.withConnection { connection in
            try await run(on: connection, logger: logger)
        }
    }

    /// Runs on a connection the caller holds (outside any transaction).
    public func run(on connection: PostgresConnection, logger: Logger) async throws -> MigrationReport {
        try await connection.query("SELECT pg_advisory_lock(hashtextextended(\("platform.migrations." + schema), 0))")
        do {
            let report = try await applyLocked(on: connection, logger: logger)
            try await connection.query("SELECT pg_advisory_unlock(hashtextextended(\("platform.migrations." + schema), 0))")
            return report
        } catch {
            // Closing the session would free the lock too; unlock so a pooled connection is clean.
            _ = try? await connection.query("SELECT pg_advisory_unlock(hashtextextended(\("platform.migrations." + schema), 0))")
            throw error
        }
    }

    private func applyLocked(on connection: PostgresConnection, logger: Logger) async throws -> MigrationReport {
        let membership = try await RoleMembership(role: role, on: connection)
        let checksums = try await checksums(on: connection)
        var report = MigrationReport(schema: schema, applied: [], alreadyApplied: [])
        if oneTransaction {
            report.applied = try await connection.transaction { tx in
                try await membership.acquire(tx)
                let pending = try plan(ledger: try await readLedger(tx), checksums: checksums, into: &report, logger: logger)
                for migration in pending {
                    try await apply(migration, checksum: checksums[migration.version] ?? "", on: tx)
                }
                try await membership.release(tx)
                return pending.map(\.version)
            }
            for version in report.applied {
                logger.info("applied migration", metadata: ["db.schema": "\(schema)", "migration.version": "\(version)"])
            }
            return report
        }
        let ledger = try await connection.transaction { tx in
            try await membership.acquire(tx)
            let rows = try await readLedger(tx)
            try await membership.release(tx)
            return rows
        }
        for migration in try plan(ledger: ledger, checksums: checksums, into: &report, logger: logger) {
            try await connection.transaction { tx in
                try await membership.acquire(tx)
                try await apply(migration, checksum: checksums[migration.version] ?? "", on: tx)
                try await membership.release(tx)
            }
            logger.info("applied migration", metadata: [
                "db.schema": "\(schema)", "migration.version": "\(migration.version)", "migration.name": "\(migration.name)",
            ])
            report.applied.append(migration.version)
        }
        return report
    }

    /// Creates the ledger when missing (and, without a role, the schema), then reads it.
    ///
    /// A schema that exists is not created again, not even `IF NOT EXISTS`: that form still
    /// needs CREATE on the database, which a service whose schema the operator made for it
    /// (deploy/postgres/service-schemas.sql) does not have.
    private func readLedger(_ tx: PostgresConnection) async throws -> [Int: (name: String, checksum: String)] {
        if role == nil {
            let exists = try await tx.query("SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = \(schema)) AS found")
                .single().decode("found", as: Bool.self)
            if !exists { try await tx.execute(simple: "CREATE SCHEMA \(PostgresQuery.quoteIdentifier(schema))") }
        }
        try await tx.execute(simple: """
            CREATE TABLE IF NOT EXISTS \(PostgresQuery.quoteIdentifier(schema))._migrations (
                version     integer PRIMARY KEY,
                name        text        NOT NULL,
                checksum    text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                duration_ms integer     NOT NULL DEFAULT 0
            );
            """)
        var applied: [Int: (name: String, checksum: String)] = [:]
        for row in try await tx.query("SELECT version, name, checksum FROM \(identifier: schema)._migrations ORDER BY version") {
            applied[try row.decode("version")] = (try row.decode("name"), try row.decode("checksum"))
        }
        return applied
    }

    /// The migrations still to apply, in order; those applied go into `report`. Refuses an
    /// applied migration whose text changed; warns about versions this binary does not know.
    private func plan(ledger applied: [Int: (name: String, checksum: String)], checksums: [Int: String],
                      into report: inout MigrationReport, logger: Logger) throws -> [Migration] {
        let known = Set(migrations.map(\.version))
        for version in applied.keys.sorted() where !known.contains(version) {
            logger.warning("schema has a migration this binary does not know; a newer release applied it",
                           metadata: ["db.schema": "\(schema)", "migration.version": "\(version)"])
        }
        var pending: [Migration] = []
        for migration in migrations {
            let checksum = checksums[migration.version] ?? ""
            guard let recorded = applied[migration.version] else {
                pending.append(migration)
                continue
            }
            guard recorded.checksum == checksum else {
                throw PostgresError(
                    .migration,
                    message: "migration \(migration.version)_\(migration.name) of schema \(schema) was changed after it was applied "
                        + "(recorded checksum \(recorded.checksum.prefix(12))…, file \(checksum.prefix(12))…); "
                        + "restore the file and add a new migration instead"
                )
            }
            report.alreadyApplied.append(migration.version)
        }
        return pending
    }

    /// One migration inside the caller's transaction (holding the role's membership when there
    /// is a role): its SQL with `search_path` on the schema, as the role, then its ledger row.
    private func apply(_ migration: Migration, checksum: String, on tx: PostgresConnection) async throws {
        let started = ContinuousClock.now
        do {
            try await tx.query("SELECT set_config('search_path', \(PostgresQuery.quoteIdentifier(schema) + ", public"), true)")
            for (name, value) in settings.sorted(by: { $0.key < $1.key }) {
                try await tx.query("SELECT set_config(\(name), \(value), true)")
            }
            if let role {
                try await tx.execute(simple: "SET LOCAL ROLE \(PostgresQuery.quoteIdentifier(role))")
            }
            try await tx.execute(simple: migration.sql)
            if role != nil {
                try await tx.execute(simple: "RESET ROLE")
            }
            let elapsed = Int((ContinuousClock.now - started).milliseconds)
            try await tx.query("""
                INSERT INTO \(identifier: schema)._migrations (version, name, checksum, duration_ms)
                VALUES (\(migration.version), \(migration.name), \(checksum), \(elapsed))
                """)
        } catch let error as PostgresError {
            throw PostgresError(
                .migration,
                message: "migration \(migration.version)_\(migration.name) of schema \(schema) failed: \(error.message)",
                sqlState: error.sqlState
            )
        }
    }

    /// SHA-256 of every migration's text, computed by the server (`sha256()`, PostgreSQL 11+),
    /// in one round trip.
    private func checksums(on connection: PostgresConnection) async throws -> [Int: String] {
        guard !migrations.isEmpty else { return [:] }
        let rows = try await connection.query("""
            SELECT v.version, encode(sha256(convert_to(s.sql, 'UTF8')), 'hex') AS checksum
            FROM unnest(\(migrations.map(\.version))::int8[]) WITH ORDINALITY AS v(version, n)
            JOIN unnest(\(migrations.map(\.sql))::text[]) WITH ORDINALITY AS s(sql, n) USING (n)
            """)
        var result: [Int: String] = [:]
        for row in rows {
            result[try row.decode("version")] = try row.decode("checksum")
        }
        return result
    }

    /// True when every migration is recorded in the schema's ledger (used by readiness checks).
    public func isFullyApplied(on pool: PostgresPool) async throws -> Bool {
        let rows = try await pool.query("""
            SELECT count(*)::int8 AS n FROM pg_catalog.pg_tables
            WHERE schemaname = \(schema) AND tablename = '_migrations'
            """)
        guard try rows.single().decode("n", as: Int.self) == 1 else { return false }
        let applied = try await pool.query(
            "SELECT count(*)::int8 AS n FROM \(identifier: schema)._migrations WHERE version = ANY(\(migrations.map(\.version)))"
        )
        return try applied.single().decode("n", as: Int.self) == migrations.count
    }
}
