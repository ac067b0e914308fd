import Contracts
import Foundation
import HTTPClient
import Postgres
import ServiceClients
import TestSupport
import Testing

/// Invite-only registration on the four services (`REGISTRATION_MODE=invite_only`).
@Suite("Invites", .serialized)
struct InviteTests {
    static let password = "correct horse battery"

    func register(_ platform: TestPlatform, _ email: String, invite: String?) async throws -> HTTPClientResponse {
        let body = RegisterRequest(email: email, password: Self.password, projectName: "Invited", slug: TestDatabase.uniqueName("inv"), inviteToken: invite)
        return try await platform.client.execute(HTTPClientRequest(
            method: .post, url: platform.url("auth") + "/v1/register", body: Array(try JSONEncoder().encode(body))))
    }

    func invite(_ platform: TestPlatform, _ email: String, bearer: String? = nil) async throws -> HTTPClientResponse {
        var headers = bearer.map { HTTPClientHeaders([("Authorization", "Bearer " + $0)]) } ?? platform.tokenHeaders
        headers.add(name: "Content-Type", value: "application/json")
        let path = bearer == nil ? "/internal/v1/invites" : "/v1/invites"
        return try await platform.client.execute(HTTPClientRequest(
            method: .post, url: platform.url("auth") + path, headers: headers, body: Array(try JSONEncoder().encode(InviteRequest(email: email)))))
    }

    @Test("invite-only: no invite → 403 and nothing created; an operator's invite lets the first developer in, who invites the next; invites are single use and expire")
    func inviteOnlyRegistration() async throws {
        try await withTestPlatform(provisioning: ["REGISTRATION_MODE": "invite_only", "INVITE_TTL_HOURS": "1"]) { platform, url in
            let first = TestDatabase.uniqueName("first") + "@example.test"
            let refused = try await register(platform, first, invite: nil)
            #expect(refused.status == 403 && refused.errorEnvelope?.error.code == "invite_required")
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM auth.developers") == 0)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.projects") == 0)
            }

            // The operator invites the first developer.
            let operatorInvite = try await invite(platform, first).decode(Invite.self)
            #expect(operatorInvite.inviteToken.hasPrefix("inv_"))
            let wrongEmail = try await register(platform, "someone_else_" + first, invite: operatorInvite.inviteToken)
            #expect(wrongEmail.status == 403 && wrongEmail.errorEnvelope?.error.code == "invite_invalid")
            #expect(try await register(platform, first, invite: operatorInvite.inviteToken).status == 202)
            let reused = try await register(platform, first, invite: operatorInvite.inviteToken)
            #expect(reused.status == 410 && reused.errorEnvelope?.error.code == "invite_used")

            // The developer signs in and invites a colleague, who registers with it.
            let tokens = try await platform.client.execute(HTTPClientRequest(
                method: .post, url: platform.url("auth") + "/v1/token?grant_type=password",
                body: Array(try JSONEncoder().encode(PasswordGrant(email: first, password: Self.password))))).decode(TokenResponse.self)
            let second = TestDatabase.uniqueName("second") + "@example.test"
            let created = try await invite(platform, second, bearer: tokens.accessToken)
            #expect(created.status == 201)
            let colleagueInvite = try created.decode(Invite.self)
            #expect(try await invite(platform, second, bearer: "not-a-token").status == 401)
            let joined = try await register(platform, second, invite: colleagueInvite.inviteToken)
            #expect(joined.status == 202)
            let colleague = try #require(try joined.decode(ProjectAccepted.self).developerId)

            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await pool.scalar("""
                    SELECT count(*)::int8 FROM auth.invites WHERE id = \(colleagueInvite.id) AND accepted_by = \(colleague)
                      AND invited_by = \(tokens.user.id) AND accepted_at IS NOT NULL
                    """) == 1)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM auth.invites WHERE token_sha256 LIKE 'inv_%'") == 0)
            }

            // An invite is refused once auth's clock has passed its lifetime (INVITE_TTL_HOURS).
            let third = TestDatabase.uniqueName("third") + "@example.test"
            let late = try await invite(platform, third).decode(Invite.self)
            try platform.advanceClock(by: .seconds(3600 + 1))
            let expired = try await register(platform, third, invite: late.inviteToken)
            #expect(expired.status == 410 && expired.errorEnvelope?.error.code == "invite_expired")
        }
    }

    @Test("a registration that fails after the invite check leaves the invite unused")
    func failedRegistrationKeepsInvite() async throws {
        try await withTestPlatform(provisioning: ["REGISTRATION_MODE": "invite_only"]) { platform, _ in
            let email = TestDatabase.uniqueName("keep") + "@example.test"
            let token = try await invite(platform, email).decode(Invite.self).inviteToken
            await platform.stop("provisioning")
            #expect(try await register(platform, email, invite: token).status == 503)
            try await platform.start(["provisioning"])
            #expect(try await register(platform, email, invite: token).status == 202)
        }
    }
}
