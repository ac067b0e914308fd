import Foundation
import JWTKit

/// The claims of a developer's access token: who (`sub`), which session (`sid`), until when.
/// Auth signs them; auth and provisioning verify them (provisioning offline, against auth's
/// JWKS, plus a session check).
public struct DeveloperAccessClaims: JWTPayload {
    public static let issuer = "platform-auth"
    public static let audience = "platform"

    public var sub: SubjectClaim
    public var sid: String
    public var iat: IssuedAtClaim
    public var exp: ExpirationClaim
    public var iss: IssuerClaim
    public var aud: AudienceClaim

    public init(developer: UUID, session: UUID, issuedAt: Date, lifetime: Duration) {
        sub = SubjectClaim(value: developer.uuidString.lowercased())
        sid = session.uuidString.lowercased()
        iat = IssuedAtClaim(value: issuedAt)
        exp = ExpirationClaim(value: issuedAt.addingTimeInterval(Double(lifetime.components.seconds)))
        iss = IssuerClaim(value: Self.issuer)
        aud = AudienceClaim(value: [Self.audience])
    }

    /// The developer and the session, when both claims are UUIDs.
    public var developer: UUID? { UUID(uuidString: sub.value) }
    public var session: UUID? { UUID(uuidString: sid) }

    /// Expiry against the system clock here; auth's `BearerAuthenticator` checks it against
    /// auth's own clock too, which tests move forward.
    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        guard iss.value == Self.issuer else { throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "wrong issuer") }
        try aud.verifyIntendedAudience(includes: Self.audience)
    }
}
