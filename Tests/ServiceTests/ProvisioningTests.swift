import Contracts
import Crypto
import Foundation
import HTTPClient
import Postgres
@testable import Provisioning
import Resilience
import ServiceKit
import ServiceClients
import TestSupport
import Testing

/// The provisioning saga end to end: the four real executables on a scratch database.
@Suite("Provisioning saga", .serialized)
struct ProvisioningTests {
    /// Runs `body` with all four services up on a fresh database.
    func accepted(_ response: HTTPClientResponse) throws -> ProjectAccepted {
        #expect(response.status == 202, "body: \(String(decoding: response.body, as: UTF8.self))")
        return try response.decode(ProjectAccepted.self)
    }

    /// What every service and the database hold for one tenant.
    struct Footprint: Equatable {
        var schema = 0, role = 0, authTenant = 0, realtimeTenant = 0, storageTenant = 0, activeKeys = 0
        var storageDirectory = false
    }

    func footprint(_ pool: PostgresPool, _ platform: TestPlatform, project: UUID, slug: String) async throws -> Footprint {
        let name = "tenant_" + slug
        return Footprint(
            schema: try await pool.scalar("SELECT count(*)::int8 FROM pg_namespace WHERE nspname = \(name)"),
            role: try await pool.scalar("SELECT count(*)::int8 FROM pg_roles WHERE rolname = \(name)"),
            authTenant: try await pool.scalar("SELECT count(*)::int8 FROM auth.tenants WHERE id = \(project)"),
            realtimeTenant: try await pool.scalar("SELECT count(*)::int8 FROM realtime.tenants WHERE id = \(project)"),
            storageTenant: try await pool.scalar("SELECT count(*)::int8 FROM storage.tenants WHERE id = \(project)"),
            activeKeys: try await pool.scalar("SELECT count(*)::int8 FROM auth.api_keys WHERE tenant_id = \(project) AND revoked_at IS NULL"),
            storageDirectory: FileManager.default.fileExists(atPath: platform.storageRoot.appendingPathComponent(project.uuidString.lowercased()).path)
        )
    }

    static let present = Footprint(schema: 1, role: 1, authTenant: 1, realtimeTenant: 1, storageTenant: 1, activeKeys: 2, storageDirectory: true)
    static let absent = Footprint()

    @Test("full flow: a project becomes a ready tenant everywhere, with its schema, role, tables and hashed keys")
    func fullFlow() async throws {
        try await withTestPlatform(.processes) { platform, url in
            let slug = TestDatabase.uniqueName("full")
            let created = try accepted(try await platform.createProject(name: "Full Flow", slug: slug))
            #expect(created.status == .pending)
            #expect(created.statusUrl.hasSuffix("/v1/projects/" + created.projectId.uuidString.lowercased()))

            let ready = try await platform.waitForProject(created.projectId, in: [.ready, .failed])
            #expect(ready.status == .ready)
            #expect(ready.isActive)
            let workflow = try #require(ready.workflow)
            #expect(workflow.status == "succeeded" && workflow.kind == "provision" && workflow.finishedAt != nil)
            #expect(workflow.steps.map(\.name) == ["create_tenant_schema", "create_tenant_tables", "register_auth",
                                                   "register_realtime", "register_storage", "generate_api_keys", "activate"])
            #expect(workflow.steps.allSatisfy { $0.status == "succeeded" && $0.attempts == 1 && $0.finishedAt != nil })

            // The keys come once, and only their hashes are stored.
            let revealed = try await platform.apiKeys(created.projectId).decode(ProjectAPIKeys.self)
            let keys = TenantAPIKeys(publishable: try #require(revealed.key(.publishable)), secret: try #require(revealed.key(.secret)))
            #expect(keys.publishable.hasPrefix("pk_") && keys.secret.hasPrefix("sk_"))
            let again = try await platform.apiKeys(created.projectId).decode(ProjectAPIKeys.self)
            #expect(again.keys.count == 2 && again.keys.allSatisfy { $0.key == nil })
            #expect(again.keys.map(\.prefix) == revealed.keys.map(\.prefix))

            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await footprint(pool, platform, project: created.projectId, slug: slug) == Self.present)
                let hashes = try await pool.query("SELECT sha256 FROM auth.api_keys WHERE tenant_id = \(created.projectId)")
                    .map { try $0.decode("sha256", as: String.self) }.sorted()
                let expected = [keys.publishable, keys.secret].map { SHA256.hash(data: Data($0.utf8)).map { String(format: "%02x", $0) }.joined() }.sorted()
                #expect(hashes == expected)
                let leaked = try await pool.scalar("""
                    SELECT count(*)::int8 FROM auth.api_keys WHERE row_to_json(api_keys)::text LIKE '%' || \(keys.secret) || '%'
                    """)
                #expect(leaked == 0)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.api_key_reveals WHERE project_id = \(created.projectId)") == 0)

                // The tenant's tables, owned by the tenant's role, recorded in its own ledger.
                let schema = "tenant_" + slug
                let tables = try await pool.query("""
                    SELECT tablename, tableowner FROM pg_tables WHERE schemaname = \(schema) ORDER BY tablename
                    """).map { (try $0.decode("tablename", as: String.self), try $0.decode("tableowner", as: String.self)) }
                #expect(tables.map(\.0) == ["_migrations", "audit_log", "realtime_outbox", "users"])
                #expect(tables.filter { $0.0 != "_migrations" }.allSatisfy { $0.1 == schema })
                let userColumns = try await pool.query("""
                    SELECT column_name FROM information_schema.columns WHERE table_schema = \(schema) AND table_name = 'users'
                    """).map { try $0.decode("column_name", as: String.self) }
                #expect(Set(["id", "email", "password_hash", "created_at", "updated_at"]).isSubset(of: Set(userColumns)))
                let tenantVersions = try TenantDatabase.bundledMigrations().map(\.version)
                #expect(try await pool.query("SELECT version::int8 FROM \(identifier: schema)._migrations ORDER BY version")
                    .map { try $0.decode(at: 0, as: Int.self) } == tenantVersions)
                #expect(try await pool.scalar("""
                    SELECT tenant_schema_version::int8 FROM provisioning.projects WHERE id = \(created.projectId)
                    """) == tenantVersions.last)
                // The services' login roles reach the tables through the tenant's grants, each
                // what it uses, as members of no tenant role (docs/measurements/tenant-ddl-roles.md;
                // PostgreSQL 16's ADMIN-only membership of the role's maker lets it act as nothing).
                let services = TestPlatform.names.map(ServiceDatabaseRoles.role)
                #expect(try await pool.scalar("""
                    SELECT count(*)::int8 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
                    WHERE r.rolname = ANY(\(services)::text[]) AND \(unescaped: RoleMembership.usable("m"))
                    """) == 0)
                let auth = ServiceDatabaseRoles.role("auth")
                let realtime = ServiceDatabaseRoles.role("realtime")
                let storage = ServiceDatabaseRoles.role("storage")
                #expect(try await pool.scalar("""
                    SELECT count(*)::int8 FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(privilege)
                    WHERE has_table_privilege(\(auth), \(schema + ".users"), privilege)
                    """) == 4)
                #expect(try await pool.scalar("""
                    SELECT count(*)::int8 FROM unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE']) AS p(privilege)
                    WHERE has_table_privilege(\(auth), \(schema + ".audit_log"), privilege)
                    """) == 0)
                // Realtime reads its outbox, not the users; storage has nothing in the schema.
                #expect(try await pool.scalar("SELECT has_table_privilege(\(realtime), \(schema + ".realtime_outbox"), 'SELECT')::int::int8") == 1)
                #expect(try await pool.scalar("SELECT has_table_privilege(\(realtime), \(schema + ".users"), 'SELECT')::int::int8") == 0)
                #expect(try await pool.scalar("SELECT has_schema_privilege(\(storage), \(schema), 'USAGE')::int::int8") == 0)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.workflow_executions WHERE project_id = \(created.projectId)") == 1)
            }
        }
    }

    @Test("the audit log is append-only and hash-chained; tampering is found; tenants are isolated by role")
    func auditLogAndIsolation() async throws {
        try await withTestPlatform { platform, url in
            let a = TestDatabase.uniqueName("iso_a")
            let b = TestDatabase.uniqueName("iso_b")
            let projectA = try accepted(try await platform.createProject(name: "A", slug: a)).projectId
            let projectB = try accepted(try await platform.createProject(name: "B", slug: b)).projectId
            #expect(try await platform.waitForProject(projectA, in: [.ready, .failed]).status == .ready)
            #expect(try await platform.waitForProject(projectB, in: [.ready, .failed]).status == .ready)
            let schemaA = "tenant_" + a
            let schemaB = "tenant_" + b

            try await withPool(url: platform.databaseURL(for: "auth")) { (pool: PostgresPool) async throws -> Void in
                // Auth's role writes through the tenant's grants.
                try await pool.withTransaction { tx in
                    try await tx.query("INSERT INTO \(identifier: schemaA).users (email, email_normalized) VALUES ('x@a.test', 'x@a.test')")
                    try await tx.query("INSERT INTO \(identifier: schemaA).audit_log (actor, action, target) VALUES ('test', 'user.created', 'x@a.test')")
                    try await tx.query("INSERT INTO \(identifier: schemaA).audit_log (actor, action, details) VALUES ('test', 'user.updated', '{\"n\": 1}')")
                }
                // …and cannot act as a tenant's role: it is a member of none.
                await #expect(throws: PostgresError.self) {
                    try await pool.withTransaction { tx in try await tx.execute(simple: "SET LOCAL ROLE \(schemaA)") }
                }
                // Tenant B's role can read neither A's rows nor any platform schema.
                try await withPool(url: try TestDatabase.adminURL(for: url)) { admin in
                    for target in ["\(schemaA).users", "auth.developers", "provisioning.projects"] {
                        await #expect(throws: PostgresError.self, "tenant B must not read \(target)") {
                            try await admin.withTransaction { tx in
                                try await tx.execute(simple: "SET LOCAL ROLE \(schemaB)")
                                try await tx.execute(simple: "SELECT * FROM \(target)")
                            }
                        }
                    }
                }
                // Append-only, even for the owner.
                for statement in ["UPDATE \(schemaA).audit_log SET actor = 'mallory'", "DELETE FROM \(schemaA).audit_log"] {
                    await #expect(throws: PostgresError.self) {
                        try await pool.withConnection { try await $0.execute(simple: statement) }
                    }
                }
                let intact = try await pool.query("SELECT \(identifier: schemaA).audit_log_verify() AS broken").single()
                #expect(try intact.decode("broken", as: Int?.self) == nil)
            }

            // A superuser who bypasses the trigger to rewrite history is caught by the chain.
            try await withPool(url: try TestDatabase.adminURL(for: url)) { admin in
                try await admin.withTransaction { tx in
                    try await tx.execute(simple: "SET LOCAL session_replication_role = replica")
                    try await tx.query("UPDATE \(identifier: schemaA).audit_log SET target = 'someone-else' WHERE seq = 2")
                }
                let broken = try await admin.query("SELECT \(identifier: schemaA).audit_log_verify() AS broken").single()
                let brokenID = try #require(try broken.decode("broken", as: Int?.self))
                let seq = try await admin.query("SELECT seq::int8 FROM \(identifier: schemaA).audit_log WHERE id = \(brokenID)").single().decode(at: 0, as: Int.self)
                #expect(seq == 2)
            }
        }
    }

    @Test("a failing service: transient errors are retried, then every completed step is compensated and nothing remains")
    func compensation() async throws {
        try await withTestPlatform { platform, url in
            await platform.stop("storage")
            let slug = TestDatabase.uniqueName("comp")
            let project = try accepted(try await platform.createProject(name: "Compensated", slug: slug)).projectId
            let failed = try await platform.waitForProject(project, in: [.failed, .ready])
            #expect(failed.status == .failed)
            #expect(!failed.isActive)
            let workflow = try #require(failed.workflow)
            #expect(workflow.status == "failed")
            #expect(workflow.error?.hasPrefix("register_storage") == true)
            let steps = Dictionary(uniqueKeysWithValues: workflow.steps.map { ($0.name, $0) })
            #expect(steps["register_storage"]?.attempts == 4)  // PROVISIONING_STEP_MAX_ATTEMPTS
            #expect(steps["register_storage"]?.lastError?.contains("connect") == true)
            // Storage never received anything (every connection was refused): nothing to undo there.
            #expect(steps["register_storage"]?.status == "failed")
            for done in ["create_tenant_schema", "create_tenant_tables", "register_auth", "register_realtime"] {
                #expect(steps[done]?.status == "compensated", "\(done)")
            }
            for untouched in ["generate_api_keys", "activate"] {
                #expect(steps[untouched]?.status == "pending" && steps[untouched]?.attempts == 0, "\(untouched)")
            }
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                var expected = Self.absent
                expected.storageDirectory = false
                #expect(try await footprint(pool, platform, project: project, slug: slug) == expected)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.projects WHERE id = \(project) AND status = 'failed' AND NOT is_active") == 1)
            }

            // The fault gone, a retry provisions it.
            try await platform.start(["storage"])
            let retried = try await platform.client.execute(HTTPClientRequest(
                method: .post, url: platform.url("provisioning") + "/v1/projects/\(project.uuidString.lowercased())/retry",
                headers: platform.tokenHeaders
            ))
            #expect(retried.status == 202)
            let ready = try await platform.waitForProject(project, in: [.ready, .failed])
            #expect(ready.status == .ready && ready.isActive)
            #expect(ready.workflow?.attempt == 2)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await footprint(pool, platform, project: project, slug: slug) == Self.present)
            }
        }
    }

    @Test("every step runs once per provision: stages hold each step exactly once, and lanes keep the steps' order")
    func stagesCoverEveryStep() {
        let lanes = SagaStep.stages.flatMap { $0 }
        #expect(lanes.flatMap { $0 }.sorted { $0.rawValue < $1.rawValue } == SagaStep.allCases.sorted { $0.rawValue < $1.rawValue })
        let position = Dictionary(uniqueKeysWithValues: SagaStep.allCases.enumerated().map { ($1, $0) })
        #expect(lanes.allSatisfy { lane in zip(lane, lane.dropFirst()).allSatisfy { position[$0]! < position[$1]! } })
        #expect(SagaStep.stages.last == [[.activate]])
    }

    @Test("independent steps run at once: the three registrations finish while the tenant's DDL waits on a lock, then the project is ready")
    func registrationsBesideTheDDL() async throws {
        try await withTestPlatform { platform, url in
            try await withPool(url: try TestDatabase.adminURL(for: url)) { admin in
                let slug = TestDatabase.uniqueName("lanes")
                var project: UUID?
                // CREATE ROLE needs pg_authid in ROW EXCLUSIVE mode: held back until this commits.
                try await admin.withTransaction { tx in
                    try await tx.execute(simple: "LOCK TABLE pg_catalog.pg_authid IN SHARE MODE")
                    project = try accepted(try await platform.createProject(name: "Lanes", slug: slug)).projectId
                    let id = try #require(project)
                    #expect(try await eventually(timeout: .seconds(30)) {
                        try await withPool(url: url) { (pool: PostgresPool) in
                            try await pool.scalar("""
                                SELECT count(*)::int8 FROM provisioning.provisioning_steps s
                                JOIN provisioning.workflow_executions e ON e.id = s.execution_id
                                WHERE e.project_id = \(id) AND s.status = 'succeeded'
                                  AND s.step IN ('register_auth', 'register_realtime', 'register_storage')
                                """) == 3
                        }
                    })
                    let schemaStep = try await withPool(url: url) { (pool: PostgresPool) in
                        try await pool.query("""
                            SELECT s.status FROM provisioning.provisioning_steps s JOIN provisioning.workflow_executions e ON e.id = s.execution_id
                            WHERE e.project_id = \(id) AND s.step = 'create_tenant_schema'
                            """).single().decode("status", as: String.self)
                    }
                    #expect(schemaStep == "running")
                }
                let ready = try await platform.waitForProject(try #require(project), in: [.ready, .failed])
                #expect(ready.status == .ready)
            }
        }
    }

    @Test("an attempt whose outcome was never recorded may have acted: when its step then fails against a service that is down, the undo waits for that service instead of leaving an orphan")
    func unrecordedAttemptIsCompensated() async throws {
        try await withTestPlatform(provisioning: ["PROVISIONING_STEP_MAX_ATTEMPTS": "100", "PROVISIONING_RETRY_MAX_MS": "200"]) { platform, url in
            await platform.stop("auth")  // register_auth sits retrying; its step row is `running`
            let slug = TestDatabase.uniqueName("lost")
            let project = try accepted(try await platform.createProject(name: "Lost outcome", slug: slug)).projectId
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                func step(_ name: String, where condition: String) async throws -> Bool {
                    // `condition` is one of this test's own constants.
                    try await pool.scalar(PostgresQuery(unsafeSQL: """
                        SELECT count(*)::int8 FROM provisioning.provisioning_steps s
                        JOIN provisioning.workflow_executions e ON e.id = s.execution_id
                        WHERE e.project_id = $1 AND s.step = $2 AND \(condition)
                        """, binds: [project.postgresBind, name.postgresBind])) == 1
                }
                #expect(try await eventually(timeout: .seconds(30)) { try await step("register_auth", where: "s.attempts >= 1") })
                await platform.stop("provisioning")  // hands the execution back; the step stays `running`

                // What the lost attempt did before the crash: it reached auth and registered the tenant.
                try await platform.start(["auth"])
                var headers = platform.tokenHeaders
                headers.add(name: "Content-Type", value: "application/json")
                let registered = try await platform.client.execute(HTTPClientRequest(
                    method: .put, url: platform.url("auth") + "/internal/v1/tenants/\(project.uuidString.lowercased())",
                    headers: headers,
                    body: Array(try JSONEncoder().encode(TenantRegistration(slug: slug, schema: "tenant_" + slug, role: "tenant_" + slug)))
                ))
                #expect(registered.status == 201)
                await platform.stop("auth")

                // Resumed with a short budget while auth is down: every attempt of this run is
                // refused, yet the step is undone (tried, and retried) rather than skipped.
                try await platform.start(["provisioning"], overrides: ["PROVISIONING_STEP_MAX_ATTEMPTS": "2"])
                #expect(try await eventually(timeout: .seconds(60)) {
                    try await step("register_auth", where: "s.status = 'compensating' AND s.last_error LIKE '%connect%'")
                }, "the undo of register_auth should wait for auth")
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.projects WHERE id = \(project) AND status = 'failed'") == 0)

                // Auth back: the registration is removed, and only then does the project end failed.
                try await platform.start(["auth"])
                let failed = try await platform.waitForProject(project, in: [.failed, .ready])
                #expect(failed.status == .failed)
                #expect(try await footprint(pool, platform, project: project, slug: slug) == Self.absent)
            }
        }
    }

    @Test("SIGKILL of the orchestrator mid-run: the restarted one resumes and the project ends ready")
    func crashAndResume() async throws {
        try await withTestPlatform(.processes, provisioning: ["PROVISIONING_STEP_MAX_ATTEMPTS": "100", "PROVISIONING_RETRY_MAX_MS": "200"]) { platform, url in
            await platform.stop("storage")  // the saga will sit retrying register_storage
            let slug = TestDatabase.uniqueName("crash")
            let project = try accepted(try await platform.createProject(name: "Crash", slug: slug)).projectId
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await eventually(timeout: .seconds(30)) {
                    try await pool.scalar("""
                        SELECT count(*)::int8 FROM provisioning.provisioning_steps s JOIN provisioning.workflow_executions e ON e.id = s.execution_id
                        WHERE e.project_id = \(project) AND s.step = 'register_storage' AND s.attempts >= 2
                        """) == 1
                })
            }
            try await platform.kill("provisioning")
            try await platform.start(["storage", "provisioning"])
            let ready = try await platform.waitForProject(project, in: [.ready, .failed])
            #expect(ready.status == .ready && ready.isActive)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await footprint(pool, platform, project: project, slug: slug) == Self.present)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.workflow_executions WHERE project_id = \(project)") == 1)
            }
        }
    }

    @Test("two orchestrator processes share the work and never run one execution twice at once")
    func twoOrchestrators() async throws {
        // One worker per instance, and storage down at first: the first execution an instance
        // claims sits retrying register_storage and holds that instance's only worker, so while
        // one execution is held the next can only be claimed by the other instance. Retries are
        // many and slow, so neither gives its execution up while the other comes to claim one.
        let oneWorker = ["PROVISIONING_WORKERS": "1", "PROVISIONING_STEP_MAX_ATTEMPTS": "100",
                         "PROVISIONING_RETRY_BASE_MS": "1000", "PROVISIONING_RETRY_MAX_MS": "1000"]
        try await withTestPlatform(.processes, provisioning: oneWorker) { platform, url in
            await platform.stop("storage")
            // A second provisioning process on the same database, started before any work exists:
            // its own port, same settings.
            let first = try #require(platform.processes["provisioning"])
            let port = try freePort()
            let second = try ServiceProcess("provisioning", port: port, environment: platform.environment(for: "provisioning", port: port))
            do {
                try await second.waitUntil()
                let projects = try await withThrowingTaskGroup(of: UUID.self) { group in
                    for index in 0..<12 {
                        group.addTask {
                            try accepted(try await platform.createProject(name: "Shared \(index)", slug: TestDatabase.uniqueName("two"))).projectId
                        }
                    }
                    return try await group.reduce(into: [UUID]()) { $0.append($1) }
                }
                try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                    // Two executions stuck at register_storage at once: one per instance.
                    #expect(try await eventually(timeout: .seconds(60)) {
                        try await pool.scalar("""
                            SELECT count(*)::int8 FROM provisioning.provisioning_steps WHERE step = 'register_storage' AND last_error IS NOT NULL
                            """) >= 2
                    })
                }
                try await platform.start(["storage"])
                for project in projects {
                    #expect(try await platform.waitForProject(project, in: [.ready, .failed]).status == .ready)
                }
            } catch {
                _ = await second.stop()
                throw error
            }
            #expect(await second.stop() == 0)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                // Both instances claimed executions: `claimed_by` is the lease owner, host/pid/random.
                let claimers = try await pool.query("SELECT claimed_by FROM provisioning.workflow_executions")
                    .map { try $0.decode("claimed_by", as: String.self) }
                let pids = claimers.map { $0.split(separator: "/").dropLast().last.map(String.init) ?? $0 }
                #expect(claimers.count == 12)
                #expect(Set(pids) == [String(first.pid), String(second.pid)], "\(claimers)")
                print("two orchestrators: the second instance last claimed \(pids.filter { $0 == String(second.pid) }.count) of 12 executions")
                // Every step ran exactly once (register_storage may have been retried while
                // storage was down, by the instance holding the lease): no execution was run by both.
                #expect(try await pool.scalar("""
                    SELECT count(*)::int8 FROM provisioning.provisioning_steps WHERE attempts <> 1 AND step <> 'register_storage'
                    """) == 0)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.provisioning_steps") == 12 * 7)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM auth.api_keys") == 24)
            }
        }
    }

    @Test("deprovisioning removes everything: deprovisioning → deleted")
    func deprovision() async throws {
        try await withTestPlatform { platform, url in
            let slug = TestDatabase.uniqueName("gone")
            let project = try accepted(try await platform.createProject(name: "Gone", slug: slug)).projectId
            #expect(try await platform.waitForProject(project, in: [.ready, .failed]).status == .ready)
            let deleted = try await platform.client.execute(HTTPClientRequest(
                method: .delete, url: platform.url("provisioning") + "/v1/projects/\(project.uuidString.lowercased())", headers: platform.tokenHeaders
            ))
            #expect(deleted.status == 202)
            let gone = try await platform.waitForProject(project, in: [.deleted])
            #expect(!gone.isActive)
            #expect(gone.workflow?.kind == "deprovision" && gone.workflow?.status == "succeeded")
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await footprint(pool, platform, project: project, slug: slug) == Self.absent)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.api_key_sets WHERE project_id = \(project)") == 0)
            }
        }
    }

    @Test("steps are idempotent: re-running every step of a ready project changes nothing and mints no second key set")
    func rerunIsIdempotent() async throws {
        try await withTestPlatform { platform, url in
            let slug = TestDatabase.uniqueName("rerun")
            let project = try accepted(try await platform.createProject(name: "Rerun", slug: slug)).projectId
            let first = try await platform.waitForProject(project, in: [.ready, .failed])
            #expect(first.status == .ready)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                let keysBefore = try await pool.query("SELECT id, sha256 FROM auth.api_keys WHERE tenant_id = \(project) ORDER BY id")
                    .map { try $0.decode("sha256", as: String.self) }
                // Put the execution back as if every step had been interrupted mid-way.
                try await pool.withTransaction { tx in
                    try await tx.query("""
                        UPDATE provisioning.workflow_executions SET status = 'running', lease_owner = NULL, lease_expires_at = NULL, finished_at = NULL
                        WHERE project_id = \(project)
                        """)
                    try await tx.query("""
                        UPDATE provisioning.provisioning_steps SET status = 'running' WHERE execution_id IN
                            (SELECT id FROM provisioning.workflow_executions WHERE project_id = \(project))
                        """)
                    try await tx.query("SELECT pg_notify('provisioning_work', '')")
                }
                #expect(try await eventually(timeout: .seconds(30)) {
                    try await pool.scalar("SELECT count(*)::int8 FROM provisioning.workflow_executions WHERE project_id = \(project) AND status = 'succeeded'") == 1
                })
                let steps = try await pool.query("""
                    SELECT attempts::int8 FROM provisioning.provisioning_steps s JOIN provisioning.workflow_executions e ON e.id = s.execution_id
                    WHERE e.project_id = \(project)
                    """).map { try $0.decode(at: 0, as: Int.self) }
                #expect(steps == Array(repeating: 2, count: 7))
                #expect(try await footprint(pool, platform, project: project, slug: slug) == Self.present)
                let keysAfter = try await pool.query("SELECT id, sha256 FROM auth.api_keys WHERE tenant_id = \(project) ORDER BY id")
                    .map { try $0.decode("sha256", as: String.self) }
                #expect(keysAfter == keysBefore)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM \(identifier: "tenant_" + slug)._migrations")
                    == (try TenantDatabase.bundledMigrations().count))
            }
        }
    }

    @Test("tenants made before transient memberships reach the latest tenant migration one at a time, resuming where a stop left off, and lose their standing membership")
    func tenantUpgrade() async throws {
        try await withTestPlatform { platform, url in
            let slugs = [TestDatabase.uniqueName("upg_a"), TestDatabase.uniqueName("upg_b")]
            var projects: [UUID] = []
            for slug in slugs {
                let project = try accepted(try await platform.createProject(name: "Upgrade", slug: slug)).projectId
                #expect(try await platform.waitForProject(project, in: [.ready, .failed]).status == .ready)
                projects.append(project)
            }
            // Provisioning's role, which was once the one role of the whole platform.
            try await withPool(url: platform.databaseURL(for: "provisioning")) { (pool: PostgresPool) async throws -> Void in
                let platformRole: String = try await pool.query("SELECT current_user AS name").single().decode("name")
                let memberships = { @Sendable () async throws -> Int in
                    try await pool.scalar("""
                        SELECT count(*)::int8 FROM pg_auth_members m
                        WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND \(unescaped: RoleMembership.usable("m"))
                        """)
                }
                let versions = { @Sendable (slug: String) async throws -> [Int] in
                    try await pool.query("SELECT version::int8 FROM \(identifier: "tenant_" + slug)._migrations ORDER BY version")
                        .map { try $0.decode(at: 0, as: Int.self) }
                }
                let tenantVersions = try TenantDatabase.bundledMigrations().map(\.version)
                // Put both tenants back as they were made before: tenant migration 1 only, no
                // grants, the platform role a standing member of the tenant's role (granted by
                // itself, as it did then; on PostgreSQL 16 beside its ADMIN-only membership).
                try await withPool(url: try TestDatabase.adminURL(for: url)) { admin in
                    for (slug, project) in zip(slugs, projects) {
                        let name = PostgresQuery.quoteIdentifier("tenant_" + slug)
                        let platformName = PostgresQuery.quoteIdentifier(platformRole)
                        let authName = PostgresQuery.quoteIdentifier(ServiceDatabaseRoles.role("auth"))
                        let realtimeName = PostgresQuery.quoteIdentifier(ServiceDatabaseRoles.role("realtime"))
                        try await admin.withConnection { try await $0.execute(simple: """
                            DELETE FROM \(name)._migrations WHERE version > 1;
                            DROP INDEX IF EXISTS \(name).users_created_at_id;
                            ALTER TABLE \(name).users DROP COLUMN IF EXISTS app_metadata;
                            DROP TABLE IF EXISTS \(name).realtime_outbox;
                            DROP FUNCTION IF EXISTS \(name).realtime_enable(regclass), \(name).realtime_disable(regclass),
                                \(name).realtime_tables(), \(name).realtime_reader(), \(name).realtime_capture(),
                                \(name).auth_uid(), \(name).auth_role(), \(name).auth_claims();
                            REVOKE ALL ON \(name).users, \(name).audit_log FROM \(platformName), \(authName);
                            REVOKE USAGE ON SCHEMA \(name) FROM \(platformName), \(authName), \(realtimeName);
                            GRANT \(name) TO \(platformName) GRANTED BY \(platformName);
                            UPDATE provisioning.projects SET tenant_schema_version = NULL WHERE id = '\(project.uuidString)';
                            """) }
                    }
                }
                #expect(try await memberships() == 2)
                // The old single role's access still works through its membership.
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM \(identifier: "tenant_" + slugs[0]).users") == 0)

                let upgrader = TenantUpgrader(
                    store: TenantUpgradeStore(pool: pool),
                    tenants: TenantDatabase(pool: pool, migrations: try TenantDatabase.bundledMigrations(),
                                            grantees: TenantGrantees(authRole: ServiceDatabaseRoles.role("auth"),
                                                                     realtimeRole: ServiceDatabaseRoles.role("realtime")),
                                            logger: TestDatabase.logger),
                    readiness: Readiness(), backoff: Backoff(base: .milliseconds(10), cap: .milliseconds(50)), logger: TestDatabase.logger
                )
                // Stopped after one tenant (as a kill would stop it): the oldest is done, the other untouched.
                #expect(await upgrader.upgradeAll(limit: 1) == TenantUpgrader.Report(upgraded: 1))
                #expect(try await versions(slugs[0]) == tenantVersions)
                #expect(try await versions(slugs[1]) == [1])
                #expect(try await memberships() == 1)
                let firstApplied: Date = try await pool.query("""
                    SELECT applied_at FROM \(identifier: "tenant_" + slugs[0])._migrations WHERE version = \(tenantVersions.last)
                    """).single().decode("applied_at")

                // The next start takes the rest, and only the rest.
                #expect(await upgrader.upgradeAll() == TenantUpgrader.Report(upgraded: 1))
                #expect(try await versions(slugs[1]) == tenantVersions)
                #expect(try await pool.query("""
                    SELECT applied_at FROM \(identifier: "tenant_" + slugs[0])._migrations WHERE version = \(tenantVersions.last)
                    """).single().decode("applied_at", as: Date.self) == firstApplied)
                #expect(try await memberships() == 0)
                #expect(try await pool.scalar("""
                    SELECT count(*)::int8 FROM provisioning.projects WHERE id = ANY(\(projects)) AND tenant_schema_version = \(tenantVersions.last)
                    """) == 2)
                #expect(await upgrader.upgradeAll() == TenantUpgrader.Report())

            }
            // And auth's tenant users work on the upgraded tenants, as auth's own role, a member of nothing.
            try await withPool(url: platform.databaseURL(for: "auth")) { (auth: PostgresPool) async throws -> Void in
                for slug in slugs {
                    try await auth.withTransaction { tx in
                        try await tx.query("INSERT INTO \(identifier: "tenant_" + slug).users (email, email_normalized) VALUES ('u@x.test', 'u@x.test')")
                        try await tx.query("INSERT INTO \(identifier: "tenant_" + slug).audit_log (actor, action) VALUES ('test', 'user.created')")
                    }
                    #expect(try await auth.scalar("SELECT count(*)::int8 FROM \(identifier: "tenant_" + slug).users") == 1)
                }
            }
        }
    }

    @Test("project, execution and step states and workflow kinds are exactly the values their CHECK constraints allow")
    func storedEnumsMatchConstraints() async throws {
        // The platform applies provisioning's migrations; the constraints are read back from the catalog.
        try await withTestPlatform { _, url in
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                let columns: [(table: String, column: String, cases: [String])] = [
                    ("provisioning.projects", "status", ProjectState.allCases.map(\.rawValue)),
                    ("provisioning.workflow_executions", "status", ExecutionState.allCases.map(\.rawValue)),
                    ("provisioning.workflow_executions", "kind", WorkflowKind.allCases.map(\.rawValue)),
                    ("provisioning.provisioning_steps", "status", StepState.allCases.map(\.rawValue)),
                ]
                for (table, column, cases) in columns {
                    // The quoted literals of the CHECK constraints on this column alone.
                    let allowed = try await pool.query("""
                        SELECT (regexp_matches(pg_get_constraintdef(c.oid), '''([^'']*)''', 'g'))[1] AS value
                        FROM pg_constraint c
                        WHERE c.contype = 'c' AND c.conrelid = \(table)::regclass
                          AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = c.conrelid AND attname = \(column))]
                        """).map { try $0.decode("value", as: String.self) }
                    #expect(!allowed.isEmpty, "no CHECK constraint on \(table).\(column)")
                    #expect(allowed.sorted() == cases.sorted(), "\(table).\(column)")
                }
            }
        }
    }

    @Test("a state the code does not know is refused when read, naming the column and the value")
    func unknownStoredState() async throws {
        try await withTestPool { pool in
            let row = try await pool.query("SELECT 'archived'::text AS status, 'compensated'::text AS step").single()
            #expect(try row.decode("step", as: StepState.self) == .compensated)
            let error = #expect(throws: PostgresError.self) { try row.decode("status", as: ProjectState.self) }
            #expect(error?.kind == .decoding && error?.column == "status")
            #expect(error?.message.contains("not a ProjectState ('archived'") == true, "\(String(describing: error))")
        }
    }

    @Test("errors: unknown project 404, invalid slug 422, taken slug 409, Idempotency-Key replays, 50 racing creations of 10 slugs make 10 projects")
    func errorsAndRaces() async throws {
        try await withTestPlatform { platform, url in
            let unknown = try await platform.project(UUID())
            #expect(unknown.status == 404 && unknown.errorEnvelope?.error.code == "not_found")
            let malformed = try await platform.client.execute(HTTPClientRequest(url: platform.url("provisioning") + "/v1/projects/not-a-uuid", headers: platform.tokenHeaders))
            #expect(malformed.status == 422)
            let anonymous = try await platform.client.execute(HTTPClientRequest(url: platform.url("provisioning") + "/v1/projects/\(UUID())"))
            #expect(anonymous.status == 401)

            for bad in ["Bad-Slug", "ab", "9lives", "tenant slug", String(repeating: "a", count: 41)] {
                let response = try await platform.createProject(name: "Bad", slug: bad)
                #expect(response.status == 422 && response.errorEnvelope?.error.field == "slug", "\(bad)")
            }

            let slug = TestDatabase.uniqueName("dup")
            let key = UUID().uuidString
            let owner = UUID()
            let first = try accepted(try await platform.createProject(owner: owner, name: "Dup", slug: slug, idempotencyKey: key))
            let replay = try await platform.createProject(owner: owner, name: "Dup", slug: slug, idempotencyKey: key)
            #expect(try accepted(replay) == first)
            #expect(replay.headers["Idempotent-Replayed"] == "true")
            let taken = try await platform.createProject(name: "Dup again", slug: slug)
            #expect(taken.status == 409 && taken.errorEnvelope?.error.code == "slug_taken")

            let slugs = (0..<10).map { _ in TestDatabase.uniqueName("race") }
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<50 {
                    group.addTask { try await platform.createProject(name: "Race", slug: slugs[index % 10]).status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 202 }.count == 10)
            #expect(statuses.filter { $0 == 409 }.count == 40)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.projects WHERE slug = ANY(\(slugs))") == 10)
            }
        }
    }
}
