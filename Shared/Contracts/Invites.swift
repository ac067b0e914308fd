import Foundation

/// `POST /v1/invites` (a signed-in developer) or `POST /internal/v1/invites` (an operator).
public struct InviteRequest: Codable, Sendable, Equatable {
    public var email: String

    public init(email: String) {
        self.email = email
    }
}

/// A created invite; `inviteToken` is shown in this answer only (auth keeps its hash).
public struct Invite: Codable, Sendable, Equatable {
    public var id: UUID
    public var email: String
    public var inviteToken: String
    public var expiresAt: Date

    public init(id: UUID, email: String, inviteToken: String, expiresAt: Date) {
        self.id = id
        self.email = email
        self.inviteToken = inviteToken
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case id, email
        case inviteToken = "invite_token"
        case expiresAt = "expires_at"
    }
}
