import Contracts
import Foundation
import JWTKit
import ServiceKit

/// The claims of a tenant end user's access token, signed by auth with the tenant's own ES256
/// key (published at `GET /v1/tenants/{slug}/.well-known/jwks.json` and
/// `GET /auth/v1/.well-known/jwks.json`), so realtime and storage verify it offline.
///
/// Besides the platform's own claims (`sid`, `ref`, `tid`), a token carries the ones Supabase's
/// clients read from a GoTrue token (`session_id`, `aal`, `amr` as a list of objects,
/// `is_anonymous`, `phone`, `app_metadata`, `user_metadata`); they are optional when decoding,
/// so a token minted before they existed still verifies until it expires.
public struct TenantUserClaims: JWTPayload {
    /// One authentication method of the session, as GoTrue's `amr` lists them.
    public struct AuthenticationMethod: Codable, Sendable, Equatable {
        public var method: String
        /// When the method succeeded (the session's start), in whole seconds since 1970.
        public var timestamp: Int

        public init(method: String, timestamp: Int) {
            self.method = method
            self.timestamp = timestamp
        }
    }

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
    /// GoTrue's claims: `session_id` is `sid` again, under the name Supabase's clients read.
    public var gotrueSessionID: String?
    public var aal: String?
    public var amr: [AuthenticationMethod]?
    public var isAnonymous: Bool?
    public var phone: String?
    public var appMetadata: JSONValue?
    public var userMetadata: JSONValue?

    enum CodingKeys: String, CodingKey {
        case sub, sid, ref, tid, role, email, iat, exp, iss, aud, aal, amr, phone
        case gotrueSessionID = "session_id"
        case isAnonymous = "is_anonymous"
        case appMetadata = "app_metadata"
        case userMetadata = "user_metadata"
    }

    public static let audience = "authenticated"

    public static func issuer(slug: String) -> String { "platform-auth/tenants/" + slug }

    /// `issuedAt` and `sessionStarted` are cut to whole seconds, as JWT dates are written.
    public init(user: UUID, session: UUID, slug: String, tenant: UUID, role: String, email: String, issuedAt: Date, lifetime: Duration,
                sessionStarted: Date? = nil, appMetadata: JSONValue = .emptyObject, userMetadata: JSONValue = .emptyObject) {
        let issuedAt = Date(timeIntervalSince1970: issuedAt.timeIntervalSince1970.rounded(.down))
        sub = SubjectClaim(value: user.uuidString.lowercased())
        sid = session.uuidString.lowercased()
        gotrueSessionID = sid
        aal = "aal1"
        amr = [AuthenticationMethod(method: "password", timestamp: Int((sessionStarted ?? issuedAt).timeIntervalSince1970))]
        isAnonymous = false
        phone = ""
        self.appMetadata = appMetadata
        self.userMetadata = userMetadata
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
