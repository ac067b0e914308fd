import Foundation
import JWTKit

/// The claims of a developer's access token: who (`sub`), which session (`sid`), until when.
struct AccessClaims: JWTPayload {
    var sub: SubjectClaim
    var sid: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var iss: IssuerClaim
    var aud: AudienceClaim

    init(developer: UUID, session: UUID, issuedAt: Date, lifetime: Duration) {
        sub = SubjectClaim(value: developer.uuidString.lowercased())
        sid = session.uuidString.lowercased()
        iat = IssuedAtClaim(value: issuedAt)
        exp = ExpirationClaim(value: issuedAt.addingTimeInterval(Double(lifetime.components.seconds)))
        iss = IssuerClaim(value: TokenSettings.issuer)
        aud = AudienceClaim(value: [TokenSettings.audience])
    }

    /// Expiry against the system clock here; `BearerAuthenticator` checks it against auth's own
    /// clock too, which tests move forward.
    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        guard iss.value == TokenSettings.issuer else { throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "wrong issuer") }
        try aud.verifyIntendedAudience(includes: TokenSettings.audience)
    }
}
