import Contracts
import Foundation
import Postgres
import ServiceKit

/// Invites (`auth.invites`), stored by token hash: the token itself is shown once, in
/// `create`'s answer. Registration reads an invite before any work (`find`) and again under a
/// row lock inside the developer's transaction (`find(_:lockingOn:)`, then `markAccepted`), so
/// an invite is used exactly once and a failed registration leaves it unused.
struct InviteStore: Sendable {
    let pool: PostgresPool

    /// What registration checks of an invite.
    struct Stored: Sendable {
        var email: String
        var expiresAt: Date
        var accepted: Bool
    }

    func create(email: String, invitedBy: UUID?, expiresAt: Date) async throws -> Invite {
        let id = UUID()
        let token = "inv_" + SecureToken.random()
        let row = try await pool.query("""
            INSERT INTO auth.invites (id, email_normalized, token_sha256, invited_by, expires_at)
            VALUES (\(id), \(email.lowercased()), \(SecureToken.sha256Hex(token)), \(invitedBy), \(expiresAt))
            RETURNING expires_at
            """).single()
        return Invite(id: id, email: email.lowercased(), inviteToken: token, expiresAt: try row.decode("expires_at"))
    }

    func find(_ token: String) async throws -> Stored? {
        try await pool.withConnection { connection in try await Self.find(token, on: connection, locking: false) }
    }

    /// The invite, locked until the caller's transaction ends.
    func find(_ token: String, lockingOn tx: PostgresConnection) async throws -> Stored? {
        try await Self.find(token, on: tx, locking: true)
    }

    /// Marks the invite accepted by `developer`, inside the caller's transaction.
    func markAccepted(_ token: String, by developer: UUID, on tx: PostgresConnection) async throws {
        try await tx.query("UPDATE auth.invites SET accepted_at = now(), accepted_by = \(developer) WHERE token_sha256 = \(SecureToken.sha256Hex(token))")
    }

    private static func find(_ token: String, on connection: PostgresConnection, locking: Bool) async throws -> Stored? {
        let rows = try await connection.query("""
            SELECT email_normalized, expires_at, accepted_at IS NOT NULL AS accepted
            FROM auth.invites WHERE token_sha256 = \(SecureToken.sha256Hex(token)) \(unescaped: locking ? "FOR UPDATE" : "")
            """)
        return try rows.first.map {
            Stored(email: try $0.decode("email_normalized"), expiresAt: try $0.decode("expires_at"), accepted: try $0.decode("accepted"))
        }
    }
}
