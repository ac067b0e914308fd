import Foundation

/// The answer of `POST object/list-v2/{bucket}` (storage3 `list_v2`, storage-js `listV2`;
/// storage-reference §3.4): folders (with a delimiter) and objects by full key, and the cursor
/// of the next page, null on the last (Supabase omits it; both clients read either as none).
struct ListV2Answer: Encodable, Sendable {
    var hasNext: Bool
    var nextCursor: String?
    var folders: [Folder]
    var objects: [Object]

    struct Folder: Encodable, Sendable {
        /// The common prefix, ending in `/`.
        var name: String
        /// Its last segment, without the `/`.
        var key: String
    }

    struct Object: Encodable, Sendable {
        var object: StoredObject

        enum CodingKeys: String, CodingKey {
            case id, name, key, metadata
            case updatedAt = "updated_at"
            case createdAt = "created_at"
            case lastAccessedAt = "last_accessed_at"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(object.id.uuidString.lowercased(), forKey: .id)
            try container.encode(object.name, forKey: .name)
            try container.encode(ListV2Answer.lastSegment(of: object.name), forKey: .key)
            try container.encode(object.systemMetadata, forKey: .metadata)
            try container.encode(StoredObject.timestamp(object.updatedAt), forKey: .updatedAt)
            try container.encode(StoredObject.timestamp(object.createdAt), forKey: .createdAt)
            try container.encode(StoredObject.timestamp(object.lastAccessedAt), forKey: .lastAccessedAt)
        }
    }

    enum CodingKeys: String, CodingKey {
        case hasNext, nextCursor, folders, objects
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(hasNext, forKey: .hasNext)
        try container.encode(nextCursor, forKey: .nextCursor)
        try container.encode(folders, forKey: .folders)
        try container.encode(objects, forKey: .objects)
    }

    init(_ page: ObjectListing.Page) {
        hasNext = page.isTruncated
        nextCursor = page.isTruncated ? page.next?.token : nil
        folders = page.commonPrefixes.map { Folder(name: $0, key: Self.lastSegment(of: String($0.dropLast()))) }
        objects = page.objects.map(Object.init)
    }

    static func lastSegment(of name: String) -> String {
        name.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? name
    }
}
