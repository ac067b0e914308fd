import Contracts
import Foundation
import HTTPClient
import Postgres
import ServiceKit
import Synchronization
import TestSupport
import Testing

/// One tenant cannot starve the others on auth (issue 15, item 4): a per-tenant concurrency
/// budget on auth's shared pool (429 `tenant_busy` with `Retry-After` past it, not a pool
/// timeout for everyone), incremental and rate-limited audit verification, keyset pagination of
/// admin/users without a full count per page. Against the real services and PostgreSQL; no test
/// here claims a duration (benchmarks/tenant-fairness, `deploy/scripts/bench-fairness.sh`,
/// measures tenant B's sign-in latency while A floods).
@Suite("Tenant fairness", .serialized)
struct TenantFairnessTests {
    static let password = "a long tenant passphrase"

    func signIn(_ platform: TestPlatform, _ tenant: ProvisionedTenant, _ email: String) async throws -> HTTPClientResponse {
        try await platform.tenantCall(.post, "auth", "/v1/tenants/\(tenant.slug)/token?grant_type=password",
                                      apikey: tenant.keys.publishable, json: PasswordGrant(email: email, password: Self.password))
    }

    func createUser(_ platform: TestPlatform, _ tenant: ProvisionedTenant, _ email: String, password: String? = nil) async throws -> TenantUser {
        let created = try await platform.tenantCall(.post, "auth", "/v1/tenants/\(tenant.slug)/admin/users", apikey: tenant.keys.secret,
                                                    json: AdminUserCreate(email: email, password: password))
        try #require(created.status == 201, "user not created: \(created)")
        return try created.decode(TenantUser.self)
    }

    @Test("a tenant holding its whole concurrency budget is answered 429 tenant_busy with Retry-After at once, on every admin route; another tenant's sign-ins go on")
    func budgetRefusesAtOnce() async throws {
        try await withTestPlatform(provisioning: ["AUTH_TENANT_MAX_CONNECTIONS": "1"]) { platform, url in
            let a = try await platform.provisionTenant("fa")
            let b = try await platform.provisionTenant("fb")
            _ = try await createUser(platform, b, "bea@example.test", password: Self.password)
            let schemaA = "tenant_" + a.slug

            // An operator's lock on A's users holds A's one query in flight, with its permit.
            let locked = Gate(), release = Gate()
            try await withPool(url: TestDatabase.adminURL(for: url)) { (admin: PostgresPool) async throws -> Void in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await admin.withTransaction { tx in
                            try await tx.query("LOCK TABLE \(identifier: schemaA).users IN ACCESS EXCLUSIVE MODE")
                            locked.open()
                            await release.wait()
                        }
                    }
                    group.addTask {
                        await locked.wait()
                        _ = try? await platform.tenantCall(.get, "auth", "/v1/tenants/\(a.slug)/admin/users", apikey: a.keys.secret)
                    }
                    do {
                        await locked.wait()
                        try await waitUntil("A's list waits for the lock") {
                            try await admin.scalar("""
                                SELECT count(*)::int8 FROM pg_stat_activity
                                WHERE wait_event_type = 'Lock' AND query LIKE \("%" + schemaA + "%users%")
                                """) >= 1
                        }
                        // A's budget (1) is taken: each of A's routes that queries is refused at once.
                        for path in ["/admin/users", "/admin/users?cursor=", "/admin/audit", "/admin/audit/verify"] {
                            let refused = try await platform.tenantCall(.get, "auth", "/v1/tenants/\(a.slug)" + path, apikey: a.keys.secret)
                            #expect(refused.status == 429, "\(path): \(refused)")
                            #expect(refused.errorEnvelope?.error.code == "tenant_busy", "\(path)")
                            #expect(refused.headers["Retry-After"] == "1", "\(path)")
                        }
                        // GoTrue's admin list says it in GoTrue's words.
                        var headers = HTTPClientHeaders([("apikey", a.keys.secret), ("Authorization", "Bearer " + a.keys.secret)])
                        headers.add(name: "X-Supabase-Api-Version", value: "2024-01-01")
                        let goTrue = try await platform.client.execute(HTTPClientRequest(method: .get, url: platform.url("auth") + "/auth/v1/admin/users", headers: headers))
                        #expect(goTrue.status == 429 && goTrue.headers["Retry-After"] == "1", "\(goTrue)")
                        #expect(goTrue.headers["x-sb-error-code"] == "over_request_rate_limit")
                        // B is another tenant: its sign-ins use its own budget.
                        for _ in 0..<3 {
                            let signedIn = try await signIn(platform, b, "bea@example.test")
                            #expect(signedIn.status == 200, "\(signedIn)")
                        }
                    } catch {
                        release.open()
                        throw error
                    }
                    release.open()
                    try await group.waitForAll()
                }
            }
            // The permit came back with the answer: A is served again.
            #expect(try await platform.tenantCall(.get, "auth", "/v1/tenants/\(a.slug)/admin/users", apikey: a.keys.secret).status == 200)
        }
    }

    @Test("tenant A floods audit/verify and admin/users: A is answered 429 with Retry-After, never a 5xx; tenant B's sign-ins all succeed meanwhile")
    func floodDoesNotStarveOthers() async throws {
        let environment = [
            "DB_POOL_MAX": "4", "DB_ACQUIRE_TIMEOUT_MS": "2000",
            "AUTH_TENANT_MAX_CONNECTIONS": "1", "AUTH_AUDIT_VERIFY_PER_MINUTE": "5",
            "TOKEN_RATE_LIMIT_PER_IP": "100000", "TOKEN_RATE_LIMIT_PER_ACCOUNT": "100000",
        ]
        try await withTestPlatform(provisioning: environment) { platform, url in
            let a = try await platform.provisionTenant("fa")
            let b = try await platform.provisionTenant("fb")
            _ = try await createUser(platform, b, "bea@example.test", password: Self.password)
            // A is big: 30,000 users, 20,000 audit entries (written as an operator would import them).
            try await withPool(url: TestDatabase.adminURL(for: url)) { (admin: PostgresPool) async throws -> Void in
                let schema = "tenant_" + a.slug
                try await admin.query("""
                    INSERT INTO \(identifier: schema).users (email, email_normalized)
                    SELECT 'u' || n || '@example.test', 'u' || n || '@example.test' FROM generate_series(1, 30000) AS n
                    """)
                try await admin.query("""
                    INSERT INTO \(identifier: schema).audit_log (actor, action, target)
                    SELECT 'platform', 'imported', n::text FROM generate_series(1, 20000) AS n
                    """)
            }

            let tally = FloodTally()
            let bResults: [Int] = try await withThrowingTaskGroup(of: [Int].self) { group in
                for worker in 0..<16 {
                    group.addTask {
                        var n = 0
                        while tally.flooding {
                            n += 1
                            let path = (worker + n) % 2 == 0
                                ? "/admin/audit/verify"
                                : "/admin/users?per_page=50&page=\((worker * 37 + n * 11) % 600 + 1)"
                            tally.record(try await platform.tenantCall(.get, "auth", "/v1/tenants/\(a.slug)" + path, apikey: a.keys.secret))
                        }
                        return []
                    }
                }
                group.addTask {
                    // B starts once A's flood is under way, then signs in 12 times while it goes on.
                    try await waitUntil("A's flood is under way") { tally.answers >= 16 }
                    var statuses: [Int] = []
                    for _ in 0..<12 { statuses.append(try await signIn(platform, b, "bea@example.test").status) }
                    tally.stop()
                    return statuses
                }
                var all: [Int] = []
                do {
                    for try await statuses in group { all += statuses }
                } catch {
                    tally.stop()
                    throw error
                }
                return all
            }
            let seen = tally.snapshot
            #expect(bResults.count == 12 && bResults.allSatisfy { $0 == 200 }, "B's sign-ins: \(bResults)")
            #expect(seen.statuses[429, default: 0] > 0, "A's answers: \(seen.statuses)")
            #expect(seen.refusedWithoutRetryAfter == 0)
            #expect(Set(seen.statuses.keys).isSubset(of: [200, 429]), "A's answers: \(seen.statuses)")
        }
    }

    @Test("audit/verify goes on from auth's checkpoint: a repeated call reads only the new entries (the row at the checkpoint once more); full=true reads all; rate-limited per tenant")
    func incrementalVerification() async throws {
        try await withTestPlatform(provisioning: ["AUTH_AUDIT_VERIFY_PER_MINUTE": "8"]) { platform, _ in
            let a = try await platform.provisionTenant("va")
            let b = try await platform.provisionTenant("vb")
            let verify = "/v1/tenants/\(a.slug)/admin/audit/verify"
            for n in 0..<3 { _ = try await createUser(platform, a, "u\(n)@example.test") }

            // tenant.created + 3 creations; nothing verified before: all four read.
            let first = try await platform.tenantCall(.get, "auth", verify, apikey: a.keys.secret)
            #expect(try first.decode(AuditVerification.self) == AuditVerification(valid: true, entries: 4, firstBrokenId: nil, checked: 4))
            #expect(first.headers["X-RateLimit-Limit"] == "8")
            // Nothing new: only the checkpoint's own row.
            #expect(try await platform.tenantCall(.get, "auth", verify, apikey: a.keys.secret).decode(AuditVerification.self)
                    == AuditVerification(valid: true, entries: 4, firstBrokenId: nil, checked: 1))
            for n in 3..<5 { _ = try await createUser(platform, a, "u\(n)@example.test") }
            #expect(try await platform.tenantCall(.get, "auth", verify, apikey: a.keys.secret).decode(AuditVerification.self)
                    == AuditVerification(valid: true, entries: 6, firstBrokenId: nil, checked: 3))
            // full=true reads every entry again (and counts as 5 verifications: 3 + 5 = 8).
            #expect(try await platform.tenantCall(.get, "auth", verify + "?full=true", apikey: a.keys.secret).decode(AuditVerification.self)
                    == AuditVerification(valid: true, entries: 6, firstBrokenId: nil, checked: 6))
            let bad = try await platform.tenantCall(.get, "auth", verify + "?full=yes", apikey: a.keys.secret)
            #expect(bad.status == 422 && bad.errorEnvelope?.error.field == "full")

            // A's budget of verifications is spent; B's is its own.
            let limited = try await platform.tenantCall(.get, "auth", verify, apikey: a.keys.secret)
            #expect(limited.status == 429 && limited.errorEnvelope?.error.code == "rate_limited", "\(limited)")
            #expect(limited.headers["Retry-After"] != nil)
            #expect(try await platform.tenantCall(.get, "auth", "/v1/tenants/\(b.slug)/admin/audit/verify", apikey: b.keys.secret).status == 200)
        }
    }

    @Test("admin/users: pages by keyset (cursor) without a count, each user once in order; by page number, a total exact up to 10,000 users and estimated past that; GoTrue's cursor mode too")
    func keysetPagination() async throws {
        try await withTestPlatform { platform, url in
            let a = try await platform.provisionTenant("pa")
            let base = "/v1/tenants/\(a.slug)/admin/users"
            var created: [UUID] = []
            for n in 0..<7 { created.append(try await createUser(platform, a, "p\(n)@example.test").id) }

            // Keyset: every user once, oldest first, three at a time; no total.
            var seen: [UUID] = []
            var cursor = ""
            var pages = 0
            while true {
                let page = try await platform.tenantCall(.get, "auth", base + "?per_page=3&cursor=" + cursor, apikey: a.keys.secret).decode(TenantUserPage.self)
                #expect(page.total == nil && page.page == nil)
                seen += page.users.map(\.id)
                pages += 1
                guard let next = page.nextCursor, pages < 10 else { break }
                cursor = next
            }
            #expect(seen == created && pages == 3)
            // By page: exact total below the cap, and a cursor to go on from there.
            let first = try await platform.tenantCall(.get, "auth", base + "?per_page=3", apikey: a.keys.secret).decode(TenantUserPage.self)
            #expect(first.total == 7 && first.totalEstimated == false && first.page == 1)
            let second = try await platform.tenantCall(.get, "auth", base + "?per_page=3&cursor=" + (first.nextCursor ?? ""), apikey: a.keys.secret)
                .decode(TenantUserPage.self)
            #expect(second.users.map(\.id) == Array(created[3..<6]))
            // Bad input: 422 naming the field.
            for query in ["?cursor=bm9wZQ", "?cursor=!!!", "?page=2&cursor="] {
                let refused = try await platform.tenantCall(.get, "auth", base + query, apikey: a.keys.secret)
                #expect(refused.status == 422 && refused.errorEnvelope?.error.field == "cursor", "\(query): \(refused)")
            }
            let forged = Base64URL.encode(Array(#"{"created_at":"2024-02-30T00:00:00Z","id":"00000000-0000-0000-0000-000000000001"}"#.utf8))
            #expect(try await platform.tenantCall(.get, "auth", base + "?cursor=" + forged, apikey: a.keys.secret).status == 422)

            // GoTrue's cursor mode: newest first, `pagination` in the body, Link rel=next; no X-Total-Count.
            let headers = HTTPClientHeaders([("apikey", a.keys.secret)])
            var goTrueSeen: [String] = []
            var next: String? = ""
            var goTruePages = 0
            while let token = next, goTruePages < 10 {
                goTruePages += 1
                let response = try await platform.client.execute(HTTPClientRequest(
                    method: .get, url: platform.url("auth") + "/auth/v1/admin/users?limit=4" + (token.isEmpty ? "" : "&cursor=" + token), headers: headers))
                #expect(response.status == 200 && response.headers["X-Total-Count"] == nil)
                let body = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
                let users = try #require(body["users"] as? [[String: Any]])
                goTrueSeen += users.compactMap { $0["id"] as? String }
                let pagination = try #require(body["pagination"] as? [String: Any])
                next = pagination["next_cursor"] as? String
                #expect((pagination["has_more"] as? Bool) == (next != nil))
                #expect((response.headers["Link"] != nil) == (next != nil))
            }
            #expect(goTrueSeen == created.reversed().map { $0.uuidString.lowercased() })
            let badCursor = try await platform.client.execute(HTTPClientRequest(method: .get, url: platform.url("auth") + "/auth/v1/admin/users?cursor=x", headers: headers))
            #expect(badCursor.status == 400)
            // GoTrue's page mode as before: exact X-Total-Count below the cap.
            let paged = try await platform.client.execute(HTTPClientRequest(method: .get, url: platform.url("auth") + "/auth/v1/admin/users?page=1&per_page=5", headers: headers))
            #expect(paged.headers["X-Total-Count"] == "7")

            // Past 10,000 users the total is the planner's estimate, not a count of the table.
            try await withPool(url: TestDatabase.adminURL(for: url)) { (admin: PostgresPool) async throws -> Void in
                let schema = "tenant_" + a.slug
                try await admin.query("""
                    INSERT INTO \(identifier: schema).users (email, email_normalized)
                    SELECT 'b' || n || '@example.test', 'b' || n || '@example.test' FROM generate_series(1, 12000) AS n
                    """)
                try await admin.query("ANALYZE \(identifier: schema).users")
            }
            let big = try await platform.tenantCall(.get, "auth", base + "?per_page=1", apikey: a.keys.secret).decode(TenantUserPage.self)
            #expect(big.totalEstimated == true)
            #expect((big.total ?? 0) > TenantUserPage.exactTotalLimit)
        }
    }
}

/// What tenant A's flood was answered, shared by its workers.
private final class FloodTally: Sendable {
    struct Snapshot: Sendable {
        var statuses: [Int: Int] = [:]
        var refusedWithoutRetryAfter = 0
        var flooding = true
    }

    private let state = Mutex(Snapshot())

    var snapshot: Snapshot { state.withLock { $0 } }
    var flooding: Bool { state.withLock { $0.flooding } }
    var answers: Int { state.withLock { $0.statuses.values.reduce(0, +) } }

    func record(_ response: HTTPClientResponse) {
        state.withLock { state in
            state.statuses[response.status, default: 0] += 1
            if response.status == 429, response.headers["Retry-After"] == nil { state.refusedWithoutRetryAfter += 1 }
        }
    }

    func stop() { state.withLock { $0.flooding = false } }
}
