import Foundation
import Logging
import Postgres

/// The tenant's own corner of the database: a schema `tenant_<slug>` owned by a role of the
/// same name that can use nothing else, and the tenant's tables, created by versioned tenant
/// migrations recorded in the tenant's own `_migrations`. Every operation is idempotent.
///
/// The one place in provisioning besides the stores (`ProjectStore`, `ExecutionLedger`,
/// `KeyVault`) that sends SQL, and deliberately so: what it sends is DDL that makes or removes
/// the tenant's schema, role and tables, never a read or write of provisioning's own rows, so it
/// belongs to the tenant's database rather than to a store of the `provisioning` schema.
struct TenantDatabase: Sendable {
    let pool: PostgresPool
    let migrations: [Migration]
    /// The roles the tenant migrations grant to (auth's, realtime's).
    var grantees = TenantGrantees()
    let logger: Logger

    /// The tenant migrations bundled with provisioning (`TenantMigrations/NNNN_name.sql`).
    static func bundledMigrations() throws -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "TenantMigrations", withExtension: nil) else {
            throw PostgresError(.migration, message: "the TenantMigrations resource folder is missing from the bundle")
        }
        return try Migration.load(from: directory)
    }

    /// Creates the role (NOLOGIN, a member of nothing, with no member) and the schema it owns.
    /// Provisioning is a member of the role only inside this transaction (see `RoleMembership`).
    func createSchemaAndRole(_ tenant: TenantNames) async throws {
        let role = PostgresQuery.quoteIdentifier(tenant.role)
        let schema = PostgresQuery.quoteIdentifier(tenant.schema)
        try await pool.withConnection { connection in
            try await connection.execute(simple: """
                DO $$
                BEGIN
                    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = \(PostgresQuery.quoteLiteral(tenant.role))) THEN
                        CREATE ROLE \(role) NOLOGIN;
                    END IF;
                EXCEPTION WHEN duplicate_object THEN
                    NULL;  -- created concurrently: same result
                END
                $$;
                GRANT \(role) TO CURRENT_USER;
                CREATE SCHEMA IF NOT EXISTS \(schema) AUTHORIZATION \(role);
                REVOKE ALL ON SCHEMA \(schema) FROM PUBLIC;
                REVOKE \(role) FROM CURRENT_USER;
                """)
        }
    }

    /// Drops the schema with everything in it, then the role. Missing ones are fine. The schema
    /// is dropped as a member of its owner, for the length of this transaction.
    func dropSchemaAndRole(_ tenant: TenantNames) async throws {
        let role = PostgresQuery.quoteLiteral(tenant.role)
        let schema = PostgresQuery.quoteLiteral(tenant.schema)
        try await pool.withConnection { connection in
            try await connection.execute(simple: """
                DO $$
                BEGIN
                    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = \(role)) THEN
                        EXECUTE format('GRANT %I TO CURRENT_USER', \(role));
                        EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', \(schema));
                        EXECUTE format('DROP OWNED BY %I', \(role));
                        EXECUTE format('DROP ROLE %I', \(role));
                    ELSE
                        EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', \(schema));
                    END IF;
                END
                $$;
                """)
        }
    }

    /// Applies the tenant migrations as the tenant's role (so the tables are the tenant's);
    /// returns the tenant's schema version: the highest migration its ledger records.
    @discardableResult
    func migrate(_ tenant: TenantNames) async throws -> Int {
        let report = try await MigrationRunner(
            schema: tenant.schema, migrations: migrations, role: tenant.role, oneTransaction: true, settings: grantees.migrationSettings
        ).run(on: pool, logger: logger)
        return (report.applied + report.alreadyApplied).max() ?? 0
    }

    /// The settings naming a grantee role that does not exist, as `AUTH_DATABASE_ROLE=name`
    /// (a catalog read: a tenant migration would fail on each of them).
    func missingGrantees() async throws -> [String] {
        var missing: [String] = []
        for (setting, role) in [("AUTH_DATABASE_ROLE", grantees.authRole), ("REALTIME_DATABASE_ROLE", grantees.realtimeRole)] {
            guard let role else { continue }
            if try await pool.query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = \(role)").isEmpty {
                missing.append("\(setting)=\(role)")
            }
        }
        return missing
    }

    /// The version the tenant migrations of this binary bring a tenant to.
    var latestVersion: Int { migrations.map(\.version).max() ?? 0 }

    /// Ends a standing membership of the platform role in the tenant's role (tenants provisioned
    /// before memberships became transient). Only once the tenant's grants to the platform role
    /// are in (tenant migration 2), so auth never loses access in between.
    func dropStandingMembership(_ tenant: TenantNames) async throws {
        try await pool.withConnection { connection in
            // The same reading of the catalog as a transient membership's (`RoleMembership`).
            guard try await RoleMembership(role: tenant.role, on: connection).standing else { return }
            try await connection.execute(simple: "REVOKE \(PostgresQuery.quoteIdentifier(tenant.role)) FROM CURRENT_USER")
        }
    }

    /// Drops what the tenant migrations created, keeping the schema, as a member of its owner
    /// for the length of this transaction (`RoleMembership`). With no role there is no schema
    /// either (the role owns it), so nothing to drop.
    func dropTables(_ tenant: TenantNames) async throws {
        let schema = PostgresQuery.quoteIdentifier(tenant.schema)
        try await pool.withConnection { connection in
            let roles = try await connection.query("SELECT count(*)::int8 AS n FROM pg_catalog.pg_roles WHERE rolname = \(tenant.role)")
            guard try roles.single().decode("n", as: Int.self) == 1 else { return }
            let membership = try await RoleMembership(role: tenant.role, on: connection)
            try await connection.transaction { tx in
                try await membership.acquire(tx)
                try await tx.execute(simple: """
                    DROP TABLE IF EXISTS \(schema).audit_log, \(schema).users, \(schema).realtime_outbox, \(schema)._migrations CASCADE;
                    DROP FUNCTION IF EXISTS \(schema).audit_log_verify(), \(schema).audit_log_chain(),
                        \(schema).audit_log_reject_change(),
                        \(schema).audit_log_hash(text, bigint, timestamptz, text, text, text, jsonb),
                        \(schema).realtime_enable(regclass), \(schema).realtime_disable(regclass), \(schema).realtime_tables(),
                        \(schema).realtime_reader(), \(schema).realtime_capture(), \(schema).auth_uid(), \(schema).auth_role(),
                        \(schema).auth_claims() CASCADE;
                    """)
                try await membership.release(tx)
            }
        }
    }
}
