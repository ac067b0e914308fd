import Contracts
import Foundation
import Hummingbird
import Postgres
import ServiceKit

/// Invites, stored by token hash. Checked before any work (`check`) and accepted, under a row
/// lock, in the same transaction that creates the developer (`accept`), so an invite is used
/// exactly once and a failed registration leaves it unused.
struct InviteStore: Sendable {
    let pool: PostgresPool
    let lifetime: Duration

    func create(email: String, invitedBy: UUID?) async throws -> Invite {
        let id = UUID()
        let token = "inv_" + SecureToken.random()
        let row = try await pool.query("""
            INSERT INTO auth.invites (id, email_normalized, token_sha256, invited_by, expires_at)
            VALUES (\(id), \(email.lowercased()), \(SecureToken.sha256Hex(token)), \(invitedBy),
                    now() + make_interval(secs => \(Double(lifetime.components.seconds))))
            RETURNING expires_at
            """).single()
        return Invite(id: id, email: email.lowercased(), inviteToken: token, expiresAt: try row.decode("expires_at"))
    }

    /// Throws the answer a registration with this token gets when the invite cannot be used.
    func check(_ token: String, email: String) async throws {
        try await pool.withConnection { connection in
            try Self.validate(try await Self.find(token, on: connection, locking: false), email: email)
        }
    }

    /// Marks the invite accepted by `developer`, inside the caller's transaction.
    func accept(_ token: String, email: String, developer: UUID, on tx: PostgresConnection) async throws {
        let invite = try await Self.find(token, on: tx, locking: true)
        try Self.validate(invite, email: email)
        try await tx.query("UPDATE auth.invites SET accepted_at = now(), accepted_by = \(developer) WHERE token_sha256 = \(SecureToken.sha256Hex(token))")
    }

    private struct Row {
        var email: String
        var expired: Bool
        var accepted: Bool
    }

    private static func find(_ token: String, on connection: PostgresConnection, locking: Bool) async throws -> Row? {
        let rows = try await connection.query("""
            SELECT email_normalized, expires_at <= now() AS expired, accepted_at IS NOT NULL AS accepted
            FROM auth.invites WHERE token_sha256 = \(SecureToken.sha256Hex(token)) \(unescaped: locking ? "FOR UPDATE" : "")
            """)
        return try rows.first.map { Row(email: try $0.decode("email_normalized"), expired: try $0.decode("expired"), accepted: try $0.decode("accepted")) }
    }

    private static func validate(_ invite: Row?, email: String) throws {
        guard let invite, invite.email == email.lowercased() else {
            throw APIError(.forbidden, code: "invite_invalid", message: "The invite is not valid for this email address.")
        }
        guard !invite.accepted else { throw APIError(.gone, code: "invite_used", message: "The invite was already used.") }
        guard !invite.expired else { throw APIError(.gone, code: "invite_expired", message: "The invite has expired.") }
    }
}

/// `POST /v1/invites` (bearer: a signed-in developer invites a colleague) and
/// `POST /internal/v1/invites` (service token: an operator invites, e.g. the first developer of
/// an invite-only platform). Both answer 201 with the invite and its token, shown once.
struct InvitesController: Sendable {
    let store: InviteStore
    let authenticator: BearerAuthenticator

    func addRoutes(to router: Router<PlatformRequestContext>, internal internalGroup: RouterGroup<PlatformRequestContext>) {
        router.post("/v1/invites") { request, context in
            let inviter = try await authenticator.developerID(request)
            return try await create(request, context: context, invitedBy: inviter)
        }
        internalGroup.post("/v1/invites") { request, context in
            try await create(request, context: context, invitedBy: nil)
        }
    }

    private func create(_ request: Request, context: PlatformRequestContext, invitedBy: UUID?) async throws -> Response {
        let input = try await request.decodeJSON(as: InviteRequest.self, context: context)
        let email = input.email.trimmingCharacters(in: .whitespacesAndNewlines)
        guard RegistrationController.isPlausibleEmail(email) else {
            throw APIError.validation(field: "email", "The email address is not valid.")
        }
        let invite = try await store.create(email: email, invitedBy: invitedBy)
        context.logger.info("invite created", metadata: ["invite.id": "\(invite.id)"])
        return try jsonResponse(invite, status: .created, headers: [.cacheControl: "no-store"])
    }
}
