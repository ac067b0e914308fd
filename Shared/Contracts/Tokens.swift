import Foundation

/// `POST /v1/token?grant_type=password` body.
public struct PasswordGrant: Codable, Sendable, Equatable {
    public var email: String
    public var password: String

    public init(email: String, password: String) {
        self.email = email
        self.password = password
    }
}

/// `POST /v1/token?grant_type=refresh_token` body.
public struct RefreshGrant: Codable, Sendable, Equatable {
    public var refreshToken: String

    public init(refreshToken: String) {
        self.refreshToken = refreshToken
    }

    enum CodingKeys: String, CodingKey {
        case refreshToken = "refresh_token"
    }
}

/// A developer as `GET /v1/me` shows them.
public struct DeveloperProfile: Codable, Sendable, Equatable {
    public var id: UUID
    public var email: String
    public var createdAt: Date

    public init(id: UUID, email: String, createdAt: Date) {
        self.id = id
        self.email = email
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id, email
        case createdAt = "created_at"
    }
}

/// The answer of both grants: a short-lived ES256 access token and an opaque refresh token
/// that rotates on every use, with the signed-in user (a developer, or a tenant's end user).
public struct SessionTokens<User: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var accessToken: String
    public var tokenType: String
    public var expiresIn: Int
    public var refreshToken: String
    public var user: User

    public init(accessToken: String, tokenType: String = "bearer", expiresIn: Int, refreshToken: String, user: User) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresIn = expiresIn
        self.refreshToken = refreshToken
        self.user = user
    }

    enum CodingKeys: String, CodingKey {
        case user
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
        case refreshToken = "refresh_token"
    }
}

/// A developer's tokens (`POST /v1/token`).
public typealias TokenResponse = SessionTokens<DeveloperProfile>

/// `GET /internal/v1/sessions/{id}` on auth: a live developer session and whose it is.
public struct DeveloperSession: Codable, Sendable, Equatable {
    public var sessionId: UUID
    public var developerId: UUID

    public init(sessionId: UUID, developerId: UUID) {
        self.sessionId = sessionId
        self.developerId = developerId
    }

    enum CodingKeys: String, CodingKey {
        case sessionId = "session_id"
        case developerId = "developer_id"
    }
}
