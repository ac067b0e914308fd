import Crypto
import Foundation
import Postgres

/// Each tenant's URL-signing key (`storage.tenants.url_signing_key`, made with the tenant).
struct SigningKeyStore: Sendable {
    let pool: PostgresPool

    /// The tenant's key; nil when the tenant is not (or no longer) registered.
    func key(tenant: UUID) async throws -> SymmetricKey? {
        let rows = try await pool.query("SELECT url_signing_key FROM storage.tenants WHERE id = \(tenant)")
        guard let row = rows.first else { return nil }
        return SymmetricKey(data: Data(try row.decode("url_signing_key", as: String.self).utf8))
    }
}
