import Contracts
import Foundation
import HTTPClient
import Postgres
import ServiceClients
import ServiceKit
import TestSupport
import Testing

/// Tenants' end users on the real executables: signup, sign-in, self-service updates, admin
/// user management with the secret key, and the tenant's hash-chained audit log.
@Suite("Tenant end users", .serialized)
struct TenantUserTests {
    static let password = "a long tenant passphrase"

    func signup(_ platform: TestPlatform, _ tenant: ProvisionedTenant, _ email: String,
                password: String = TenantUserTests.password, metadata: JSONValue? = nil) async throws -> HTTPClientResponse {
        try await platform.tenantCall(.post, "auth", "/v1/tenants/\(tenant.slug)/signup", apikey: tenant.keys.publishable,
                                      json: TenantSignup(email: email, password: password, metadata: metadata))
    }

    func login(_ platform: TestPlatform, _ tenant: ProvisionedTenant, _ email: String,
               password: String = TenantUserTests.password) async throws -> HTTPClientResponse {
        try await platform.tenantCall(.post, "auth", "/v1/tenants/\(tenant.slug)/token?grant_type=password",
                                      apikey: tenant.keys.publishable, json: PasswordGrant(email: email, password: password))
    }

    @Test("signup, sign-in, refresh, self-service update and logout; users live in the tenant's schema")
    func userLifecycle() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("usr")
            let base = "/v1/tenants/\(tenant.slug)"
            let email = "Ada@Example.test"

            let signedUp = try await signup(platform, tenant, email, metadata: .object(["plan": .string("free")]))
            #expect(signedUp.status == 201)
            let tokens = try signedUp.decode(TenantTokenResponse.self)
            #expect(tokens.user.email == email && tokens.user.role == "authenticated")
            #expect(tokens.user.metadata == .object(["plan": .string("free")]))

            // Bad input: a clear 4xx naming the problem, and nothing created.
            #expect(try await signup(platform, tenant, "ada@example.test").errorEnvelope?.error.code == "email_taken")
            let weak = try await signup(platform, tenant, "weak@example.test", password: "short")
            #expect(weak.status == 422 && weak.errorEnvelope?.error.field == "password")
            let badEmail = try await signup(platform, tenant, "not-an-email")
            #expect(badEmail.status == 422 && badEmail.errorEnvelope?.error.field == "email")
            let noKey = try await platform.tenantCall(.post, "auth", base + "/signup", json: TenantSignup(email: "x@example.test", password: Self.password))
            #expect(noKey.status == 401 && noKey.errorEnvelope?.error.code == "api_key_required")

            let me = try await platform.tenantCall(.get, "auth", base + "/user", apikey: tenant.keys.publishable, bearer: tokens.accessToken)
            #expect(me.status == 200)
            #expect(try me.decode(TenantUser.self).id == tokens.user.id)
            let noToken = try await platform.tenantCall(.get, "auth", base + "/user", apikey: tenant.keys.publishable)
            #expect(noToken.status == 401 && noToken.errorEnvelope?.error.code == "user_token_required")

            // A password change ends the user's other sessions, not this one.
            let other = try await login(platform, tenant, email).decode(TenantTokenResponse.self)
            let newPassword = "another tenant passphrase"
            let updated = try await platform.tenantCall(.put, "auth", base + "/user", apikey: tenant.keys.publishable, bearer: tokens.accessToken,
                                                        json: TenantUserUpdate(password: newPassword, metadata: .object(["plan": .string("pro")])))
            #expect(updated.status == 200)
            #expect(try updated.decode(TenantUser.self).metadata == .object(["plan": .string("pro")]))
            #expect(try await platform.tenantCall(.get, "auth", base + "/user", apikey: tenant.keys.publishable, bearer: other.accessToken).status == 401)
            #expect(try await platform.tenantCall(.get, "auth", base + "/user", apikey: tenant.keys.publishable, bearer: tokens.accessToken).status == 200)
            let old = try await login(platform, tenant, email)
            #expect(old.status == 400 && old.errorEnvelope?.error.code == "invalid_grant")
            let fresh = try await login(platform, tenant, email, password: newPassword)
            #expect(fresh.status == 200)
            let session = try fresh.decode(TenantTokenResponse.self)
            #expect(session.user.lastSignInAt != nil)

            // Refresh rotates; the developer token endpoint knows nothing of tenant refresh tokens.
            let developerRefresh = try await platform.tenantCall(.post, "auth", "/v1/token?grant_type=refresh_token", json: RefreshGrant(refreshToken: session.refreshToken))
            #expect(developerRefresh.status == 400)
            let refreshed = try await platform.tenantCall(.post, "auth", base + "/token?grant_type=refresh_token", apikey: tenant.keys.publishable,
                                                          json: RefreshGrant(refreshToken: session.refreshToken))
            #expect(refreshed.status == 200)
            let rotated = try refreshed.decode(TenantTokenResponse.self)
            #expect(rotated.refreshToken != session.refreshToken)

            let logout = try await platform.tenantCall(.post, "auth", base + "/logout", apikey: tenant.keys.publishable, bearer: rotated.accessToken)
            #expect(logout.status == 204)
            #expect(try await platform.tenantCall(.get, "auth", base + "/user", apikey: tenant.keys.publishable, bearer: rotated.accessToken).status == 401)

            // The row is the tenant's: in its schema, in a table its role owns.
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                let rows: Int = try await pool.scalar("SELECT count(*)::int8 FROM \(identifier: "tenant_" + tenant.slug).users WHERE email_normalized = 'ada@example.test'")
                #expect(rows == 1)
                let owner: String = try await pool.query("SELECT tableowner::text AS owner FROM pg_tables WHERE schemaname = \("tenant_" + tenant.slug) AND tablename = 'users'")
                    .single().decode("owner")
                #expect(owner == "tenant_" + tenant.slug)
            }
        }
    }

    @Test("admin user management needs the secret key; every change is audited and the chain verifies; tampering is found")
    func adminAndAudit() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("adm")
            let base = "/v1/tenants/\(tenant.slug)/admin"
            let secret = tenant.keys.secret

            let withPublishable = try await platform.tenantCall(.get, "auth", base + "/users", apikey: tenant.keys.publishable)
            #expect(withPublishable.status == 403 && withPublishable.errorEnvelope?.error.code == "secret_key_required")

            let created = try await platform.tenantCall(.post, "auth", base + "/users", apikey: secret,
                                                        json: AdminUserCreate(email: "grace@example.test", password: Self.password, role: "editor"))
            #expect(created.status == 201)
            let user = try created.decode(TenantUser.self)
            #expect(user.role == "editor")
            let badRole = try await platform.tenantCall(.post, "auth", base + "/users", apikey: secret, json: AdminUserCreate(email: "x@example.test", role: "Bad Role"))
            #expect(badRole.status == 422 && badRole.errorEnvelope?.error.field == "role")
            // NUL in metadata (jsonb cannot hold it) or in an email is a 422 on the field, not a 500 (found by schemathesis).
            let nulMetadata = try await platform.tenantCall(.post, "auth", base + "/users", apikey: secret,
                                                            json: AdminUserCreate(email: "nul@example.test", metadata: .object(["note": .string("a\u{0}b")])))
            #expect(nulMetadata.status == 422 && nulMetadata.errorEnvelope?.error.field == "metadata.note")
            let nulEmail = try await platform.tenantCall(.post, "auth", base + "/users", apikey: secret, json: AdminUserCreate(email: "grace@example.test\u{0}x"))
            #expect(nulEmail.status == 422 && nulEmail.errorEnvelope?.error.field == "email")

            let list = try await platform.tenantCall(.get, "auth", base + "/users?per_page=10", apikey: secret).decode(TenantUserPage.self)
            #expect(list.total == 1 && list.users.map(\.id) == [user.id])
            #expect(try await platform.tenantCall(.get, "auth", base + "/users/" + user.id.uuidString, apikey: secret).decode(TenantUser.self).email == "grace@example.test")
            #expect(try await platform.tenantCall(.get, "auth", base + "/users?page=0", apikey: secret).status == 422)

            // A ban ends the user's sessions and refuses sign-in; lifting it lets them back.
            let session = try await login(platform, tenant, "grace@example.test").decode(TenantTokenResponse.self)
            let banned = try await platform.tenantCall(.put, "auth", base + "/users/" + user.id.uuidString, apikey: secret, json: AdminUserUpdate(banSeconds: 3600))
            #expect(banned.status == 200)
            let bannedUser = try banned.decode(TenantUser.self)
            #expect(bannedUser.bannedUntil != nil)
            #expect(try await platform.tenantCall(.get, "auth", "/v1/tenants/\(tenant.slug)/user", apikey: tenant.keys.publishable, bearer: session.accessToken).status == 401)
            let refused = try await login(platform, tenant, "grace@example.test")
            #expect(refused.errorEnvelope?.error.code == "user_banned")
            _ = try await platform.tenantCall(.put, "auth", base + "/users/" + user.id.uuidString, apikey: secret, json: AdminUserUpdate(banSeconds: 0))
            let back = try await login(platform, tenant, "grace@example.test")
            #expect(back.status == 200)
            let backToken = try back.decode(TenantTokenResponse.self).accessToken

            let deleted = try await platform.tenantCall(.delete, "auth", base + "/users/" + user.id.uuidString, apikey: secret)
            #expect(deleted.status == 204)
            #expect(try await platform.tenantCall(.get, "auth", base + "/users/" + user.id.uuidString, apikey: secret).status == 404)
            #expect(try await platform.tenantCall(.delete, "auth", base + "/users/" + user.id.uuidString, apikey: secret).status == 404)
            #expect(try await platform.tenantCall(.get, "auth", "/v1/tenants/\(tenant.slug)/user", apikey: tenant.keys.publishable, bearer: backToken).status == 401)

            // The audit log: every change, in order, by whom; the chain holds.
            let audit = try await platform.tenantCall(.get, "auth", base + "/audit", apikey: secret).decode(AuditPage.self)
            #expect(audit.entries.map(\.action) == ["tenant.created", "admin.user_created", "user.signed_in", "admin.user_updated",
                                                    "admin.user_updated", "user.signed_in", "admin.user_deleted"])
            #expect(audit.entries.dropFirst().allSatisfy { $0.target == user.id.uuidString.lowercased() })
            #expect(audit.entries[1].actor.hasPrefix("secret_key:"))
            #expect(audit.entries[2].actor == "user:" + user.id.uuidString.lowercased())
            #expect(zip(audit.entries, audit.entries.dropFirst()).allSatisfy { $0.hash == $1.prevHash })
            let page = try await platform.tenantCall(.get, "auth", base + "/audit?limit=2", apikey: secret).decode(AuditPage.self)
            #expect(page.entries.count == 2 && page.nextAfterSeq == page.entries.last?.seq)
            let verified = try await platform.tenantCall(.get, "auth", base + "/audit/verify", apikey: secret).decode(AuditVerification.self)
            #expect(verified == AuditVerification(valid: true, entries: 7, firstBrokenId: nil, checked: 7))

            // Tampering (by someone with the database owner's rights, who can lift the
            // append-only trigger) is found, at the changed row. The row is behind the checkpoint
            // of the verification above and its hashes were left as they were, so it takes a full
            // verification to read it again (a recomputed chain is found by any: AuditTamperTests).
            let tampered = audit.entries[3]
            try await withPool(url: TestDatabase.adminURL(for: url)) { (pool: PostgresPool) async throws -> Void in
                let table = "tenant_" + tenant.slug
                try await pool.withTransaction { tx in
                    try await tx.query("ALTER TABLE \(identifier: table).audit_log DISABLE TRIGGER audit_log_append_only")
                    try await tx.query("UPDATE \(identifier: table).audit_log SET actor = 'nobody' WHERE id = \(tampered.id)")
                    try await tx.query("ALTER TABLE \(identifier: table).audit_log ENABLE TRIGGER audit_log_append_only")
                }
            }
            let broken = try await platform.tenantCall(.get, "auth", base + "/audit/verify?full=true", apikey: secret).decode(AuditVerification.self)
            #expect(broken == AuditVerification(valid: false, entries: 7, firstBrokenId: tampered.id, checked: 4, reason: "chain_broken"))
        }
    }
}

extension TenantUserTests {
    @Test("a tenant's signing key rotates: its JWKS lists both keys, old tokens keep working, storage accepts new ones (it refetches the JWKS for an unknown key id)")
    func tenantKeyRotation() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("rot")
            let base = "/v1/tenants/\(tenant.slug)"
            let old = try await signup(platform, tenant, "rot@example.test").decode(TenantTokenResponse.self)
            #expect(try await platform.tenantCall(.get, "storage", base + "/limits", bearer: old.accessToken).status == 200)

            let rotated = try await platform.client.execute(HTTPClientRequest(
                method: .post, url: platform.url("auth") + "/internal/v1/tenants/\(tenant.id.uuidString.lowercased())/signing-keys/rotate",
                headers: platform.tokenHeaders))
            #expect(rotated.status == 201)
            let jwks = try await platform.tenantCall(.get, "auth", base + "/.well-known/jwks.json")
            let keys = try #require(try JSONSerialization.jsonObject(with: Data(jwks.body)) as? [String: [[String: Any]]])["keys"]
            #expect(keys?.count == 2)

            let new = try await login(platform, tenant, "rot@example.test").decode(TenantTokenResponse.self)
            #expect(Self.kid(new.accessToken) != Self.kid(old.accessToken))
            for token in [old.accessToken, new.accessToken] {
                #expect(try await platform.tenantCall(.get, "auth", base + "/user", apikey: tenant.keys.publishable, bearer: token).status == 200)
                #expect(try await platform.tenantCall(.get, "storage", base + "/limits", bearer: token).status == 200)
            }
            // Another tenant's JWKS does not know these keys; an unknown project has none.
            #expect(try await platform.tenantCall(.get, "auth", "/v1/tenants/no_such_project/.well-known/jwks.json").status == 404)
        }
    }

    static func kid(_ token: String) -> String? {
        let header = try? JSONSerialization.jsonObject(with: Base64URL.decode(String(token.split(separator: ".")[0])) ?? Data()) as? [String: Any]
        return header?["kid"] as? String
    }
}
