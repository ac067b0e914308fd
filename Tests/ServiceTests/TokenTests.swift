import Contracts
import Foundation
import HTTPClient
import JWTKit
import Postgres
import ServiceClients
import ServiceKit
import TestSupport
import Testing

/// Developer sessions: ES256 access tokens, JWKS, rotating refresh tokens with reuse detection,
/// logout, key rotation. Auth runs in this process, on a clock the tests move forward
/// (`advanceClock`) to reach an expiry; key rotation runs on real executables (two replicas).
/// No test here measures time: the cost of a sign-in is counted in argon2id verifications.
@Suite("Developer tokens", .serialized)
struct TokenTests {
    static let password = "correct horse battery"

    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var sid: String
        var iat: IssuedAtClaim
        var exp: ExpirationClaim
        var iss: IssuerClaim
        var aud: AudienceClaim
        func verify(using algorithm: some JWTAlgorithm) async throws { try exp.verifyNotExpired() }
    }

    /// Registers a developer through the platform; returns their email.
    func registerDeveloper(_ platform: TestPlatform) async throws -> String {
        let email = TestDatabase.uniqueName("dev") + "@example.test"
        let body = try JSONEncoder().encode(RegisterRequest(email: email, password: Self.password, projectName: "Tokens", slug: TestDatabase.uniqueName("tok")))
        let response = try await platform.client.execute(HTTPClientRequest(method: .post, url: platform.url("auth") + "/v1/register", body: Array(body)))
        #expect(response.status == 202)
        return email
    }

    func post(_ platform: TestPlatform, _ path: String, _ body: some Encodable, bearer: String? = nil) async throws -> HTTPClientResponse {
        var headers = HTTPClientHeaders([("Content-Type", "application/json")])
        if let bearer { headers.add(name: "Authorization", value: "Bearer " + bearer) }
        return try await platform.client.execute(HTTPClientRequest(
            method: .post, url: platform.url("auth") + path, headers: headers, body: Array(try JSONEncoder().encode(body))))
    }

    func login(_ platform: TestPlatform, _ email: String, _ password: String = TokenTests.password) async throws -> HTTPClientResponse {
        try await post(platform, "/v1/token?grant_type=password", PasswordGrant(email: email, password: password))
    }

    func refresh(_ platform: TestPlatform, _ token: String) async throws -> HTTPClientResponse {
        try await post(platform, "/v1/token?grant_type=refresh_token", RefreshGrant(refreshToken: token))
    }

    func me(_ platform: TestPlatform, _ access: String) async throws -> Int {
        try await platform.client.execute(HTTPClientRequest(
            url: platform.url("auth") + "/v1/me", headers: HTTPClientHeaders([("Authorization", "Bearer " + access)]))).status
    }

    func jwks(_ platform: TestPlatform) async throws -> String {
        String(decoding: try await platform.client.execute(HTTPClientRequest(url: platform.url("auth") + "/.well-known/jwks.json")).body, as: UTF8.self)
    }

    @Test("login issues an ES256 token that the JWKS verifies; /v1/me answers; bad credentials are one 400 for both cases")
    func loginAndJWKS() async throws {
        try await withTestPlatform { platform, _ in
            let email = try await registerDeveloper(platform)
            let tokens = try await login(platform, email).decode(TokenResponse.self)
            #expect(tokens.tokenType == "bearer" && tokens.expiresIn == 900)
            let keys = try await JWTKeyCollection().add(jwksJSON: try await jwks(platform))
            let claims = try await keys.verify(tokens.accessToken, as: Claims.self)
            #expect(claims.sub.value == tokens.user.id.uuidString.lowercased())
            #expect(claims.iss.value == "platform-auth")
            let header = try JSONSerialization.jsonObject(with: Base64URL.decode(String(tokens.accessToken.split(separator: ".")[0])) ?? Data()) as? [String: Any]
            #expect(header?["alg"] as? String == "ES256" && header?["kid"] is String)
            #expect(try await me(platform, tokens.accessToken) == 200)

            let wrong = try await login(platform, email, "a wrong password")
            let unknown = try await login(platform, "nobody_" + email)
            #expect(wrong.status == 400 && unknown.status == 400)
            #expect(wrong.errorEnvelope == unknown.errorEnvelope)
            #expect(wrong.errorEnvelope?.error.code == "invalid_grant")
        }
    }

    @Test("refresh rotates; a rotated token reused inside the grace window gets the same child again, after it revokes the whole session")
    func refreshRotationAndReuse() async throws {
        try await withTestPlatform(provisioning: ["REFRESH_REUSE_GRACE_SECONDS": "10"]) { platform, _ in
            let email = try await registerDeveloper(platform)
            let first = try await login(platform, email).decode(TokenResponse.self)
            let second = try await refresh(platform, first.refreshToken).decode(TokenResponse.self)
            #expect(second.refreshToken != first.refreshToken)
            #expect(try await me(platform, second.accessToken) == 200)

            // Inside the window (a second tab refreshing with the same token): the child it got
            // the first time, so the session stays one chain.
            try platform.advanceClock(by: .seconds(5))
            let again = try await refresh(platform, first.refreshToken)
            #expect(again.status == 200)
            #expect(try again.decode(TokenResponse.self).refreshToken == second.refreshToken)

            // Past the window, counted from the token's first use.
            try platform.advanceClock(by: .seconds(6))
            let reused = try await refresh(platform, first.refreshToken)
            #expect(reused.status == 400 && reused.errorEnvelope?.error.code == "refresh_token_reused")
            // The whole family is gone: the newer refresh tokens and the session's access tokens.
            #expect(try await refresh(platform, second.refreshToken).status == 400)
            #expect(try await me(platform, second.accessToken) == 401)
            // Another sign-in is a new session and works.
            let other = try await login(platform, email).decode(TokenResponse.self)
            #expect(try await me(platform, other.accessToken) == 200)
        }
    }

    @Test("concurrent refreshes with one token inside the grace window all succeed with one child and keep the session")
    func concurrentRefreshInGrace() async throws {
        try await withTestPlatform { platform, _ in
            let email = try await registerDeveloper(platform)
            let first = try await login(platform, email).decode(TokenResponse.self)
            let answers = try await withThrowingTaskGroup(of: HTTPClientResponse.self) { group in
                for _ in 0..<3 { group.addTask { try await refresh(platform, first.refreshToken) } }
                return try await group.reduce(into: [HTTPClientResponse]()) { $0.append($1) }
            }
            #expect(answers.map(\.status) == [200, 200, 200])
            let children = Set(try answers.map { try $0.decode(TokenResponse.self).refreshToken })
            #expect(children.count == 1)
            #expect(try await me(platform, first.accessToken) == 200)
            // The one child carries the session on.
            #expect(try await refresh(platform, try #require(children.first)).status == 200)
        }
    }

    /// The session an access token names (its `sid`), read without verifying.
    func sessionID(of accessToken: String) throws -> String {
        let payload = try #require(Base64URL.decode(String(accessToken.split(separator: ".")[1])))
        return try #require((try JSONSerialization.jsonObject(with: payload) as? [String: Any])?["sid"] as? String)
    }

    /// Provisioning's question about a developer's session (`GET /internal/v1/sessions/{id}`).
    func sessionLookup(_ platform: TestPlatform, _ accessToken: String) async throws -> Int {
        try await platform.client.execute(HTTPClientRequest(
            url: platform.url("auth") + "/internal/v1/sessions/" + (try sessionID(of: accessToken)), headers: platform.tokenHeaders)).status
    }

    @Test("a session ends at its timebox, however often it is refreshed: its refresh token is invalid_grant, its access tokens 401, its lookup 404")
    func sessionTimebox() async throws {
        try await withTestPlatform(provisioning: ["SESSION_TIMEBOX_SECONDS": "3600", "SESSION_INACTIVITY_TIMEOUT_SECONDS": "86400",
                                                  "ACCESS_TOKEN_TTL_SECONDS": "7200"]) { platform, _ in
            let email = try await registerDeveloper(platform)
            let first = try await login(platform, email).decode(TokenResponse.self)
            try platform.advanceClock(by: .seconds(1800))
            let second = try await refresh(platform, first.refreshToken).decode(TokenResponse.self)
            try platform.advanceClock(by: .seconds(1200))
            #expect(try await me(platform, second.accessToken) == 200)
            #expect(try await sessionLookup(platform, second.accessToken) == 200)

            // Over an hour after sign-in; the access token itself would live on for another hour.
            try platform.advanceClock(by: .seconds(601))
            let refused = try await refresh(platform, second.refreshToken)
            #expect(refused.status == 400 && refused.errorEnvelope?.error.code == "invalid_grant")
            #expect(try await me(platform, second.accessToken) == 401)
            #expect(try await sessionLookup(platform, second.accessToken) == 404)
            // A new sign-in is a new session, with its own hour.
            #expect(try await me(platform, try await login(platform, email).decode(TokenResponse.self).accessToken) == 200)
        }
    }

    @Test("a session not refreshed within the inactivity timeout ends; each refresh restarts the timeout")
    func sessionInactivityTimeout() async throws {
        try await withTestPlatform(provisioning: ["SESSION_INACTIVITY_TIMEOUT_SECONDS": "3600", "ACCESS_TOKEN_TTL_SECONDS": "7200"]) { platform, _ in
            let email = try await registerDeveloper(platform)
            let first = try await login(platform, email).decode(TokenResponse.self)
            try platform.advanceClock(by: .seconds(3000))
            let second = try await refresh(platform, first.refreshToken).decode(TokenResponse.self)
            // Past an hour since sign-in, not since the last refresh.
            try platform.advanceClock(by: .seconds(3000))
            let third = try await refresh(platform, second.refreshToken).decode(TokenResponse.self)
            try platform.advanceClock(by: .seconds(3000))
            #expect(try await me(platform, third.accessToken) == 200)
            #expect(try await sessionLookup(platform, third.accessToken) == 200)

            try platform.advanceClock(by: .seconds(601))
            #expect(try await me(platform, third.accessToken) == 401)
            #expect(try await sessionLookup(platform, third.accessToken) == 404)
            let refused = try await refresh(platform, third.refreshToken)
            #expect(refused.status == 400 && refused.errorEnvelope?.error.code == "invalid_grant")
        }
    }

    @Test("a refresh token expires REFRESH_TOKEN_TTL_SECONDS after it was issued (invalid_grant); each child gets its own lifetime")
    func refreshTokenExpiry() async throws {
        try await withTestPlatform(provisioning: ["REFRESH_TOKEN_TTL_SECONDS": "3600", "ACCESS_TOKEN_TTL_SECONDS": "7200"]) { platform, _ in
            let email = try await registerDeveloper(platform)
            let first = try await login(platform, email).decode(TokenResponse.self)
            try platform.advanceClock(by: .seconds(3000))
            let second = try await refresh(platform, first.refreshToken).decode(TokenResponse.self)
            // Over an hour after the first token was issued, under one since the second was.
            try platform.advanceClock(by: .seconds(3000))
            let third = try await refresh(platform, second.refreshToken).decode(TokenResponse.self)

            try platform.advanceClock(by: .seconds(3601))
            let refused = try await refresh(platform, third.refreshToken)
            #expect(refused.status == 400 && refused.errorEnvelope?.error.code == "invalid_grant")
            #expect(refused.errorEnvelope?.error.message == "The refresh token has expired.")
            // The session itself has not ended (7 days' inactivity): its access token still works.
            #expect(try await me(platform, third.accessToken) == 200)
        }
    }

    @Test("sessions that ended over a day ago are deleted with their refresh tokens: a revoked one and an inactive one go, a live one stays")
    func endedSessionsPurged() async throws {
        try await withTestPlatform(provisioning: ["SESSION_INACTIVITY_TIMEOUT_SECONDS": "3600", "ACCESS_TOKEN_TTL_SECONDS": "7200",
                                                  "SESSION_PURGE_INTERVAL_SECONDS": "1"]) { platform, url in
            let email = try await registerDeveloper(platform)
            let revoked = try await login(platform, email).decode(TokenResponse.self)
            #expect(try await post(platform, "/v1/logout", [String: String](), bearer: revoked.accessToken).status == 204)
            let idle = try await login(platform, email).decode(TokenResponse.self)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                let ended = [try sessionID(of: revoked.accessToken), try sessionID(of: idle.accessToken)].compactMap(UUID.init(uuidString:))
                #expect(ended.count == 2)
                func rows(_ sessions: [UUID]) async throws -> (sessions: Int, tokens: Int) {
                    (try await pool.scalar("SELECT count(*)::int8 FROM auth.sessions WHERE id = ANY(\(sessions))"),
                     try await pool.scalar("SELECT count(*)::int8 FROM auth.refresh_tokens WHERE session_id = ANY(\(sessions))"))
                }
                // Ended under a day ago (the idle one an hour from now): kept, through the
                // janitor's rounds (one a second) until the clock moves.
                #expect(try await rows(ended) == (2, 2))

                // A day and two hours on: both ended over a day ago; a new sign-in is live.
                try platform.advanceClock(by: .seconds(26 * 3600))
                let live = try await login(platform, email).decode(TokenResponse.self)
                let kept = [try #require(UUID(uuidString: try sessionID(of: live.accessToken)))]
                try await waitUntil("the janitor deletes the ended sessions", hangGuard: .seconds(60)) {
                    try await rows(ended) == (0, 0)
                }
                #expect(try await rows(kept) == (1, 1))
                #expect(try await me(platform, live.accessToken) == 200)
            }
        }
    }

    @Test("logout: local ends one session, global ends all")
    func logoutScopes() async throws {
        try await withTestPlatform { platform, _ in
            let email = try await registerDeveloper(platform)
            let a = try await login(platform, email).decode(TokenResponse.self)
            let b = try await login(platform, email).decode(TokenResponse.self)
            let c = try await login(platform, email).decode(TokenResponse.self)
            #expect(try await post(platform, "/v1/logout", [String: String](), bearer: a.accessToken).status == 204)
            #expect(try await me(platform, a.accessToken) == 401)
            #expect(try await refresh(platform, a.refreshToken).status == 400)
            #expect(try await me(platform, b.accessToken) == 200)
            #expect(try await post(platform, "/v1/logout?scope=global", [String: String](), bearer: b.accessToken).status == 204)
            #expect(try await me(platform, b.accessToken) == 401)
            #expect(try await me(platform, c.accessToken) == 401)
            #expect(try await post(platform, "/v1/logout", [String: String]()).status == 401)
        }
    }

    @Test("a token signed by another key, a malformed one and an expired one are 401")
    func rejectedTokens() async throws {
        try await withTestPlatform(provisioning: ["ACCESS_TOKEN_TTL_SECONDS": "900"]) { platform, _ in
            let email = try await registerDeveloper(platform)
            let tokens = try await login(platform, email).decode(TokenResponse.self)
            #expect(try await me(platform, tokens.accessToken) == 200)

            let forger = JWTKeyCollection()
            await forger.add(ecdsa: ES256PrivateKey(), kid: "forged")
            let claims = try await JWTKeyCollection().add(jwksJSON: try await jwks(platform)).verify(tokens.accessToken, as: Claims.self)
            let forged = try await forger.sign(claims, kid: "forged")
            #expect(try await me(platform, forged) == 401)
            #expect(try await me(platform, "not.a.token") == 401)

            // Auth's clock, not a sleep, carries the token towards and past its expiry.
            try platform.advanceClock(by: .seconds(840))
            #expect(try await me(platform, tokens.accessToken) == 200)
            try platform.advanceClock(by: .seconds(61))
            #expect(try await me(platform, tokens.accessToken) == 401)
        }
    }

    @Test("rate limits: the attempt past the per-account limit gets 429 with Retry-After and X-RateLimit headers")
    func rateLimit() async throws {
        try await withTestPlatform(provisioning: ["TOKEN_RATE_LIMIT_PER_ACCOUNT": "3", "TOKEN_RATE_LIMIT_PER_IP": "5"]) { platform, _ in
            let email = try await registerDeveloper(platform)
            for _ in 0..<3 {
                let allowed = try await login(platform, email, "a wrong password")
                #expect(allowed.status == 400)
                #expect(allowed.headers["X-RateLimit-Limit"] == "5")
            }
            let limited = try await login(platform, email)
            #expect(limited.status == 429 && limited.errorEnvelope?.error.code == "rate_limited")
            let retryAfter = Int(limited.headers["Retry-After"] ?? "") ?? 0
            #expect((1...60).contains(retryAfter))
            #expect(limited.headers["X-RateLimit-Remaining"] == "0")
            // Another account from the same address: one attempt left on the address limit, then 429.
            #expect(try await login(platform, "other_" + email).status == 400)
            #expect(try await login(platform, "third_" + email).status == 429)
        }
    }

    @Test("behind a trusted proxy, the per-address limit counts X-Forwarded-For's client, which a client cannot forge")
    func rateLimitBehindProxy() async throws {
        try await withTestPlatform(provisioning: ["TOKEN_RATE_LIMIT_PER_IP": "2", "TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"]) { (platform: TestPlatform, _: String) async throws -> Void in
            func attempt(_ forwardedFor: String) async throws -> Int {
                try await platform.client.execute(HTTPClientRequest(
                    method: .post, url: platform.url("auth") + "/v1/token?grant_type=password",
                    headers: HTTPClientHeaders([("Content-Type", "application/json"), ("X-Forwarded-For", forwardedFor)]),
                    body: Array(try JSONEncoder().encode(PasswordGrant(email: "nobody@example.test", password: "a wrong password"))))).status
            }
            #expect(try await attempt("203.0.113.1") == 400)
            #expect(try await attempt("203.0.113.1, 10.1.2.3") == 400)  // through a second trusted hop
            #expect(try await attempt("203.0.113.1") == 429)
            // Another client behind the same proxy has its own allowance.
            #expect(try await attempt("203.0.113.2") == 400)
            // A client prepending a fake address is still counted as itself.
            #expect(try await attempt("198.51.100.7, 203.0.113.1") == 429)
        }
    }

    @Test("an unknown email costs what a wrong password costs: one argon2id verification each, and the same answer")
    func unknownEmailCostsAVerify() async throws {
        try await withTestPlatform { platform, _ in
            let email = try await registerDeveloper(platform)
            // The time each takes is a figure for deploy/scripts/bench-auth.sh; here, the work done.
            let before = try await verifications(platform)
            let wrong = try await login(platform, email, "a wrong password")
            let afterWrong = try await verifications(platform)
            let unknown = try await login(platform, "nobody_" + email, "a wrong password")
            let afterUnknown = try await verifications(platform)
            #expect(afterWrong - before == 1)
            #expect(afterUnknown - afterWrong == 1)
            #expect(wrong.status == 400 && unknown.status == 400)
            #expect(wrong.body == unknown.body)
            #expect(wrong.headers["Cache-Control"] == unknown.headers["Cache-Control"])
        }
    }

    /// Auth's `auth_password_verifications_total` (its `/metrics`).
    func verifications(_ platform: TestPlatform) async throws -> Int {
        let text = String(decoding: try await platform.client.execute(HTTPClientRequest(url: platform.url("auth") + "/metrics")).body, as: UTF8.self)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("auth_password_verifications_total ") })
        return Int(try #require(Double(line.split(separator: " ")[1])))
    }

    @Test("rotating the signing key: new tokens use the new key, old tokens still verify, on another replica too")
    func keyRotation() async throws {
        try await withTestPlatform(.processes) { platform, _ in
            let email = try await registerDeveloper(platform)
            let before = try await login(platform, email).decode(TokenResponse.self)
            // A second auth replica, which has loaded the keys before the rotation.
            let port = try freePort()
            let replica = try ServiceProcess("auth", port: port, environment: platform.environment(for: "auth", port: port))
            defer { replica.kill() }
            try await replica.waitUntil()
            let replicaMe = { (token: String) async throws -> Int in
                try await platform.client.execute(HTTPClientRequest(
                    url: "http://127.0.0.1:\(port)/v1/me", headers: HTTPClientHeaders([("Authorization", "Bearer " + token)]))).status
            }
            #expect(try await replicaMe(before.accessToken) == 200)
            let rotated = try await platform.client.execute(HTTPClientRequest(
                method: .post, url: platform.url("auth") + "/internal/v1/signing-keys/rotate", headers: platform.tokenHeaders))
            #expect(rotated.status == 201)
            let newKID = try #require(try JSONSerialization.jsonObject(with: Data(rotated.body)) as? [String: String])["kid"]
            let set = try JSONSerialization.jsonObject(with: Data(try await jwks(platform).utf8)) as? [String: [[String: Any]]]
            #expect(set?["keys"]?.count == 2)
            #expect(try await me(platform, before.accessToken) == 200)
            let after = try await login(platform, email).decode(TokenResponse.self)
            let header = try JSONSerialization.jsonObject(with: Base64URL.decode(String(after.accessToken.split(separator: ".")[0])) ?? Data()) as? [String: Any]
            #expect(header?["kid"] as? String == newKID)
            #expect(try await me(platform, after.accessToken) == 200)
            // The replica has not seen the new key: it reloads for the unknown key id.
            #expect(try await replicaMe(after.accessToken) == 200)
            #expect(try await replicaMe(before.accessToken) == 200)
            let anonymous = try await platform.client.execute(HTTPClientRequest(method: .post, url: platform.url("auth") + "/internal/v1/signing-keys/rotate"))
            #expect(anonymous.status == 401)
        }
    }
}
