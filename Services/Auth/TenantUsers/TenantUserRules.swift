import Contracts
import Foundation
import ServiceKit

/// What a tenant's user's fields must be, for signup, the user's own changes and an admin's
/// alike; each refusal is a 422 naming the field.
enum TenantUserRules {
    /// The role of a user nobody gave another.
    static let defaultRole = "authenticated"

    static func validEmail(_ raw: String) throws -> String {
        let email = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard RegistrationController.isPlausibleEmail(email) else { throw APIError.validation(field: "email", "The email address is not valid.") }
        return email
    }

    /// A role is a lowercase identifier (it travels in the token's `role` claim).
    static func validRole(_ role: String) throws -> String {
        guard (1...63).contains(role.utf8.count), let first = role.utf8.first, (0x61...0x7A).contains(first),
              role.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "_") })
        else { throw APIError.validation(field: "role", "The role must be 1 to 63 lowercase letters, digits or underscores, starting with a letter.") }
        return role
    }

    /// A JSON object of at most 16 KiB.
    static func validMetadata(_ metadata: JSONValue?, field: String = "metadata") throws -> JSONValue {
        guard let metadata else { return .emptyObject }
        guard metadata.isObject else { throw APIError.validation(field: field, "\(field) must be a JSON object.") }
        guard let size = try? JSONEncoder().encode(metadata).count, size <= 16 * 1024 else {
            throw APIError.validation(field: field, "\(field) must be at most 16 KiB of JSON.")
        }
        return metadata
    }

    /// Runs a write of a user's email, answering 409 `email_taken` when another user of the
    /// tenant has it.
    static func uniqueEmail<Result>(_ write: () async throws -> Result) async throws -> Result {
        do {
            return try await write()
        } catch is TenantUserStore.EmailTaken {
            throw APIError.conflict(code: "email_taken", "A user with this email already exists.")
        }
    }
}
