import Contracts
import Foundation
import HTTPClient
import ServiceClients
import ServiceKit
import TenantKit
import TestSupport
import Testing

/// Tenant isolation across auth, realtime and storage: every tenant route refuses another
/// tenant's credentials (403) and anonymous callers (401); realtime and storage verify without
/// asking auth on every request, and a revoked key stops working within the stated bound (checked on an injected clock).
@Suite("Cross-tenant access", .serialized)
struct CrossTenantTests {
    struct Route: CustomStringConvertible {
        var method: HTTPMethod
        var service: String
        var path: String
        var body: (any Encodable & Sendable)?
        var description: String { "\(method) \(service) \(path)" }
    }

    /// Every tenant route of the platform, for tenant `slug`.
    static func routes(_ slug: String, user: UUID) -> [Route] {
        let base = "/v1/tenants/\(slug)"
        let someone = base + "/admin/users/" + user.uuidString.lowercased()
        return [
            Route(method: .post, service: "auth", path: base + "/signup", body: TenantSignup(email: "mallory@example.test", password: TenantUserTests.password)),
            Route(method: .post, service: "auth", path: base + "/token?grant_type=password", body: PasswordGrant(email: "victim@example.test", password: TenantUserTests.password)),
            Route(method: .post, service: "auth", path: base + "/token?grant_type=refresh_token", body: RefreshGrant(refreshToken: "x")),
            Route(method: .get, service: "auth", path: base + "/user"),
            Route(method: .put, service: "auth", path: base + "/user", body: TenantUserUpdate(metadata: .object(["owned": .bool(true)]))),
            Route(method: .post, service: "auth", path: base + "/logout"),
            Route(method: .get, service: "auth", path: base + "/admin/users"),
            Route(method: .post, service: "auth", path: base + "/admin/users", body: AdminUserCreate(email: "mallory@example.test")),
            Route(method: .get, service: "auth", path: someone),
            Route(method: .put, service: "auth", path: someone, body: AdminUserUpdate(role: "owner")),
            Route(method: .delete, service: "auth", path: someone),
            Route(method: .get, service: "auth", path: base + "/admin/audit"),
            Route(method: .get, service: "auth", path: base + "/admin/audit/verify"),
            Route(method: .get, service: "realtime", path: base + "/limits"),
            Route(method: .get, service: "storage", path: base + "/limits"),
        ]
    }

    @Test("for each tenant route: tenant A's publishable key, secret key and user token against tenant B are 403; anonymous is 401")
    func matrix() async throws {
        try await withTestPlatform { platform, _ in
            let a = try await platform.provisionTenant("ta")
            let b = try await platform.provisionTenant("tb")
            let userA = try await platform.tenantCall(.post, "auth", "/v1/tenants/\(a.slug)/signup", apikey: a.keys.publishable,
                                                      json: TenantSignup(email: "alice@example.test", password: TenantUserTests.password))
                .decode(TenantTokenResponse.self)
            let victim = try await platform.tenantCall(.post, "auth", "/v1/tenants/\(b.slug)/signup", apikey: b.keys.publishable,
                                                       json: TenantSignup(email: "victim@example.test", password: TenantUserTests.password))
                .decode(TenantTokenResponse.self)

            var checked = 0
            for route in Self.routes(b.slug, user: victim.user.id) {
                let anonymous = try await platform.tenantCall(route.method, route.service, route.path, json: route.body)
                #expect(anonymous.status == 401, "anonymous \(route): \(anonymous)")
                #expect(anonymous.headers["WWW-Authenticate"] == "Bearer", "\(route)")
                for key in [a.keys.publishable, a.keys.secret] {
                    let response = try await platform.tenantCall(route.method, route.service, route.path, apikey: key, json: route.body)
                    #expect(response.status == 403 && response.errorEnvelope?.error.code == "tenant_mismatch", "\(key.prefix(3)) of A on \(route): \(response)")
                }
                // A's user token, alone and beside B's own publishable key.
                for apikey in [nil, b.keys.publishable] {
                    let response = try await platform.tenantCall(route.method, route.service, route.path, apikey: apikey, bearer: userA.accessToken, json: route.body)
                    #expect(response.status == 403 && response.errorEnvelope?.error.code == "tenant_mismatch", "A's user token on \(route): \(response)")
                }
                // Forged or garbled credentials are 401 (not 403, not 500).
                let garbled = try await platform.tenantCall(route.method, route.service, route.path, apikey: "pk_" + String(repeating: "A", count: 43), json: route.body)
                #expect(garbled.status == 401 && garbled.errorEnvelope?.error.code == "invalid_api_key", "unknown key on \(route): \(garbled)")
                let forged = try await platform.tenantCall(route.method, route.service, route.path, apikey: b.keys.publishable,
                                                           bearer: Self.reissued(userA.accessToken, ref: b.slug), json: route.body)
                #expect(forged.status == 401 && forged.errorEnvelope?.error.code == "invalid_token", "forged token on \(route): \(forged)")
                checked += 1
            }
            #expect(checked == 15)

            // Nothing of B's changed: the victim is as they were, and no one else signed up.
            let users = try await platform.tenantCall(.get, "auth", "/v1/tenants/\(b.slug)/admin/users", apikey: b.keys.secret).decode(TenantUserPage.self)
            #expect(users.users.map(\.email) == ["victim@example.test"] && users.users.first?.role == "authenticated")

            // B's own credentials work on realtime and storage, key or user token alike.
            for service in ["realtime", "storage"] {
                for (apikey, bearer) in [(b.keys.publishable, nil), (b.keys.secret, nil), (nil, victim.accessToken)] as [(String?, String?)] {
                    let own = try await platform.tenantCall(.get, service, "/v1/tenants/\(b.slug)/limits", apikey: apikey, bearer: bearer)
                    #expect(own.status == 200, "\(service) with B's own credentials: \(own)")
                }
            }
            let quota = try await platform.tenantCall(.get, "storage", "/v1/tenants/\(b.slug)/limits", apikey: b.keys.publishable)
            #expect(String(decoding: quota.body, as: UTF8.self).contains("quota_bytes"))
        }
    }

    /// The token with its payload's `ref` changed to `slug`, keeping the original signature.
    static func reissued(_ token: String, ref slug: String) -> String {
        let parts = token.split(separator: ".").map(String.init)
        var base64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64),
              var payload = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return token }
        payload["ref"] = slug
        payload["iss"] = "platform-auth/tenants/" + slug
        let encoded = (try? JSONSerialization.data(withJSONObject: payload)) ?? Data()
        let body = encoded.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return [parts[0], body, parts[2]].joined(separator: ".")
    }

    @Test("realtime and storage keep verifying cached keys and tokens offline while auth is down; unknown ones fail closed with 503")
    func offlineVerification() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("off")
            let user = try await platform.tenantCall(.post, "auth", "/v1/tenants/\(tenant.slug)/signup", apikey: tenant.keys.publishable,
                                                     json: TenantSignup(email: "offline@example.test", password: TenantUserTests.password))
                .decode(TenantTokenResponse.self)
            let path = "/v1/tenants/\(tenant.slug)/limits"
            for service in ["realtime", "storage"] {
                #expect(try await platform.tenantCall(.get, service, path, apikey: tenant.keys.publishable).status == 200)
                #expect(try await platform.tenantCall(.get, service, path, bearer: user.accessToken).status == 200)
            }
            await platform.stop("auth")
            for service in ["realtime", "storage"] {
                #expect(try await platform.tenantCall(.get, service, path, apikey: tenant.keys.publishable).status == 200, "\(service): cached key")
                #expect(try await platform.tenantCall(.get, service, path, bearer: user.accessToken).status == 200, "\(service): offline token")
                let unknown = try await platform.tenantCall(.get, service, path, apikey: tenant.keys.secret)
                #expect(unknown.status == 503 && unknown.errorEnvelope?.error.code == "auth_unavailable", "\(service): \(unknown)")
            }
        }
    }

    @Test("a revoked API key is refused by auth at once; realtime's and storage's cached answer keeps it exactly API_KEY_CACHE_SECONDS, then they refuse it")
    func revocationBound() async throws {
        try await withTestPlatform(provisioning: ["API_KEY_CACHE_SECONDS": "1"]) { platform, _ in
            let tenant = try await platform.provisionTenant("rev")
            let path = "/v1/tenants/\(tenant.slug)/limits"
            for service in ["realtime", "storage"] {
                #expect(try await platform.tenantCall(.get, service, path, apikey: tenant.keys.publishable).status == 200)
            }
            // The resolver realtime and storage use, on a clock the test moves: the bound is the
            // cache's, checked to the instant, against the real auth.
            let clock = TestClock(frozen: true)
            let ttl = Duration.seconds(30)
            let credentials = RemoteTenantCredentials(
                auth: TenantCredentialsClient(http: platform.client, authURL: platform.url("auth"), serviceToken: TestServices.internalToken),
                apiKeyTTL: ttl, jwksTTL: .seconds(300), logger: TestDatabase.logger, now: clock.instant
            )
            let hash = SecureToken.sha256Hex(tenant.keys.publishable)
            #expect(try await credentials.apiKey(sha256: hash)?.tenantId == tenant.id)

            let revoked = try await platform.client.execute(HTTPClientRequest(
                method: .delete, url: platform.url("auth") + "/internal/v1/tenants/\(tenant.id.uuidString.lowercased())/api-keys",
                headers: platform.tokenHeaders))
            #expect(revoked.status == 204)
            let atAuth = try await platform.tenantCall(.post, "auth", "/v1/tenants/\(tenant.slug)/signup", apikey: tenant.keys.publishable,
                                                       json: TenantSignup(email: "late@example.test", password: TenantUserTests.password))
            #expect(atAuth.status == 401)

            clock.advance(by: ttl - .milliseconds(1))
            #expect(try await credentials.apiKey(sha256: hash) != nil, "still the cached answer just inside the bound")
            clock.advance(by: .milliseconds(1))
            #expect(try await credentials.apiKey(sha256: hash) == nil, "auth asked again at the bound, and it refuses")

            // The running services (1 s cache) come to refuse it too.
            for service in ["realtime", "storage"] {
                let refused = try await eventually(timeout: .seconds(30)) {
                    try await platform.tenantCall(.get, service, path, apikey: tenant.keys.publishable).status == 401
                }
                #expect(refused, "\(service) still accepts the revoked key")
            }
        }
    }
}
