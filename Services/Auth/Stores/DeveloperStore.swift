import Foundation
import Postgres

/// Developer accounts (`auth.developers`): registration inserts them, sign-ins and `GET /v1/me`
/// read them.
struct DeveloperStore: Sendable {
    let pool: PostgresPool

    struct Developer: Sendable {
        var id: UUID
        var email: String
        var passwordHash: String
        var createdAt: Date
    }

    /// Another developer has the email (compared case-insensitively).
    struct EmailTaken: Error {}

    /// Inserts the developer, then runs `body` in the same transaction (accepting an invite,
    /// asking provisioning for the project), so the row commits only if `body` succeeds.
    func insert<Result: Sendable>(
        id: UUID, email: String, passwordHash: String,
        then body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await pool.withTransaction { tx in
                try await tx.query("""
                    INSERT INTO auth.developers (id, email, email_normalized, password_hash)
                    VALUES (\(id), \(email), \(email.lowercased()), \(passwordHash))
                    """)
                return try await body(tx)
            }
        } catch let error as PostgresError where error.kind == .uniqueViolation && error.constraint == "developers_email_normalized_key" {
            throw EmailTaken()
        }
    }

    func developer(email: String) async throws -> Developer? {
        try await pool.query("""
            SELECT id, email, password_hash, created_at FROM auth.developers WHERE email_normalized = \(email.lowercased())
            """).first.map(Self.developer)
    }

    func developer(id: UUID) async throws -> Developer? {
        try await pool.query("SELECT id, email, password_hash, created_at FROM auth.developers WHERE id = \(id)").first.map(Self.developer)
    }

    private static func developer(_ row: PostgresRow) throws -> Developer {
        Developer(id: try row.decode("id"), email: try row.decode("email"), passwordHash: try row.decode("password_hash"),
                  createdAt: try row.decode("created_at"))
    }
}
