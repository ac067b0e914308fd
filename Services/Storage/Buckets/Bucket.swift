import Foundation

/// A project's bucket, as the Storage API shows it (docs/protocols/storage-reference.md §2):
/// storage3 needs `owner` as a string and the `file_size_limit` and `allowed_mime_types` keys
/// present, null or not. `user_access` is the platform's own field: what the project's
/// signed-in users may read (`BucketPolicy`).
struct Bucket: Sendable, Equatable {
    var id: String
    var name: String
    var isPublic: Bool
    var userAccess: UserAccess
    var fileSizeLimit: Int64?
    var allowedMimeTypes: [String]?
    var createdAt: Date
    var updatedAt: Date

    /// What a project's signed-in users may read in the bucket; they may always write (and so
    /// own) objects, and replace or remove only their own.
    enum UserAccess: String, Sendable, Codable, CaseIterable {
        /// Only the objects they uploaded.
        case owner
        /// Every object of the bucket.
        case authenticatedRead = "authenticated_read"
    }
}

extension Bucket: Encodable {
    enum CodingKeys: String, CodingKey {
        case id, name, owner, type, `public`
        case userAccess = "user_access"
        case fileSizeLimit = "file_size_limit"
        case allowedMimeTypes = "allowed_mime_types"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode("", forKey: .owner)
        try container.encode("STANDARD", forKey: .type)
        try container.encode(isPublic, forKey: .public)
        try container.encode(userAccess, forKey: .userAccess)
        // Present even when null: storage3 requires the keys.
        try container.encode(fileSizeLimit, forKey: .fileSizeLimit)
        try container.encode(allowedMimeTypes, forKey: .allowedMimeTypes)
        try container.encode(StoredObject.timestamp(createdAt), forKey: .createdAt)
        try container.encode(StoredObject.timestamp(updatedAt), forKey: .updatedAt)
    }
}
