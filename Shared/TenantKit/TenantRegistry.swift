import Contracts
import Foundation
import Logging
import Postgres
import ServiceKit

/// A service's own record of the tenants provisioning registered with it: `<schema>.tenants`
/// (auth, realtime and storage each keep one, in their own schema).
///
/// Every write runs in a transaction together with the service's side effect (a hook), so the
/// row and, say, storage's directory change in the order PostgreSQL serialises the writes: a
/// PUT and a DELETE of one tenant racing each other cannot leave a directory without a row
/// behind a committed DELETE. A hook that throws rolls the write back; the caller repeats the
/// (idempotent) request.
public struct TenantRegistry: Sendable {
    /// A column set only when a tenant is first registered (storage's `quota_bytes`); a later
    /// PUT never overwrites it, so an operator's change to the value survives re-registration.
    public struct InsertValue: Sendable {
        let column: String
        let bind: PostgresBind

        public init(column: String, value: some PostgresEncodable) {
            self.column = column
            self.bind = value.postgresBind
        }
    }

    /// The unique constraint on `tenants.slug` (named by PostgreSQL in every 0001 migration).
    static let slugConstraint = "tenants_slug_key"

    public let pool: PostgresPool
    public let schema: String
    public let insertValues: [InsertValue]

    public init(pool: PostgresPool, schema: String, insertValues: [InsertValue] = []) {
        self.pool = pool
        self.schema = schema
        self.insertValues = insertValues
    }

    /// Another tenant already holds the slug.
    public struct SlugTaken: Error, Sendable {}

    private var table: String { PostgresQuery.quoteIdentifier(schema) + ".tenants" }
    private static let columns = "id, slug, schema, role, created_at, updated_at"

    // MARK: Writes

    /// Inserts the tenant, or updates its slug, schema and role when the id is known; reports
    /// which happened (`xmax = 0` holds only for a row this statement inserted). `hook` runs in
    /// the same transaction, before commit.
    ///
    /// Writes of one tenant id are serialised by a transaction-scoped advisory lock. Without it,
    /// two first PUTs of one id could both pass `ON CONFLICT (id)`'s check (it arbitrates only the
    /// primary key) and the loser would fail on the slug's unique index instead: a 500 for a
    /// request that should answer 200. With it, a unique violation on the slug means another
    /// id holds it (409), unless that holder vanished meanwhile, in which case it is retried.
    public func register(
        id: UUID,
        _ registration: TenantRegistration,
        logger: Logger,
        hook: @Sendable (RegisteredTenant) async throws -> Void = { _ in }
    ) async throws -> (tenant: RegisteredTenant, created: Bool) {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await pool.withTransaction { connection in
                    try await lock(id, on: connection)
                    let row = try await connection.query(upsert(id: id, registration)).single()
                    let tenant = try Self.tenant(from: row)
                    let created = try row.decode("created", as: Bool.self)
                    try await hook(tenant)
                    return (tenant, created)
                }
            } catch let error as PostgresError where attempt < 3 && error.kind == .deadlockDetected {
                logger.debug("tenant registration hit a deadlock; retrying", metadata: ["tenant.id": "\(id.lowercased)"])
            } catch let error as PostgresError where error.kind == .uniqueViolation && error.constraint == Self.slugConstraint {
                let holder = try await pool.query(
                    "SELECT id FROM \(unescaped: table) WHERE slug = \(registration.slug)"
                ).first.map { try $0.decode("id", as: UUID.self) }
                if let holder, holder != id { throw SlugTaken() }
                // The holder was removed (or renamed) after the clash: the slug is free now.
                guard attempt < 3 else { throw error }
                logger.debug("slug freed after a clash; retrying", metadata: ["tenant.id": "\(id.lowercased)"])
            }
        }
    }

    /// Holds, until the transaction ends, the advisory lock for this service's record of `id`.
    private func lock(_ id: UUID, on connection: PostgresConnection) async throws {
        let key = "platform.tenants.\(schema).\(id.lowercased)"
        try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(key), 0))")
    }

    private func upsert(id: UUID, _ registration: TenantRegistration) -> PostgresQuery {
        var columns = ["id", "slug", "schema", "role"]
        var binds = [id.postgresBind, registration.slug.postgresBind, registration.schema.postgresBind, registration.role.postgresBind]
        for value in insertValues {
            columns.append(PostgresQuery.quoteIdentifier(value.column))
            binds.append(value.bind)
        }
        let placeholders = binds.indices.map { "$\($0 + 1)" }.joined(separator: ", ")
        return PostgresQuery(unsafeSQL: """
            INSERT INTO \(table) AS t (\(columns.joined(separator: ", "))) VALUES (\(placeholders))
            ON CONFLICT (id) DO UPDATE SET
                slug = EXCLUDED.slug, schema = EXCLUDED.schema, role = EXCLUDED.role,
                updated_at = CASE
                    WHEN (t.slug, t.schema, t.role) IS DISTINCT FROM (EXCLUDED.slug, EXCLUDED.schema, EXCLUDED.role)
                    THEN now() ELSE t.updated_at END
            RETURNING \(Self.columns), (t.xmax = 0) AS created
            """, binds: binds)
    }

    /// Deletes the tenant; `hook` runs in the same transaction. Returns false when there was no
    /// such tenant. The hook runs then too (hooks are idempotent): a registration whose process
    /// died after its side effect but before its commit (storage's directory made, the row never
    /// written) leaves the effect behind, and the DELETE that compensates it must undo it all the
    /// same. Takes the tenant's advisory lock too, so a PUT's side effect and a DELETE's never
    /// interleave.
    public func remove(id: UUID, hook: @Sendable (UUID) async throws -> Void = { _ in }) async throws -> Bool {
        try await pool.withTransaction { connection in
            try await lock(id, on: connection)
            let deleted = try await connection.query("DELETE FROM \(unescaped: table) WHERE id = \(id) RETURNING id")
            try await hook(id)
            return !deleted.isEmpty
        }
    }

    // MARK: Reads

    public func tenant(id: UUID) async throws -> RegisteredTenant? {
        try await pool.query("SELECT \(unescaped: Self.columns) FROM \(unescaped: table) WHERE id = \(id)")
            .first.map(Self.tenant(from:))
    }

    public func tenant(slug: String) async throws -> RegisteredTenant? {
        try await pool.query("SELECT \(unescaped: Self.columns) FROM \(unescaped: table) WHERE slug = \(slug)")
            .first.map(Self.tenant(from:))
    }

    /// The tenant's integer `columns` (a service's limits: realtime's connection and message
    /// limits, storage's quota) by column name; nil when no tenant has the slug.
    public func limits(slug: String, columns: [String]) async throws -> [String: Int]? {
        let list = columns.map(PostgresQuery.quoteIdentifier).joined(separator: ", ")
        guard let row = try await pool.query("SELECT \(unescaped: list) FROM \(unescaped: table) WHERE slug = \(slug)").first else {
            return nil
        }
        var limits: [String: Int] = [:]
        for column in columns { limits[column] = try row.decode(column) }
        return limits
    }

    static func tenant(from row: PostgresRow) throws -> RegisteredTenant {
        RegisteredTenant(
            id: try row.decode("id"),
            slug: try row.decode("slug"),
            schema: try row.decode("schema"),
            role: try row.decode("role"),
            createdAt: try row.decode("created_at"),
            updatedAt: try row.decode("updated_at")
        )
    }
}

extension TenantRegistry {
    /// A service's migrations together with the registry's own, which TenantKit ships once for
    /// every service that keeps a registry: `0002_tenant_schema_and_role` (each service's `0001`
    /// creates its `tenants` table, with the columns that service adds).
    public static func migrations(with own: [Migration]) throws -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw ConfigurationError(description: "TenantKit's Migrations resource folder is missing from its bundle")
        }
        return try Migration.ordered(own + Migration.load(from: directory))
    }
}

extension ServiceRuntime {
    /// The registry in this service's own schema (`auth.tenants`, `storage.tenants`, …).
    public func tenantRegistry(insertValues: [TenantRegistry.InsertValue] = []) -> TenantRegistry {
        TenantRegistry(pool: pool, schema: configuration.service.rawValue, insertValues: insertValues)
    }
}
