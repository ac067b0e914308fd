import Crypto
import Foundation
import ServiceKit

/// Seals the signing keys' private halves for storage (AES-256-GCM), so `auth.signing_keys` —
/// and any dump of it — holds no usable key.
///
/// - `SIGNING_KEY_ENCRYPTION_KEY` (required, at least 32 characters, never a shipped
///   placeholder): the secret the AES key is derived from (SHA-256). New keys are sealed with it.
/// - `SIGNING_KEY_ENCRYPTION_KEYS_PREVIOUS` (optional, comma-separated): secrets rotated out.
///   Rows sealed with one of them still open, and are sealed again with the current secret as
///   they are loaded; once every replica has loaded its keys, the old secret can be dropped.
///
/// Each row is sealed with its key id and owner as associated data, so a sealed key moved to
/// another row (another tenant's) does not open. A row names the secret that sealed it by a
/// fingerprint (`sealed_with`: a hash, never the secret).
struct SigningKeyCipher: Sendable {
    struct Secret: Sendable {
        let key: SymmetricKey
        let fingerprint: String

        init(_ secret: String) {
            key = SymmetricKey(data: SHA256.hash(data: Data(("auth.signing_keys.aes256gcm\n" + secret).utf8)))
            fingerprint = SHA256.hash(data: Data(("auth.signing_keys.fingerprint\n" + secret).utf8))
                .prefix(8).map { String(format: "%02x", $0) }.joined()
        }
    }

    /// A sealed key whose secret is not configured (or whose bytes were altered).
    struct CannotOpen: Error, CustomStringConvertible {
        var kid: String
        var sealedWith: String
        var description: String {
            "signing key \(kid) was sealed with a secret not configured (fingerprint \(sealedWith)), or was altered: "
                + "set SIGNING_KEY_ENCRYPTION_KEYS_PREVIOUS to the secret it was sealed with"
        }
    }

    let current: Secret
    let previous: [String: Secret]

    init(current: String, previous: [String] = []) {
        self.current = Secret(current)
        self.previous = Dictionary(previous.map { let secret = Secret($0); return (secret.fingerprint, secret) }) { first, _ in first }
    }

    init(configuration: ServiceConfiguration) throws {
        let current = try configuration.secret("SIGNING_KEY_ENCRYPTION_KEY")
        let previous = (configuration.value("SIGNING_KEY_ENCRYPTION_KEYS_PREVIOUS") ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard previous.allSatisfy({ $0.count >= ServiceConfiguration.minimumSecretLength }) else {
            throw ConfigurationError(description: "SIGNING_KEY_ENCRYPTION_KEYS_PREVIOUS: each secret must be at least \(ServiceConfiguration.minimumSecretLength) characters")
        }
        self.init(current: current, previous: previous)
    }

    /// The private key's PEM sealed with the current secret, and that secret's fingerprint.
    func seal(_ pem: String, kid: String, tenant: UUID?) throws -> (sealed: Data, with: String) {
        let box = try AES.GCM.seal(Data(pem.utf8), using: current.key, authenticating: Self.associatedData(kid, tenant))
        guard let combined = box.combined else { throw CannotOpen(kid: kid, sealedWith: current.fingerprint) }
        return (combined, current.fingerprint)
    }

    /// The PEM of a sealed row.
    func open(_ sealed: Data, with fingerprint: String, kid: String, tenant: UUID?) throws -> String {
        guard let secret = fingerprint == current.fingerprint ? current : previous[fingerprint] else {
            throw CannotOpen(kid: kid, sealedWith: fingerprint)
        }
        do {
            let opened = try AES.GCM.open(try AES.GCM.SealedBox(combined: sealed), using: secret.key, authenticating: Self.associatedData(kid, tenant))
            return String(decoding: opened, as: UTF8.self)
        } catch {
            throw CannotOpen(kid: kid, sealedWith: fingerprint)
        }
    }

    private static func associatedData(_ kid: String, _ tenant: UUID?) -> Data {
        Data("auth.signing_keys\n\(kid)\n\(tenant?.uuidString.lowercased() ?? "developers")".utf8)
    }
}
