import Foundation
import Postgres

/// Every tenant's S3 access keys (`storage.s3_credentials`, migration 0005, which says why the
/// secret is kept as issued): issued, listed and revoked per tenant, and looked up by key id
/// for each signed request.
struct S3CredentialStore: Sendable {
    let pool: PostgresPool

    /// An access key as the developer API shows it: never its secret, except once at creation.
    struct Credential: Sendable, Encodable, Equatable {
        var id: UUID
        var accessKeyID: String
        var description: String
        var createdAt: Date
        var revokedAt: Date?

        enum CodingKeys: String, CodingKey {
            case id, description
            case accessKeyID = "access_key_id"
            case createdAt = "created_at"
            case revokedAt = "revoked_at"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id.uuidString.lowercased(), forKey: .id)
            try container.encode(accessKeyID, forKey: .accessKeyID)
            try container.encode(description, forKey: .description)
            try container.encode(createdAt, forKey: .createdAt)
            // Present when null: a client can tell "active" from "not said".
            try container.encode(revokedAt, forKey: .revokedAt)
        }
    }

    /// An active key's tenant and secret: what verifying a signature needs.
    struct Active: Sendable {
        var tenant: UUID
        var secret: String
    }

    private static let columns = "id, access_key_id, description, created_at, revoked_at"

    /// A new key: 32 hex digits of id and 64 of secret (as Supabase issues them), from the
    /// system's CSPRNG. The secret is returned here and never again.
    func issue(tenant: UUID, description: String) async throws -> (credential: Credential, secret: String) {
        let accessKeyID = Self.randomHex(bytes: 16), secret = Self.randomHex(bytes: 32)
        let row = try await pool.query("""
            INSERT INTO storage.s3_credentials (id, tenant_id, access_key_id, secret_access_key, description)
            VALUES (\(UUID()), \(tenant), \(accessKeyID), \(secret), \(description))
            RETURNING \(unescaped: Self.columns)
            """).first
        guard let row else { throw PostgresError(.other, message: "INSERT … RETURNING returned no row") }
        return (try Self.credential(row), secret)
    }

    /// The tenant's keys, revoked ones included, oldest first.
    func list(tenant: UUID) async throws -> [Credential] {
        try await pool.query("""
            SELECT \(unescaped: Self.columns) FROM storage.s3_credentials WHERE tenant_id = \(tenant) ORDER BY created_at, id
            """).map(Self.credential)
    }

    /// Revokes a key of the tenant (its secret is wiped); false when the tenant has no such
    /// active key. Takes effect on the next request: keys are not cached.
    func revoke(id: UUID, tenant: UUID) async throws -> Bool {
        try await !pool.query("""
            UPDATE storage.s3_credentials SET revoked_at = now(), secret_access_key = NULL
            WHERE id = \(id) AND tenant_id = \(tenant) AND revoked_at IS NULL
            RETURNING id
            """).isEmpty
    }

    /// The active key with this id; nil when unknown or revoked.
    func active(accessKeyID: String) async throws -> Active? {
        guard let row = try await pool.query("""
            SELECT tenant_id, secret_access_key FROM storage.s3_credentials
            WHERE access_key_id = \(accessKeyID) AND revoked_at IS NULL
            """).first else { return nil }
        return Active(tenant: try row.decode("tenant_id"), secret: try row.decode("secret_access_key"))
    }

    private static func credential(_ row: PostgresRow) throws -> Credential {
        Credential(id: try row.decode("id"), accessKeyID: try row.decode("access_key_id"), description: try row.decode("description"),
                   createdAt: try row.decode("created_at"), revokedAt: try row.decode("revoked_at"))
    }

    static func randomHex(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }
}
