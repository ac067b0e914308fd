import Contracts
import Crypto
import Foundation

/// A tenant's two API keys, as minted (readable: shown to the owner once).
struct MintedKeys: Sendable, Equatable {
    var publishableID: UUID
    var publishable: String
    var secretID: UUID
    var secret: String

    /// What auth stores: hashes and short prefixes, never the keys.
    var hashes: APIKeySet {
        APIKeySet(keys: [
            APIKeyHash(id: publishableID, kind: .publishable, prefix: String(publishable.prefix(12)), sha256: Self.sha256(publishable)),
            APIKeyHash(id: secretID, kind: .secret, prefix: String(secret.prefix(12)), sha256: Self.sha256(secret)),
        ])
    }

    static func sha256(_ key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// Mints API keys: 32 bytes from the system CSPRNG (getrandom), base64url without padding,
/// behind a kind prefix (`pk_` publishable, `sk_` secret) so a leaked key is recognisable.
enum APIKeyMinter {
    static func mint() -> MintedKeys {
        MintedKeys(publishableID: UUID(), publishable: "pk_" + randomToken(), secretID: UUID(), secret: "sk_" + randomToken())
    }

    private static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
