import Contracts
import Foundation
import HTTPClient
import Postgres
import TestSupport
import Testing

/// Tenant auth on `/auth/v1/`, as Supabase's clients speak it (GoTrue's protocol,
/// docs/protocols/gotrue-reference.md), on the real services: the shapes, the status codes and
/// error codes the clients parse, and the project resolved from the `apikey` or the host. The
/// clients themselves run against the platform in deploy/scripts/sdk-tests.sh.
@Suite("GoTrue protocol", .serialized)
struct GoTrueTests {
    static let password = "a long tenant passphrase"

    /// A call as supabase-py makes it: `apikey`, `X-Supabase-Api-Version` (unless `version` is
    /// false), JSON in and out.
    struct Answer {
        var status: Int
        var headers: HTTPClientHeaders
        var json: [String: Any]

        var code: String? { json["code"] as? String }
        var user: [String: Any] { json["user"] as? [String: Any] ?? [:] }
    }

    func call(_ platform: TestPlatform, _ method: HTTPMethod, _ path: String, apikey: String?, bearer: String? = nil,
              json: [String: Any]? = nil, version: Bool = true, host: String? = nil) async throws -> Answer {
        var headers = HTTPClientHeaders()
        if let apikey { headers.add(name: "apikey", value: apikey) }
        if let bearer { headers.add(name: "Authorization", value: "Bearer " + bearer) }
        if version { headers.add(name: "X-Supabase-Api-Version", value: "2024-01-01") }
        if let host { headers.add(name: "Host", value: host) }
        var body: [UInt8]?
        if let json {
            headers.add(name: "Content-Type", value: "application/json;charset=UTF-8")
            body = Array(try JSONSerialization.data(withJSONObject: json))
        }
        let response = try await platform.client.execute(HTTPClientRequest(method: method, url: platform.url("auth") + "/auth/v1" + path,
                                                                           headers: headers, body: body))
        let object = response.body.isEmpty ? [:] : (try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] ?? ["_": "not an object"])
        return Answer(status: response.status, headers: response.headers, json: object)
    }

    func signUp(_ platform: TestPlatform, _ key: String, _ email: String, data: [String: Any] = [:]) async throws -> Answer {
        try await call(platform, .post, "/signup", apikey: key, json: ["email": email, "password": Self.password, "data": data,
                                                                          "gotrue_meta_security": ["captcha_token": NSNull()]])
    }

    func signIn(_ platform: TestPlatform, _ key: String, _ email: String, password: String = GoTrueTests.password) async throws -> Answer {
        try await call(platform, .post, "/token?grant_type=password", apikey: key, json: ["email": email, "password": password])
    }

    /// A JWT's header and payload, unverified.
    static func jwt(_ token: String) throws -> (header: [String: Any], claims: [String: Any]) {
        let parts = token.split(separator: ".").map { part -> Data in
            var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while text.count % 4 != 0 { text += "=" }
            return Data(base64Encoded: text) ?? Data()
        }
        #expect(parts.count == 3)
        return (try JSONSerialization.jsonObject(with: parts[0]) as? [String: Any] ?? [:],
                try JSONSerialization.jsonObject(with: parts[1]) as? [String: Any] ?? [:])
    }

    @Test("sign-up and sign-in answer GoTrue's session and user; the token carries the claims clients read; the JWKS verifies it")
    func sessionShapes() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("gts")
            let key = tenant.keys.publishable

            let signedUp = try await signUp(platform, key, "Ada@Example.test", data: ["plan": "free"])
            #expect(signedUp.status == 200)
            let session = signedUp.json
            #expect(session["token_type"] as? String == "bearer")
            let expiresIn = try #require(session["expires_in"] as? Int)
            let expiresAt = try #require(session["expires_at"] as? Int)
            #expect(expiresIn > 0 && expiresAt > Int(Date().timeIntervalSince1970) - 60)
            #expect((session["refresh_token"] as? String)?.count ?? 0 > 12)
            let user = signedUp.user
            #expect(UUID(uuidString: user["id"] as? String ?? "") != nil)
            #expect(user["aud"] as? String == "authenticated" && user["role"] as? String == "authenticated")
            // Lower-cased, signed in at once, the identity's verified flag in the metadata, as GoTrue does.
            #expect(user["email"] as? String == "ada@example.test" && user["phone"] as? String == "")
            #expect(user["last_sign_in_at"] is String)
            let metadata = try #require(user["user_metadata"] as? [String: Any])
            #expect(metadata["plan"] as? String == "free" && metadata["email_verified"] as? Bool == true && metadata.count == 2)
            #expect((user["app_metadata"] as? [String: Any])?["provider"] as? String == "email")
            #expect(user["email_confirmed_at"] is String && user["created_at"] is String && user["is_anonymous"] as? Bool == false)
            let identity = try #require((user["identities"] as? [[String: Any]])?.first)
            #expect(identity["provider"] as? String == "email" && identity["user_id"] as? String == user["id"] as? String)
            #expect((identity["identity_data"] as? [String: Any])?["email"] as? String == "ada@example.test")

            // ES256 with a kid the project's JWKS lists; GoTrue's claims, `amr` as objects.
            let accessToken = try #require(session["access_token"] as? String)
            let (header, claims) = try Self.jwt(accessToken)
            #expect(header["alg"] as? String == "ES256" && header["typ"] as? String == "JWT")
            let kid = try #require(header["kid"] as? String)
            #expect(claims["sub"] as? String == user["id"] as? String && claims["aud"] as? String == "authenticated")
            #expect(claims["exp"] as? Int == expiresAt && claims["role"] as? String == "authenticated" && claims["aal"] as? String == "aal1")
            #expect(claims["session_id"] as? String == claims["sid"] as? String && claims["is_anonymous"] as? Bool == false)
            let amr = try #require(claims["amr"] as? [[String: Any]])
            #expect(amr.first?["method"] as? String == "password" && amr.first?["timestamp"] is Int)
            #expect((claims["user_metadata"] as? [String: Any])?["plan"] as? String == "free")
            let jwks = try await call(platform, .get, "/.well-known/jwks.json", apikey: key)
            #expect(jwks.status == 200 && jwks.headers["Cache-Control"] == "public, max-age=600")
            let published = try #require((jwks.json["keys"] as? [[String: Any]])?.first { $0["kid"] as? String == kid })
            #expect(published["alg"] as? String == "ES256" && published["key_ops"] as? [String] == ["verify"] && published["d"] == nil)

            // Sign-in opens a second session of the same user.
            let signedIn = try await signIn(platform, key, "ada@example.test")
            #expect(signedIn.status == 200 && signedIn.user["id"] as? String == user["id"] as? String)
            #expect(signedIn.user["last_sign_in_at"] is String)
            let settings = try await call(platform, .get, "/settings", apikey: key)
            #expect(settings.status == 200 && settings.json["mailer_autoconfirm"] as? Bool == true)
            #expect((settings.json["external"] as? [String: Bool])?["email"] == true)
        }
    }

    @Test("errors in GoTrue's shape: the 2024 shape and echoed version for clients that ask, the legacy one otherwise; weak passwords with reasons")
    func errorShapes() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("gte")
            let key = tenant.keys.publishable
            #expect(try await signUp(platform, key, "grace@example.test").status == 200)

            let taken = try await signUp(platform, key, "Grace@example.test")
            #expect(taken.status == 422 && taken.code == "user_already_exists" && taken.json["message"] as? String == "User already registered")
            #expect(taken.headers["X-Supabase-Api-Version"] == "2024-01-01" && taken.headers["x-sb-error-code"] == "user_already_exists")
            let legacy = try await call(platform, .post, "/signup", apikey: key, json: ["email": "grace@example.test", "password": Self.password],
                                        version: false)
            #expect(legacy.status == 422 && legacy.json["code"] as? Int == 422 && legacy.json["error_code"] as? String == "user_already_exists")
            #expect(legacy.json["msg"] as? String == "User already registered" && legacy.headers["X-Supabase-Api-Version"] == nil)

            let weak = try await call(platform, .post, "/signup", apikey: key, json: ["email": "weak@example.test", "password": "short"])
            #expect(weak.status == 422 && weak.code == "weak_password")
            #expect((weak.json["weak_password"] as? [String: Any])?["reasons"] as? [String] == ["length"])
            let common = try await call(platform, .post, "/signup", apikey: key, json: ["email": "weak@example.test", "password": "password1234"])
            #expect(common.status == 422 && (common.json["weak_password"] as? [String: Any])?["reasons"] as? [String] == ["pwned"])
            let anonymous = try await call(platform, .post, "/signup", apikey: key, json: ["data": [String: Any]()])
            #expect(anonymous.status == 422 && anonymous.code == "anonymous_provider_disabled")
            let phone = try await call(platform, .post, "/signup", apikey: key, json: ["phone": "+15555550100", "password": Self.password])
            #expect(phone.status == 400 && phone.code == "phone_provider_disabled")
            let badEmail = try await call(platform, .post, "/signup", apikey: key, json: ["email": "not-an-email", "password": Self.password])
            #expect(badEmail.status == 400 && badEmail.code == "validation_failed")
            let wrongType = try await call(platform, .post, "/signup", apikey: key, json: ["email": 42, "password": Self.password])
            #expect(wrongType.status == 400 && wrongType.code == "validation_failed")

            let wrong = try await signIn(platform, key, "grace@example.test", password: "not the passphrase at all")
            #expect(wrong.status == 400 && wrong.code == "invalid_credentials" && wrong.json["message"] as? String == "Invalid login credentials")
            let unknown = try await signIn(platform, key, "nobody@example.test")
            #expect(unknown.status == 400 && unknown.code == "invalid_credentials")
            let phoneLogin = try await call(platform, .post, "/token?grant_type=password", apikey: key, json: ["phone": "+15555550100", "password": "x"])
            #expect(phoneLogin.status == 422 && phoneLogin.code == "phone_provider_disabled")
            let grant = try await call(platform, .post, "/token?grant_type=magic", apikey: key, json: [:])
            #expect(grant.status == 400 && grant.code == "invalid_credentials")
            let pkce = try await call(platform, .post, "/token?grant_type=pkce", apikey: key, json: ["auth_code": "x", "code_verifier": "y"])
            #expect(pkce.status == 404 && pkce.code == "flow_state_not_found")

            // What is not enabled says so, with GoTrue's own codes.
            let otp = try await call(platform, .post, "/otp", apikey: key, json: ["email": "grace@example.test"])
            #expect(otp.status == 422 && otp.code == "email_provider_disabled")
            let enroll = try await call(platform, .post, "/factors", apikey: key, json: ["factor_type": "totp"])
            #expect(enroll.status == 422 && enroll.code == "mfa_totp_enroll_not_enabled")
            let enrollPhone = try await call(platform, .post, "/factors", apikey: key, json: ["factor_type": "phone", "phone": "+15555550100"])
            #expect(enrollPhone.status == 422 && enrollPhone.code == "mfa_phone_enroll_not_enabled")
            let enrollOther = try await call(platform, .post, "/factors", apikey: key, json: ["factor_type": "carrier-pigeon"])
            #expect(enrollOther.status == 400 && enrollOther.code == "validation_failed")
            let phoneOTP = try await call(platform, .post, "/otp", apikey: key, json: ["phone": "+15555550100", "channel": "sms"])
            #expect(phoneOTP.status == 400 && phoneOTP.code == "phone_provider_disabled")
            let oauthClient = try await call(platform, .get, "/admin/oauth/clients/" + UUID().uuidString, apikey: tenant.keys.secret)
            #expect(oauthClient.status == 404 && oauthClient.code == "feature_disabled")
            let sso = try await call(platform, .post, "/sso", apikey: key, json: ["domain": "example.test"])
            #expect(sso.status == 404 && sso.code == "saml_provider_disabled")
            let recover = try await call(platform, .post, "/recover", apikey: key, json: ["email": "grace@example.test"])
            #expect(recover.status == 422 && recover.code == "feature_disabled")
            let unlink = try await call(platform, .delete, "/user/identities/" + UUID().uuidString, apikey: key)
            #expect(unlink.status == 404 && unlink.code == "manual_linking_disabled")

            // `/user/identities/authorize` is its own route (GET): the router never hands it to
            // `/user/identities/{identity}`, so another method is 405 with `Allow: GET` alone
            // (it named DELETE too, the capture route's method; found by schemathesis).
            for method in [HTTPMethod.delete, .options] {
                let other = try await call(platform, method, "/user/identities/authorize", apikey: key)
                #expect(other.status == 405 && other.headers["Allow"] == "GET", "\(method)")
            }
            let patchIdentity = try await call(platform, .patch, "/user/identities/" + UUID().uuidString, apikey: key)
            #expect(patchIdentity.status == 405 && patchIdentity.headers["Allow"] == "DELETE")

            // An unrouted method or path under /auth/v1/ is GoTrue's error too (it was the
            // platform's `{"error":{…}}`), in the shape the request asks for; elsewhere it stays
            // the platform's.
            let patchUser = try await call(platform, .patch, "/user", apikey: key, json: [:])
            #expect(patchUser.status == 405 && patchUser.code == "method_not_allowed" && patchUser.headers["Allow"] == "GET, PUT")
            #expect(patchUser.headers["x-sb-error-code"] == "method_not_allowed" && patchUser.headers["X-Supabase-Api-Version"] == "2024-01-01")
            let legacyMethod = try await call(platform, .delete, "/token", apikey: key, version: false)
            #expect(legacyMethod.status == 405 && legacyMethod.json["code"] as? Int == 405)
            #expect(legacyMethod.json["error_code"] as? String == "method_not_allowed" && legacyMethod.headers["Allow"] == "POST")
            let nowhere = try await call(platform, .get, "/no/such/route", apikey: key)
            #expect(nowhere.status == 404 && nowhere.code == "not_found" && nowhere.json["message"] is String)
            let platformMethod = try await platform.client.execute(HTTPClientRequest(method: .delete, url: platform.url("auth") + "/v1/register"))
            #expect(platformMethod.status == 405 && platformMethod.errorEnvelope?.error.code == "method_not_allowed")

            // No key, or an unknown one: the gateway's words, still JSON.
            let noKey = try await call(platform, .post, "/signup", apikey: nil, json: ["email": "x@example.test", "password": Self.password])
            #expect(noKey.status == 401 && noKey.json["message"] as? String == "No API key found in request")
            let badKey = try await call(platform, .get, "/settings", apikey: "pk_" + String(repeating: "x", count: 40))
            #expect(badKey.status == 401 && badKey.json["message"] as? String == "Invalid API key")
        }
    }

    @Test("refresh rotates and ignores a stale bearer; the user updates themselves; logout scopes end the right sessions")
    func refreshUserAndLogout() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("gtr")
            let key = tenant.keys.publishable
            let first = try await signUp(platform, key, "lin@example.test", data: ["plan": "free", "theme": "dark"]).json
            let firstAccess = try #require(first["access_token"] as? String)
            let firstRefresh = try #require(first["refresh_token"] as? String)

            // supabase-py sends the user's (possibly expired) token as the bearer of a refresh.
            let refreshed = try await call(platform, .post, "/token?grant_type=refresh_token", apikey: key, bearer: "expired.user.token",
                                           json: ["refresh_token": firstRefresh])
            #expect(refreshed.status == 200)
            let rotated = try #require(refreshed.json["refresh_token"] as? String)
            #expect(rotated != firstRefresh)
            #expect(try Self.jwt(refreshed.json["access_token"] as? String ?? "").claims["session_id"] as? String
                == (try Self.jwt(firstAccess).claims["session_id"] as? String))
            let unknown = try await call(platform, .post, "/token?grant_type=refresh_token", apikey: key, json: ["refresh_token": "unknown-refresh-token"])
            #expect(unknown.status == 400 && unknown.code == "refresh_token_not_found")
            let short = try await call(platform, .post, "/token?grant_type=refresh_token", apikey: key, json: ["refresh_token": "short"])
            #expect(short.status == 400 && short.code == "validation_failed")
            // Reused after the grace window: the whole session ends.
            try platform.advanceClock(by: .seconds(30))
            let reused = try await call(platform, .post, "/token?grant_type=refresh_token", apikey: key, json: ["refresh_token": firstRefresh])
            #expect(reused.status == 400 && reused.code == "refresh_token_already_used")
            let ended = try await call(platform, .post, "/token?grant_type=refresh_token", apikey: key, json: ["refresh_token": rotated])
            #expect(ended.status == 400 && ended.code == "refresh_token_not_found")

            // Three sessions of one user.
            let a = try await signIn(platform, key, "lin@example.test").json
            let b = try await signIn(platform, key, "lin@example.test").json
            let c = try await signIn(platform, key, "lin@example.test").json
            let aToken = try #require(a["access_token"] as? String), bToken = try #require(b["access_token"] as? String)
            let cToken = try #require(c["access_token"] as? String)

            let me = try await call(platform, .get, "/user", apikey: key, bearer: aToken)
            #expect(me.status == 200 && me.json["email"] as? String == "lin@example.test")
            let merged = try await call(platform, .put, "/user", apikey: key, bearer: aToken, json: ["data": ["plan": "pro", "theme": NSNull()]])
            let mergedMetadata = try #require(merged.json["user_metadata"] as? [String: Any])
            #expect(merged.status == 200 && mergedMetadata["plan"] as? String == "pro" && mergedMetadata["theme"] == nil)
            #expect(mergedMetadata["email_verified"] as? Bool == true)
            let same = try await call(platform, .put, "/user", apikey: key, bearer: aToken, json: ["password": Self.password])
            #expect(same.status == 422 && same.code == "same_password")
            let admin = try await call(platform, .put, "/user", apikey: key, bearer: aToken, json: ["app_metadata": ["role": "boss"]])
            #expect(admin.status == 403 && admin.code == "not_admin")
            let noToken = try await call(platform, .get, "/user", apikey: key)
            #expect(noToken.status == 401 && noToken.code == "no_authorization")
            let keyAsToken = try await call(platform, .get, "/user", apikey: key, bearer: key)
            #expect(keyAsToken.status == 403 && keyAsToken.code == "bad_jwt")

            // `others` ends b and c, not a; `local` then ends a.
            let badScope = try await call(platform, .post, "/logout?scope=everyone", apikey: key, bearer: aToken)
            #expect(badScope.status == 400 && badScope.code == "validation_failed")
            #expect(try await call(platform, .post, "/logout?scope=others", apikey: key, bearer: aToken).status == 204)
            let gone = try await call(platform, .get, "/user", apikey: key, bearer: bToken)
            #expect(gone.status == 403 && gone.code == "session_not_found")
            #expect(try await call(platform, .get, "/user", apikey: key, bearer: cToken).code == "session_not_found")
            #expect(try await call(platform, .get, "/user", apikey: key, bearer: aToken).status == 200)
            #expect(try await call(platform, .post, "/logout?scope=local", apikey: key, bearer: aToken).status == 204)
            #expect(try await call(platform, .get, "/user", apikey: key, bearer: aToken).code == "session_not_found")

            // A global logout (the default) ends every session; an expired token is a bad JWT.
            let d = try await signIn(platform, key, "lin@example.test").json
            let e = try await signIn(platform, key, "lin@example.test").json
            #expect(try await call(platform, .post, "/logout", apikey: key, bearer: d["access_token"] as? String).status == 204)
            let eRefresh = try await call(platform, .post, "/token?grant_type=refresh_token", apikey: key, json: ["refresh_token": e["refresh_token"] ?? ""])
            #expect(eRefresh.code == "refresh_token_not_found")
            let f = try await signIn(platform, key, "lin@example.test").json
            try platform.advanceClock(by: .seconds(3600))
            let expired = try await call(platform, .get, "/user", apikey: key, bearer: f["access_token"] as? String)
            #expect(expired.status == 403 && expired.code == "bad_jwt")
        }
    }

    func refresh(_ platform: TestPlatform, _ key: String, _ token: Any?) async throws -> Answer {
        try await call(platform, .post, "/token?grant_type=refresh_token", apikey: key, json: ["refresh_token": token ?? ""])
    }

    @Test("a used refresh token inside the reuse window answers the same child, as GoTrue does; no second chain is forked")
    func reuseInGraceAnswersTheSameChild() async throws {
        try await withTestPlatform(provisioning: ["REFRESH_REUSE_GRACE_SECONDS": "10"]) { platform, _ in
            let key = try await platform.provisionTenant("gtg").keys.publishable
            let first = try await signUp(platform, key, "ada@example.test").json
            let child = try await refresh(platform, key, first["refresh_token"])
            #expect(child.status == 200)
            let childToken = try #require(child.json["refresh_token"] as? String)

            // A second tab, or a client that lost the answer, presents the used token again.
            try platform.advanceClock(by: .seconds(5))
            let again = try await refresh(platform, key, first["refresh_token"])
            #expect(again.status == 200 && again.json["refresh_token"] as? String == childToken)
            #expect(again.json["access_token"] as? String != nil)
            // One chain: the child rotates on; its own reuse later ends the session.
            let grandchild = try await refresh(platform, key, childToken)
            #expect(grandchild.status == 200 && grandchild.json["refresh_token"] as? String != childToken)
            try platform.advanceClock(by: .seconds(11))
            #expect(try await refresh(platform, key, first["refresh_token"]).code == "refresh_token_already_used")
            #expect(try await refresh(platform, key, grandchild.json["refresh_token"]).code == "refresh_token_not_found")
        }
    }

    @Test("an ended session's refresh token is 400 session_expired in GoTrue's words (timebox, inactivity); its access token 403 session_not_found")
    func sessionsExpire() async throws {
        try await withTestPlatform(provisioning: ["SESSION_TIMEBOX_SECONDS": "7200", "SESSION_INACTIVITY_TIMEOUT_SECONDS": "3600",
                                                  "ACCESS_TOKEN_TTL_SECONDS": "7200"]) { platform, _ in
            let key = try await platform.provisionTenant("gte").keys.publishable
            // Refreshed every 50 minutes: never idle for an hour, yet over at two hours.
            var session = try await signUp(platform, key, "eve@example.test").json
            for _ in 0..<2 {
                try platform.advanceClock(by: .seconds(3000))
                session = try await refresh(platform, key, session["refresh_token"]).json
                #expect(session["refresh_token"] as? String != nil)
            }
            try platform.advanceClock(by: .seconds(1201))
            let timeboxed = try await refresh(platform, key, session["refresh_token"])
            #expect(timeboxed.status == 400 && timeboxed.code == "session_expired")
            #expect(timeboxed.json["message"] as? String == "Invalid Refresh Token: Session Expired")
            let ended = try await call(platform, .get, "/user", apikey: key, bearer: session["access_token"] as? String)
            #expect(ended.status == 403 && ended.code == "session_not_found")

            // A new session left alone for an hour.
            let idle = try await signIn(platform, key, "eve@example.test").json
            try platform.advanceClock(by: .seconds(3000))
            #expect(try await call(platform, .get, "/user", apikey: key, bearer: idle["access_token"] as? String).status == 200)
            try platform.advanceClock(by: .seconds(601))
            let inactive = try await refresh(platform, key, idle["refresh_token"])
            #expect(inactive.status == 400 && inactive.code == "session_expired")
            #expect(inactive.json["message"] as? String == "Invalid Refresh Token: Session Expired (Inactivity)")
            #expect(try await call(platform, .get, "/user", apikey: key, bearer: idle["access_token"] as? String).code == "session_not_found")
        }
    }

    @Test("the admin API takes the secret key only: newest first with X-Total-Count and Link, metadata merges, bans, deletes")
    func admin() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("gta")
            let secret = tenant.keys.secret
            let publishable = tenant.keys.publishable

            let notAdmin = try await call(platform, .get, "/admin/users?page=&per_page=", apikey: publishable, bearer: publishable)
            #expect(notAdmin.status == 403 && notAdmin.code == "not_admin")
            let user = try await signUp(platform, publishable, "user@example.test").json
            let userToken = try #require(user["access_token"] as? String)
            let tokenAsAdmin = try await call(platform, .get, "/admin/users", apikey: secret, bearer: userToken)
            #expect(tokenAsAdmin.status == 403 && tokenAsAdmin.code == "not_admin")

            var created: [String] = []
            for index in 0..<3 {
                let answer = try await call(platform, .post, "/admin/users", apikey: secret, bearer: secret, json: [
                    "email": "member\(index)@example.test", "password": Self.password, "email_confirm": true,
                    "user_metadata": ["n": index], "app_metadata": ["tier": "gold", "provider": "forged"],
                ])
                #expect(answer.status == 200)
                #expect((answer.json["app_metadata"] as? [String: Any])?["provider"] as? String == "email")
                #expect((answer.json["app_metadata"] as? [String: Any])?["tier"] as? String == "gold")
                created.append(try #require(answer.json["id"] as? String))
            }
            let taken = try await call(platform, .post, "/admin/users", apikey: secret, json: ["email": "member0@example.test"])
            #expect(taken.status == 422 && taken.code == "email_exists")
            let noEmail = try await call(platform, .post, "/admin/users", apikey: secret, json: ["user_metadata": [String: Any]()])
            #expect(noEmail.status == 400 && noEmail.code == "validation_failed")

            let page = try await call(platform, .get, "/admin/users?page=1&per_page=2", apikey: secret, bearer: secret)
            #expect(page.status == 200 && page.json["aud"] as? String == "authenticated")
            #expect((page.json["users"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [created[2], created[1]])
            #expect(page.headers["X-Total-Count"] == "4")
            #expect(page.headers["Link"] == "</auth/v1/admin/users?page=2&per_page=2>; rel=\"next\", </auth/v1/admin/users?page=2&per_page=2>; rel=\"last\"")
            let empty = try await call(platform, .get, "/admin/users?page=&per_page=", apikey: secret)
            #expect(empty.status == 200 && (empty.json["users"] as? [Any])?.count == 4)
            let badPage = try await call(platform, .get, "/admin/users?page=x", apikey: secret)
            #expect(badPage.status == 400 && badPage.code == "validation_failed")

            let id = created[0]
            #expect(try await call(platform, .get, "/admin/users/" + id, apikey: secret).json["email"] as? String == "member0@example.test")
            let missing = try await call(platform, .get, "/admin/users/" + UUID().uuidString.lowercased(), apikey: secret)
            #expect(missing.status == 404 && missing.code == "user_not_found")
            let notUUID = try await call(platform, .get, "/admin/users/nope", apikey: secret)
            #expect(notUUID.status == 404)

            let updated = try await call(platform, .put, "/admin/users/" + id, apikey: secret, json: [
                "user_metadata": ["n": NSNull(), "nick": "m0"], "app_metadata": ["tier": "platinum"], "role": "editor",
            ])
            #expect(updated.status == 200 && updated.json["role"] as? String == "editor")
            #expect(updated.json["user_metadata"] as? [String: String] == ["nick": "m0"])
            #expect((updated.json["app_metadata"] as? [String: Any])?["tier"] as? String == "platinum")
            let signedIn = try await signIn(platform, publishable, "member0@example.test")
            #expect(signedIn.status == 200)
            let claims = try Self.jwt(signedIn.json["access_token"] as? String ?? "").claims
            #expect(claims["role"] as? String == "editor" && (claims["app_metadata"] as? [String: Any])?["tier"] as? String == "platinum")

            // A ban ends the sessions and refuses sign-ins until lifted.
            let banned = try await call(platform, .put, "/admin/users/" + id, apikey: secret, json: ["ban_duration": "24h"])
            #expect(banned.status == 200 && banned.json["banned_until"] is String)
            let refused = try await signIn(platform, publishable, "member0@example.test")
            #expect(refused.status == 400 && refused.code == "user_banned")
            let refreshRefused = try await call(platform, .post, "/token?grant_type=refresh_token", apikey: publishable,
                                                json: ["refresh_token": signedIn.json["refresh_token"] ?? ""])
            #expect(refreshRefused.status == 400)
            let badBan = try await call(platform, .put, "/admin/users/" + id, apikey: secret, json: ["ban_duration": "forever"])
            #expect(badBan.status == 400 && badBan.code == "validation_failed")
            #expect(try await call(platform, .put, "/admin/users/" + id, apikey: secret, json: ["ban_duration": "none"]).json["banned_until"] == nil)
            #expect(try await signIn(platform, publishable, "member0@example.test").status == 200)

            let deleted = try await call(platform, .delete, "/admin/users/" + id, apikey: secret, json: ["should_soft_delete": false])
            #expect(deleted.status == 200 && deleted.json.isEmpty)
            #expect(try await signIn(platform, publishable, "member0@example.test").code == "invalid_credentials")
            #expect(try await call(platform, .delete, "/admin/users/" + id, apikey: secret).code == "user_not_found")
            #expect(try await call(platform, .get, "/admin/users/\(created[1])/factors", apikey: secret).status == 200)
        }
    }

    @Test("the project comes from the apikey or the host: keys and tokens of different projects, or a host naming another, are refused")
    func projectResolution() async throws {
        try await withTestPlatform { platform, _ in
            let one = try await platform.provisionTenant("gt1")
            let two = try await platform.provisionTenant("gt2")
            let oneUser = try await signUp(platform, one.keys.publishable, "shared@example.test").json
            let oneToken = try #require(oneUser["access_token"] as? String)

            // Another project's key with this project's token.
            let mismatch = try await call(platform, .get, "/user", apikey: two.keys.publishable, bearer: oneToken)
            #expect(mismatch.status == 403 && mismatch.code == "tenant_mismatch")
            // The user exists in one project only.
            #expect(try await signIn(platform, two.keys.publishable, "shared@example.test").code == "invalid_credentials")
            let others = try await call(platform, .get, "/admin/users", apikey: two.keys.secret)
            #expect((others.json["users"] as? [Any])?.isEmpty == true)
            let oneID = try #require(oneUser["user"] as? [String: Any])["id"] as? String
            #expect(try await call(platform, .get, "/admin/users/" + (oneID ?? ""), apikey: two.keys.secret).code == "user_not_found")

            // The host names the project: with a matching key it is served, with another project's
            // key refused; the JWKS needs no key when the host names the project.
            let host = one.slug + ".platform.test"
            #expect(try await call(platform, .get, "/settings", apikey: one.keys.publishable, host: host).status == 200)
            let wrongHost = try await call(platform, .get, "/settings", apikey: two.keys.publishable, host: host)
            #expect(wrongHost.status == 403 && wrongHost.code == "tenant_mismatch")
            let jwks = try await call(platform, .get, "/.well-known/jwks.json", apikey: nil, host: host)
            #expect(jwks.status == 200 && (jwks.json["keys"] as? [Any])?.isEmpty == false)
            #expect(try await call(platform, .get, "/.well-known/jwks.json", apikey: nil).status == 401)
            #expect(try await call(platform, .get, "/settings", apikey: nil, host: host).status == 401)
            let nowhere = try await call(platform, .get, "/.well-known/jwks.json", apikey: nil, host: "nosuchproject.platform.test")
            #expect(nowhere.status == 404)
        }
    }
}
