import Foundation
import JWTKit
import ServiceKit

/// The claims of a tenant end user's access token, signed by auth with the tenant's own ES256
/// key (published at `GET /v1/tenants/{slug}/.well-known/jwks.json`), so realtime and storage
/// verify it offline.
public struct TenantUserClaims: JWTPayload {
    /// The user's id in the tenant's `users` table.
    public var sub: SubjectClaim
    /// The session (auth checks it is live; offline verifiers cannot, so they accept the token
    /// until it expires).
    public var sid: String
    /// The tenant's slug: which tenant's keys verify this token.
    public var ref: String
    /// The tenant's id.
    public var tid: String
    /// The user's role in the tenant (`authenticated` unless an admin set another).
    public var role: String
    public var email: String
    public var iat: IssuedAtClaim
    public var exp: ExpirationClaim
    public var iss: IssuerClaim
    public var aud: AudienceClaim

    public static let audience = "authenticated"

    public static func issuer(slug: String) -> String { "platform-auth/tenants/" + slug }

    public init(user: UUID, session: UUID, slug: String, tenant: UUID, role: String, email: String, issuedAt: Date, lifetime: Duration) {
        sub = SubjectClaim(value: user.uuidString.lowercased())
        sid = session.uuidString.lowercased()
        ref = slug
        tid = tenant.uuidString.lowercased()
        self.role = role
        self.email = email
        iat = IssuedAtClaim(value: issuedAt)
        exp = ExpirationClaim(value: issuedAt.addingTimeInterval(Double(lifetime.components.seconds)))
        iss = IssuerClaim(value: Self.issuer(slug: slug))
        aud = AudienceClaim(value: [Self.audience])
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        try aud.verifyIntendedAudience(includes: Self.audience)
        guard iss.value == Self.issuer(slug: ref) else {
            throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "issuer does not match the tenant")
        }
    }

    public var userID: UUID? { UUID(uuidString: sub.value) }
    public var sessionID: UUID? { UUID(uuidString: sid) }

    /// The tenant a token claims to come from, read without verifying anything: only to pick
    /// the keys that must then verify it. Nil when the token is not a readable JWT with `ref`.
    public static func unverifiedTenant(of token: String) async -> String? {
        struct Reference: JWTPayload {
            var ref: String
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        return try? await JWTKeyCollection().unverified(token, as: Reference.self).ref
    }
}
