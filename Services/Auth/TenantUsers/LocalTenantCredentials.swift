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

    /// What a user token is, as auth's routes need to tell it: GoTrue's answers differ for a
    /// token that does not verify and one whose session has ended.
    enum TokenCheck: Sendable {
        case valid(TenantUserClaims)
        /// Malformed, of no known tenant, wrongly signed, expired: why, for the answer.
        case invalid(String)
        /// A good token whose session was ended (logout, new password, ban, deleted user, or
        /// past its timebox or inactivity timeout).
        case sessionEnded
    }

    /// Verified with the keys of the tenant the token names, then checked against a live session.
    func userClaims(_ token: String) async throws -> TenantUserClaims? {
        if case .valid(let claims) = try await check(token) { claims } else { nil }
    }

    func check(_ token: String) async throws -> TokenCheck {
        guard let slug = await TenantUserClaims.unverifiedTenant(of: token), ProjectSlug.isValid(slug),
              let tenant = try await registry.tenant(slug: slug)
        else { return .invalid("the token names no project") }
        let claims: TenantUserClaims
        do {
            claims = try await keyring.tenant(tenant.id).verify(token, as: TenantUserClaims.self)
            try claims.exp.verifyNotExpired(currentDate: now())
        } catch let error as JWTError {
            // A bad token; a database error is not, and propagates.
            return .invalid(error.errorType == .claimVerificationFailure ? "token has invalid claims: token is expired" : "signature is invalid")
        }
        guard claims.tid == tenant.id.uuidString.lowercased(), let session = claims.sessionID else { return .invalid("token has invalid claims") }
        guard try await sessions.isLive(session, at: now()) else { return .sessionEnded }
        return .valid(claims)
    }
}
