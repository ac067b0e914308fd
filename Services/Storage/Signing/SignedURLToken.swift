import Crypto
import Foundation
import ServiceKit

/// The `token` of a signed URL (docs/protocols/storage-reference.md §4): a compact JWS, HS256
/// with the project's own URL-signing key (`SigningKeyStore`), as Supabase's:
///
/// ```
/// {"url":"<bucket>/<name>","scope":"download","ref":"<project>","iat":…,"exp":…}
/// {"url":"<bucket>/<name>","scope":"upload","ref":"<project>","owner":"<user>","upsert":false,"iat":…,"exp":…}
/// ```
///
/// The clients never decode it. `ref` is the platform's addition: a signed URL is opened without
/// an `apikey` (a browser following a link), and the gateway's host may name no project, so the
/// token names its project — read unverified only to pick the key it must then verify with.
struct SignedURLToken: Sendable, Equatable {
    enum Scope: String, Codable, Sendable {
        case download
        case upload
    }

    /// `<bucket>/<object name>`, the name NFC-normalised as stored.
    var url: String
    var scope: Scope
    /// The project's slug.
    var project: String
    /// For uploads: the user who will own the object (nil: the project itself).
    var owner: UUID?
    /// For uploads: whether an existing object is replaced.
    var upsert: Bool?
    /// Seconds since 1970.
    var issuedAt: Int64
    var expiresAt: Int64

    /// Why a token is refused, in the order checked.
    enum Refusal: Error, Equatable {
        /// Not a compact HS256 JWS of these claims.
        case malformed
        /// Its signature does not verify with the project's key: tampered, or another key's.
        case badSignature
        case expired
        /// A download token used to upload, or the reverse.
        case wrongScope(expected: Scope)
        /// Signed for another object.
        case wrongObject
    }

    private struct Claims: Codable {
        var url: String
        var scope: Scope
        var ref: String
        var owner: UUID?
        var upsert: Bool?
        var iat: Int64
        var exp: Int64
    }

    private static let header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))

    func signed(with key: SymmetricKey) throws -> String {
        let claims = Claims(url: url, scope: scope, ref: project, owner: owner, upsert: upsert, iat: issuedAt, exp: expiresAt)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let signingInput = Self.header + "." + Base64URL.encode(try encoder.encode(claims))
        return signingInput + "." + Base64URL.encode(HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: key))
    }

    /// Refuses an object the token was not made for (`<bucket>/<name>`).
    func matches(_ url: String) throws(Refusal) {
        guard self.url == url else { throw .wrongObject }
    }

    /// The project a token names, unverified: only to choose the key to verify it with.
    static func project(of token: String) -> String? {
        try? claims(of: token).ref
    }

    /// The token's facts once its signature verifies with `key`, it has not expired at `now`, and
    /// it was made for `scope` and for the object `url` (nil: checked by the caller, once it knows
    /// the object — a resumable upload names it in its metadata; `matches(_:)`).
    static func verified(_ token: String, key: SymmetricKey, now: Date, scope: Scope, url: String?) throws(Refusal) -> SignedURLToken {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == header, let signature = Base64URL.decode(parts[2]) else { throw .malformed }
        let signingInput = Data(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: key) else { throw .badSignature }
        let claims = try Self.claims(of: token)
        guard Double(claims.exp) > now.timeIntervalSince1970 else { throw .expired }
        guard claims.scope == scope else { throw .wrongScope(expected: scope) }
        if let url, claims.url != url { throw .wrongObject }
        return SignedURLToken(url: claims.url, scope: claims.scope, project: claims.ref, owner: claims.owner, upsert: claims.upsert,
                              issuedAt: claims.iat, expiresAt: claims.exp)
    }

    private static func claims(of token: String) throws(Refusal) -> Claims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]) else { throw .malformed }
        do {
            return try JSONDecoder().decode(Claims.self, from: payload)
        } catch {
            throw .malformed
        }
    }
}
