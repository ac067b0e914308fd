import Foundation
import ServiceKit

/// Which passwords auth accepts for an account (OWASP ASVS 2.1.1, 2.1.7; NIST SP 800-63B 5.1.1.2):
/// at least `minimumLength` characters, at most `PasswordHasher.maximumPasswordBytes` UTF-8
/// bytes, not on the list of common passwords shipped in `Resources/common-passwords.txt`
/// (Django's, see `Resources/README.md`) and not the account's email address or its local part.
///
/// Built once at start-up (`bundled()`) and shared: every check is a lookup in an immutable set.
/// The list comparison, like Django's, ignores case and surrounding whitespace; it also applies
/// the NFKC normalisation `PasswordHasher` hashes with, so a password that hashes like a listed
/// one (full-width letters, say) is refused like it.
public struct PasswordPolicy: Sendable {
    public static let minimumLength = 12
    /// The list file in the Passwords bundle.
    static let resourceName = "common-passwords"
    static let resourceExtension = "txt"

    /// The common passwords, as `comparable` makes them.
    public let commonPasswords: Set<String>

    /// A policy refusing `commonPasswords` (compared as `comparable` makes them; blank entries
    /// are ignored).
    public init<Entries: Sequence>(commonPasswords: Entries) where Entries.Element: StringProtocol {
        var entries = Set<String>()
        for entry in commonPasswords {
            let key = Self.comparable(String(entry))
            if !key.isEmpty { entries.insert(key) }
        }
        self.commonPasswords = entries
    }

    /// The policy with the list shipped in `bundle` (the Passwords target's for `bundled()`).
    /// Throws `ConfigurationError` when the list is missing, unreadable or empty, so a broken
    /// build stops the service at start-up instead of silently accepting every password.
    public static func bundled() throws -> PasswordPolicy {
        try bundled(in: .module)
    }

    static func bundled(in bundle: Bundle) throws -> PasswordPolicy {
        guard let url = bundle.url(forResource: resourceName, withExtension: resourceExtension) else {
            throw ConfigurationError(description: "the common-password list (\(resourceName).\(resourceExtension)) is missing from the auth service's bundle")
        }
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ConfigurationError(description: "the common-password list at \(url.path) cannot be read as UTF-8: \(error)")
        }
        let policy = PasswordPolicy(commonPasswords: text.split(whereSeparator: \.isNewline))
        guard !policy.commonPasswords.isEmpty else {
            throw ConfigurationError(description: "the common-password list at \(url.path) is empty")
        }
        return policy
    }

    /// What is wrong with a password; each API words it its own way (`validate` as the
    /// platform's 422, GoTrue's routes as its `weak_password`).
    public enum Weakness: Sendable, Equatable {
        /// Shorter than `minimumLength` characters.
        case tooShort
        /// Longer than `PasswordHasher.maximumPasswordBytes` UTF-8 bytes.
        case tooLong
        /// On the list of common passwords.
        case common
        /// The account's email address, or its part before the `@`.
        case email
    }

    /// The first thing wrong with `password`, or nil when it is acceptable; `email`, when given,
    /// is the account's address, which the password must not be (nor its part before the `@`).
    public func weakness(of password: String, email: String? = nil) -> Weakness? {
        guard password.count >= Self.minimumLength else { return .tooShort }
        guard password.utf8.count <= PasswordHasher.maximumPasswordBytes else { return .tooLong }
        let key = Self.comparable(password)
        guard !commonPasswords.contains(key) else { return .common }
        if let email, !key.isEmpty {
            let address = Self.comparable(email)
            let localPart = address.lastIndex(of: "@").map { String(address[..<$0]) } ?? address
            guard key != address, key != localPart else { return .email }
        }
        return nil
    }

    /// Throws `APIError.validation(field: field, …)` (422 `validation_failed`) when `password`
    /// is not acceptable (`weakness(of:email:)`). The messages never repeat the password.
    public func validate(_ password: String, field: String = "password", email: String? = nil) throws {
        switch weakness(of: password, email: email) {
        case nil: return
        case .tooShort: throw APIError.validation(field: field, "The password must be at least \(Self.minimumLength) characters.")
        case .tooLong: throw APIError.validation(field: field, "The password must be at most \(PasswordHasher.maximumPasswordBytes) bytes.")
        case .common: throw APIError.validation(field: field, "This password is too common; choose another.")
        case .email: throw APIError.validation(field: field, "The password must not be your email address or its part before the @.")
        }
    }

    /// How passwords and list entries are compared: NFKC-normalised (as `PasswordHasher`
    /// hashes), without surrounding whitespace, lower-cased.
    public static func comparable(_ value: String) -> String {
        value.precomposedStringWithCompatibilityMapping
            .trimmingCharacters(in: .whitespacesAndNewlines)
            .lowercased()
    }
}
