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
    let logger: Logger

    /// Creates the role (NOLOGIN; services act as it with SET ROLE) and the schema it owns.
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
                """)
        }
    }

    /// Drops the schema with everything in it, then the role. Missing ones are fine.
    func dropSchemaAndRole(_ tenant: TenantNames) async throws {
        try await pool.withConnection { connection in
            try await connection.execute(simple: """
                DROP SCHEMA IF EXISTS \(PostgresQuery.quoteIdentifier(tenant.schema)) CASCADE;
                DO $$
                BEGIN
                    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = \(PostgresQuery.quoteLiteral(tenant.role))) THEN
                        EXECUTE 'DROP OWNED BY ' || quote_ident(\(PostgresQuery.quoteLiteral(tenant.role)));
                        EXECUTE 'DROP ROLE ' || quote_ident(\(PostgresQuery.quoteLiteral(tenant.role)));
                    END IF;
                END
                $$;
                """)
        }
    }

    /// Applies the tenant migrations as the tenant's role (so the tables are the tenant's).
    func migrate(_ tenant: TenantNames) async throws {
        try await MigrationRunner(schema: tenant.schema, migrations: migrations, role: tenant.role).run(on: pool, logger: logger)
    }

    /// Drops what the tenant migrations created, keeping the schema.
    func dropTables(_ tenant: TenantNames) async throws {
        let schema = PostgresQuery.quoteIdentifier(tenant.schema)
        try await pool.withConnection { connection in
            try await connection.execute(simple: """
                DROP TABLE IF EXISTS \(schema).audit_log, \(schema).users, \(schema)._migrations CASCADE;
                DROP FUNCTION IF EXISTS \(schema).audit_log_verify(), \(schema).audit_log_chain(),
                    \(schema).audit_log_reject_change(),
                    \(schema).audit_log_hash(text, bigint, timestamptz, text, text, text, jsonb);
                """)
        }
    }
}
