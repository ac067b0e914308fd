import Crypto
import Foundation
import ServiceKit

/// Standard Webhooks signing (standardwebhooks.com): the secret is `whsec_` + base64 of random
/// bytes; each attempt is signed as `v1,` + base64(HMAC-SHA256(secret bytes,
/// "{webhook-id}.{webhook-timestamp}.{body}")), sent in `webhook-signature` beside
/// `webhook-id` and `webhook-timestamp` (seconds since 1970).
enum WebhookSignature {
    static let prefix = "whsec_"

    /// A new secret: 32 bytes from the system CSPRNG.
    static func newSecret() -> String {
        prefix + Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }).base64EncodedString()
    }

    /// The `webhook-signature` value for one attempt; nil when the secret is not a `whsec_` one.
    static func sign(id: String, timestamp: Int, body: [UInt8], secret: String) -> String? {
        guard secret.hasPrefix(prefix), let key = Data(base64Encoded: String(secret.dropFirst(prefix.count))) else { return nil }
        var message = Array("\(id).\(timestamp).".utf8)
        message += body
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }
}
