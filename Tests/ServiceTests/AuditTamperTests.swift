import Contracts
import Foundation
import HTTPClient
import Postgres
import TestSupport
import Testing

/// Tamper evidence the tenant cannot undo (issue 15, item 8). The tenant's role owns its
/// `audit_log`: it can lift the append-only trigger, rewrite an entry and recompute every hash
/// after it, so the chain alone verifies again (the tenant's own `audit_log_verify()` says so).
/// Auth's witness of the chain, kept in auth's schema, finds it: the exact attack, run as the
/// tenant's role, against the real services.
@Suite("Audit tamper evidence", .serialized)
struct AuditTamperTests {
    func createUser(_ platform: TestPlatform, _ tenant: ProvisionedTenant, _ email: String) async throws {
        let created = try await platform.tenantCall(.post, "auth", "/v1/tenants/\(tenant.slug)/admin/users", apikey: tenant.keys.secret,
                                                    json: AdminUserCreate(email: email))
        try #require(created.status == 201, "user not created: \(created)")
    }

    func verify(_ platform: TestPlatform, _ tenant: ProvisionedTenant, full: Bool = false) async throws -> AuditVerification {
        let response = try await platform.tenantCall(.get, "auth", "/v1/tenants/\(tenant.slug)/admin/audit/verify" + (full ? "?full=true" : ""),
                                                     apikey: tenant.keys.secret)
        try #require(response.status == 200, "\(response)")
        return try response.decode(AuditVerification.self)
    }

    /// As the tenant's role: lift the triggers, change the entry at `seq`, recompute the chain
    /// from there with the tenant's own hash function, put the triggers back.
    func rewriteAndRecompute(_ admin: PostgresPool, _ tenant: ProvisionedTenant, seq: Int) async throws {
        let role = PostgresQuery.quoteIdentifier("tenant_" + tenant.slug)
        try await admin.withTransaction { tx in
            try await tx.execute(simple: """
                SET LOCAL ROLE \(role);
                SET LOCAL search_path = \(role);
                ALTER TABLE audit_log DISABLE TRIGGER USER;
                UPDATE audit_log SET actor = 'nobody' WHERE seq = \(seq);
                DO $$
                DECLARE
                    r record;
                    prev text;
                BEGIN
                    SELECT hash INTO prev FROM audit_log WHERE seq = \(seq - 1);
                    FOR r IN SELECT * FROM audit_log WHERE seq >= \(seq) ORDER BY seq LOOP
                        UPDATE audit_log SET prev_hash = prev,
                               hash = audit_log_hash(prev, r.seq, r.occurred_at, r.actor, r.action, r.target, r.details)
                        WHERE id = r.id RETURNING hash INTO prev;
                    END LOOP;
                END
                $$;
                ALTER TABLE audit_log ENABLE TRIGGER USER;
                """)
        }
    }

    /// The tenant's own verdict on its chain: NULL (holds) or the first broken row's id.
    func tenantsOwnVerdict(_ admin: PostgresPool, _ tenant: ProvisionedTenant) async throws -> Int? {
        try await admin.query("SELECT \(identifier: "tenant_" + tenant.slug).audit_log_verify() AS broken").single().decode("broken")
    }

    func rowID(_ admin: PostgresPool, _ tenant: ProvisionedTenant, seq: Int) async throws -> Int {
        try await admin.scalar("SELECT id FROM \(identifier: "tenant_" + tenant.slug).audit_log WHERE seq = \(seq)")
    }

    @Test("the tenant's role rewrites an entry and recomputes the chain: the chain alone holds, auth's verification finds it (incremental and full)")
    func rewrittenChainIsFound() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("tm")
            for n in 0..<3 { try await createUser(platform, tenant, "t\(n)@example.test") }  // entries 2, 3, 4
            try await withPool(url: TestDatabase.adminURL(for: url)) { (admin: PostgresPool) async throws -> Void in
                try await rewriteAndRecompute(admin, tenant, seq: 2)
                // The attack works on the chain itself: it holds again.
                #expect(try await tenantsOwnVerdict(admin, tenant) == nil)
                let head = try await rowID(admin, tenant, seq: 4)
                let found = try await verify(platform, tenant)
                #expect(found == AuditVerification(valid: false, entries: 4, firstBrokenId: head, checked: 4, reason: "checkpoint_mismatch"))
                #expect(try await verify(platform, tenant, full: true).valid == false)

                // Dropping the log does not help either.
                try await admin.withTransaction { tx in
                    try await tx.execute(simple: "SET LOCAL ROLE \(PostgresQuery.quoteIdentifier("tenant_" + tenant.slug)); DROP TABLE \(PostgresQuery.quoteIdentifier("tenant_" + tenant.slug)).audit_log CASCADE")
                }
                let dropped = try await verify(platform, tenant)
                #expect(dropped.valid == false && dropped.reason == "unreadable")
            }
        }
    }

    @Test("after a verification, a rewrite behind its checkpoint is found at the checkpoint's entry")
    func rewriteBehindCheckpointIsFound() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("tc")
            for n in 0..<3 { try await createUser(platform, tenant, "t\(n)@example.test") }
            #expect(try await verify(platform, tenant) == AuditVerification(valid: true, entries: 4, firstBrokenId: nil, checked: 4))
            try await withPool(url: TestDatabase.adminURL(for: url)) { (admin: PostgresPool) async throws -> Void in
                try await rewriteAndRecompute(admin, tenant, seq: 3)
                #expect(try await tenantsOwnVerdict(admin, tenant) == nil)
                let checkpoint = try await rowID(admin, tenant, seq: 4)
                #expect(try await verify(platform, tenant)
                        == AuditVerification(valid: false, entries: 4, firstBrokenId: checkpoint, checked: 1, reason: "checkpoint_mismatch"))
            }
        }
    }

    @Test("a rewrite followed by auth's next append (before any verification) is not carried forward: the append records the break")
    func appendAfterRewriteRecordsTheBreak() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("td")
            for n in 0..<3 { try await createUser(platform, tenant, "t\(n)@example.test") }
            try await withPool(url: TestDatabase.adminURL(for: url)) { (admin: PostgresPool) async throws -> Void in
                try await rewriteAndRecompute(admin, tenant, seq: 2)
                // Auth appends after the rewritten chain (entry 5), then another (6).
                try await createUser(platform, tenant, "after@example.test")
                try await createUser(platform, tenant, "later@example.test")
                #expect(try await tenantsOwnVerdict(admin, tenant) == nil)
                let firstAfter = try await rowID(admin, tenant, seq: 5)
                let found = try await verify(platform, tenant)
                #expect(found.valid == false && found.reason == "diverged" && found.firstBrokenId == firstAfter, "\(found)")
                #expect(try await verify(platform, tenant, full: true).reason == "diverged")
            }
        }
    }
}
