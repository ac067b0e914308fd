import Contracts
import Foundation
import ServiceKit

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
        SecureToken.sha256Hex(key)
    }
}

/// Mints API keys: 32 bytes from the system CSPRNG (getrandom), base64url without padding,
/// behind a kind prefix (`pk_` publishable, `sk_` secret) so a leaked key is recognisable.
enum APIKeyMinter {
    static func mint() -> MintedKeys {
        MintedKeys(publishableID: UUID(), publishable: "pk_" + SecureToken.random(), secretID: UUID(), secret: "sk_" + SecureToken.random())
    }
}
