import Crypto
import Foundation

/// Random secrets (API keys, refresh tokens) and their stored form.
public enum SecureToken {
    /// `byteCount` bytes from the system CSPRNG (getrandom), base64url without padding.
    public static func random(byteCount: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<byteCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Base64URL.encode(bytes)
    }

    /// A token derived from `secret` and `salt`: HMAC-SHA256 keyed by the secret's UTF-8 over the
    /// salt's, base64url without padding. The same pair always gives the same token, and nobody
    /// can derive it without both (a refresh token's child, from the parent the client holds and
    /// a random salt only the server keeps).
    public static func derived(from secret: String, salt: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(salt.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return Base64URL.encode(Array(mac))
    }

    /// Lowercase hex SHA-256 of the token's UTF-8: what is stored instead of the token.
    public static func sha256Hex(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
