import Contracts
import Foundation

// The request bodies of `/auth/v1/`, as supabase-auth and supabase-js send them. Fields the
// clients send that the platform has no use for (`gotrue_meta_security`, `code_challenge`,
// `channel`, …) are ignored, as GoTrue ignores unknown fields.

/// `POST /signup`.
struct GoTrueSignup: Decodable, Sendable {
    var email: String?
    var phone: String?
    var password: String?
    /// The new user's `user_metadata`.
    var data: JSONValue?
}

/// `POST /token?grant_type=password`.
struct GoTruePasswordGrant: Decodable, Sendable {
    var email: String?
    var phone: String?
    var password: String?
}

/// `POST /token?grant_type=refresh_token`.
struct GoTrueRefreshGrant: Decodable, Sendable {
    var refreshToken: String?

    enum CodingKeys: String, CodingKey {
        case refreshToken = "refresh_token"
    }
}

/// `PUT /user`: what the signed-in user may change. `data` is merged into `user_metadata`.
struct GoTrueUserUpdate: Decodable, Sendable {
    var email: String?
    var phone: String?
    var password: String?
    var data: JSONValue?
    /// Refused: only an admin may change it.
    var appMetadata: JSONValue?

    enum CodingKeys: String, CodingKey {
        case email, phone, password, data
        case appMetadata = "app_metadata"
    }
}

/// `POST /admin/users` and `PUT /admin/users/{id}` (GoTrue's `AdminUserParams`).
struct GoTrueAdminUser: Decodable, Sendable {
    var id: String?
    var email: String?
    var phone: String?
    var password: String?
    var passwordHash: String?
    var emailConfirm: Bool?
    var phoneConfirm: Bool?
    var userMetadata: JSONValue?
    var appMetadata: JSONValue?
    var role: String?
    /// A Go duration (`"24h"`, `"1h30m"`) from now, or `"none"` to lift a ban.
    var banDuration: String?

    enum CodingKeys: String, CodingKey {
        case id, email, phone, password, role
        case passwordHash = "password_hash"
        case emailConfirm = "email_confirm"
        case phoneConfirm = "phone_confirm"
        case userMetadata = "user_metadata"
        case appMetadata = "app_metadata"
        case banDuration = "ban_duration"
    }
}
