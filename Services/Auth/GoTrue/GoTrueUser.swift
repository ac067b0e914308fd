import Contracts
import Foundation

/// A tenant's user as GoTrue shows one (`internal/models/user.go`; the Python client's `User`),
/// made from the platform's `TenantUser`:
///
/// - every address counts as confirmed (`email_confirmed_at`, `confirmed_at` = `created_at`):
///   the platform sends no mail, as GoTrue with `mailer_autoconfirm` does not ask for it;
/// - one `email` identity, whose `identity_data` is always an object (the Python client fails
///   on a missing one);
/// - `phone` is always empty and `is_anonymous` false: neither phone nor anonymous sign-ins are
///   enabled.
struct GoTrueUser: Encodable, Sendable {
    var user: TenantUser

    init(_ user: TenantUser) {
        self.user = user
    }

    static let audience = "authenticated"

    /// `app_metadata` as GoTrue keeps it: what the project's admin set, with the provider fields
    /// GoTrue maintains itself on top.
    static func appMetadata(of user: TenantUser) -> JSONValue {
        var fields: [String: JSONValue] = [:]
        if case .object(let stored) = user.appMetadata { fields = stored }
        fields["provider"] = .string("email")
        fields["providers"] = .array([.string("email")])
        return .object(fields)
    }

    struct Identity: Encodable, Sendable {
        var user: TenantUser

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: GoTrueUser.Key.self)
            let id = user.id.uuidString.lowercased()
            // `identity_id` is the identity's own id; `id` the provider's subject. With one email
            // identity per user, both are the user's id.
            try container.encode(id, forKey: .init("identity_id"))
            try container.encode(id, forKey: .init("id"))
            try container.encode(id, forKey: .init("user_id"))
            try container.encode(JSONValue.object([
                "sub": .string(id), "email": .string(user.email), "email_verified": .bool(true), "phone_verified": .bool(false),
            ]), forKey: .init("identity_data"))
            try container.encode("email", forKey: .init("provider"))
            try container.encode(user.email, forKey: .init("email"))
            try container.encode(user.createdAt, forKey: .init("created_at"))
            try container.encode(user.updatedAt, forKey: .init("updated_at"))
            try container.encodeIfPresent(user.lastSignInAt, forKey: .init("last_sign_in_at"))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(user.id.uuidString.lowercased(), forKey: .init("id"))
        try container.encode(Self.audience, forKey: .init("aud"))
        try container.encode(user.role, forKey: .init("role"))
        try container.encode(user.email, forKey: .init("email"))
        try container.encode("", forKey: .init("phone"))
        try container.encode(user.createdAt, forKey: .init("email_confirmed_at"))
        try container.encode(user.createdAt, forKey: .init("confirmed_at"))
        try container.encodeIfPresent(user.lastSignInAt, forKey: .init("last_sign_in_at"))
        try container.encode(Self.appMetadata(of: user), forKey: .init("app_metadata"))
        try container.encode(user.metadata, forKey: .init("user_metadata"))
        try container.encode([Identity(user: user)], forKey: .init("identities"))
        try container.encode(user.createdAt, forKey: .init("created_at"))
        try container.encode(user.updatedAt, forKey: .init("updated_at"))
        try container.encode(false, forKey: .init("is_anonymous"))
        try container.encodeIfPresent(user.bannedUntil, forKey: .init("banned_until"))
    }

    /// A JSON key by name.
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// GoTrue's token answer (`tokens.AccessTokenResponse`; the Python client's `Session`).
struct GoTrueSession: Encodable, Sendable {
    var accessToken: String
    var tokenType = "bearer"
    var expiresIn: Int
    var expiresAt: Int
    var refreshToken: String
    var user: GoTrueUser

    init(_ issued: TokenIssuer.Issued<TenantUser>) {
        accessToken = issued.accessToken
        expiresIn = issued.expiresIn
        expiresAt = issued.expiresAt
        refreshToken = issued.refreshToken
        user = GoTrueUser(issued.account)
    }

    enum CodingKeys: String, CodingKey {
        case user
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
        case expiresAt = "expires_at"
        case refreshToken = "refresh_token"
    }
}
