import Contracts
import Foundation
import JWTKit
import ServiceKit
import TenantKit

/// Tenant credentials as auth checks them: from its own tables and keys, with no cache, so a
/// revoked key, a logout or a deleted user takes effect at once on auth's own routes. A user
/// token's expiry is judged by auth's clock (`now`), the one that stamped it.
struct LocalTenantCredentials: TenantCredentialResolver {
    let apiKeys: APIKeyStore
    let registry: TenantRegistry
    let keyring: SigningKeyring
    let sessions: SessionStore
    let now: @Sendable () -> Date

    func apiKey(sha256: String) async throws -> APIKeyIdentity? {
        try await apiKeys.identity(sha256: sha256)
    }

    /// Verified with the keys of the tenant the token names, then checked against a live session.
    func userClaims(_ token: String) async throws -> TenantUserClaims? {
        guard let slug = await TenantUserClaims.unverifiedTenant(of: token), ProjectSlug.isValid(slug),
              let tenant = try await registry.tenant(slug: slug)
        else { return nil }
        let claims: TenantUserClaims
        do {
            claims = try await keyring.tenant(tenant.id).verify(token, as: TenantUserClaims.self)
            try claims.exp.verifyNotExpired(currentDate: now())
        } catch is JWTError {
            return nil  // a bad token; a database error is not, and propagates
        }
        guard claims.tid == tenant.id.uuidString.lowercased(),
              let session = claims.sessionID, try await sessions.isLive(session)
        else { return nil }
        return claims
    }
}
