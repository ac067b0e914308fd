import Foundation

/// `GET /internal/v1/developers/{id}` on auth: the developer account exists (committed). Asked
/// by provisioning's orphan reconciler about the owner of a project made for a registration.
public struct DeveloperAccount: Codable, Sendable, Equatable {
    public var developerId: UUID

    public init(developerId: UUID) {
        self.developerId = developerId
    }

    enum CodingKeys: String, CodingKey {
        case developerId = "developer_id"
    }
}
