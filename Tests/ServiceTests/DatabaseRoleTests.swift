import Contracts
import Foundation
import HTTPClient
import Postgres
@testable import Provisioning
import ServiceKit
import TestSupport
import Testing

/// Least privilege in the database (issue 15, item 5): each service connects as its own role,
/// owns only its schema and reads nothing of another's; only provisioning may create roles.
/// Checked with the services' own credentials, on a platform that has provisioned a tenant.
@Suite("Database roles")
struct DatabaseRoleTests {
    @Test("provisioning takes the roles tenants grant to from AUTH_DATABASE_ROLE / REALTIME_DATABASE_ROLE, refuses a malformed name, and without them grants to its own")
    func grantees() throws {
        func grantees(_ extra: [String: String]) throws -> TenantGrantees {
            try TenantGrantees(ServiceConfiguration(service: .provisioning, environment: TestServices.requiredEnvironment.merging(extra) { $1 }))
        }
        let named = try grantees(["AUTH_DATABASE_ROLE": "platform_auth", "REALTIME_DATABASE_ROLE": "platform_realtime"])
        #expect(named.migrationSettings == ["platform.auth_role": "platform_auth", "platform.realtime_role": "platform_realtime"])
        // Unset: the migration's session user (provisioning's own role) receives the grants.
        #expect(try grantees([:]).migrationSettings.isEmpty)
        for bad in ["Platform_Auth", "auth; DROP ROLE x", "1auth", String(repeating: "a", count: 64)] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try grantees(["AUTH_DATABASE_ROLE": bad]) }
        }
    }

    @Test("provisioning refuses to start when AUTH_DATABASE_ROLE names no role: every tenant's grants would fail")
    func missingGranteeRefused() async throws {
        try await withScratchDatabase { url in
            let missing = "no_such_role_" + TestDatabase.uniqueName("r")
            let refused = try ServiceProcess("provisioning", environment: ["DATABASE_URL": url, "AUTH_DATABASE_ROLE": missing])
            let status = await refused.waitForExit(timeout: .seconds(60))
            #expect(status != 0)
            #expect(refused.log.contains("refusing to start"))
            #expect(refused.log.contains("AUTH_DATABASE_ROLE=\(missing)"))
            // Named rightly, it starts.
            let started = try ServiceProcess("provisioning", environment: ["DATABASE_URL": url, "AUTH_DATABASE_ROLE": ServiceDatabaseRoles.role("auth")])
            try await started.waitUntil()
            #expect(await started.stop() == 0)
        }
    }

    @Test("each service connects as its own role, and no service can read another's schema or a tenant's users it was not granted")
    func servicesReadOnlyTheirOwn() async throws {
        try await withTestPlatform { platform, url in
            let slug = TestDatabase.uniqueName("roles")
            let response = try await platform.createProject(name: "Roles", slug: slug)
            #expect(response.status == 202)
            let project = try response.decode(ProjectAccepted.self).projectId
            #expect(try await platform.waitForProject(project, in: [.ready, .failed]).status == .ready)
            let tenant = "tenant_" + slug

            try await withPool(url: url) { (admin: PostgresPool) async throws -> Void in
                // Every session a service opened is its own role's.
                let sessions = try await admin.query("""
                    SELECT DISTINCT application_name, usename::text FROM pg_stat_activity
                    WHERE datname = current_database() AND application_name = ANY(\(TestPlatform.names)::text[])
                    """).map { (try $0.decode("application_name", as: String.self), try $0.decode("usename", as: String.self)) }
                #expect(Set(sessions.map(\.0)) == Set(TestPlatform.names))
                #expect(sessions.allSatisfy { $0.1 == ServiceDatabaseRoles.role($0.0) }, "\(sessions)")

                // Only provisioning may create roles; none is a superuser or bypasses row security.
                let powers = try await admin.query("""
                    SELECT rolname::text, rolcreaterole, rolsuper OR rolbypassrls OR rolcreatedb AS more FROM pg_roles
                    WHERE rolname = ANY(\(TestPlatform.names.map(ServiceDatabaseRoles.role))::text[]) ORDER BY rolname
                    """).map { (try $0.decode("rolname", as: String.self), try $0.decode("rolcreaterole", as: Bool.self), try $0.decode("more", as: Bool.self)) }
                #expect(powers.map(\.0) == ["platform_auth", "platform_provisioning", "platform_realtime", "platform_storage"])
                #expect(powers.filter(\.1).map(\.0) == ["platform_provisioning"])
                #expect(powers.allSatisfy { !$0.2 })

                // Each schema belongs to its service and has tables to try.
                var tables: [String: [String]] = [:]
                for name in TestPlatform.names {
                    #expect(try await admin.query("SELECT nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = \(name)")
                        .single().decode("owner", as: String.self) == ServiceDatabaseRoles.role(name))
                    tables[name] = try await admin.query("SELECT tablename::text FROM pg_tables WHERE schemaname = \(name)")
                        .map { "\(name).\(try $0.decode("tablename", as: String.self))" }
                    #expect(tables[name]?.contains("\(name)._migrations") == true)
                }
                #expect(tables["auth"]?.contains("auth.signing_keys") == true)

                for reader in TestPlatform.names {
                    try await withPool(url: platform.databaseURL(for: reader)) { (pool: PostgresPool) async throws -> Void in
                        // Its own schema: yes.
                        for table in tables[reader] ?? [] {
                            _ = try await pool.query("SELECT 1 FROM \(unescaped: table) LIMIT 1")
                        }
                        // Another's: refused (42501), every table of it.
                        var refused: [String] = []
                        var read: [String] = []
                        for other in TestPlatform.names where other != reader {
                            for table in tables[other] ?? [] {
                                do {
                                    _ = try await pool.query("SELECT 1 FROM \(unescaped: table) LIMIT 1")
                                    read.append(table)
                                } catch let error as PostgresError where error.sqlState == "42501" {
                                    refused.append(table)
                                }
                            }
                        }
                        #expect(read.isEmpty, "\(reader) read \(read)")
                        #expect(!refused.isEmpty)
                        // No schema of its own making, and no tenant role to take.
                        if reader != "provisioning" {
                            await #expect(throws: PostgresError.self, "\(reader) created a schema") {
                                try await pool.withTransaction { try await $0.execute(simple: "CREATE SCHEMA roles_probe") }
                            }
                            await #expect(throws: PostgresError.self, "\(reader) took the tenant's role") {
                                try await pool.withTransaction { try await $0.execute(simple: "GRANT \(tenant) TO CURRENT_USER") }
                            }
                        }
                        // The tenant's users: auth's alone.
                        let users = "\(tenant).users"
                        if reader == "auth" || reader == "provisioning" {
                            // Auth by the tenant's grant; provisioning, which can become the
                            // tenant's role at will, by the grant of migration 2 (0006's note).
                            _ = try await pool.query("SELECT 1 FROM \(unescaped: users) LIMIT 1")
                        } else {
                            await #expect(throws: PostgresError.self, "\(reader) read \(users)") {
                                _ = try await pool.query("SELECT 1 FROM \(unescaped: users) LIMIT 1")
                            }
                        }
                    }
                }
            }
        }
    }
}
