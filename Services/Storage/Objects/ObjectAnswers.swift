import Contracts
import Foundation

// The shapes of the Storage API's object answers (docs/protocols/storage-reference.md §3).

/// `GET object/info/{bucket}/{path}`.
struct ObjectInfo: Encodable, Sendable {
    var object: StoredObject

    init(_ object: StoredObject) { self.object = object }

    enum CodingKeys: String, CodingKey {
        case id, name, version, size, etag, metadata
        case bucketID = "bucket_id"
        case contentType = "content_type"
        case cacheControl = "cache_control"
        case lastModified = "last_modified"
        case createdAt = "created_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(object.id.uuidString.lowercased(), forKey: .id)
        try container.encode(object.name, forKey: .name)
        try container.encode(object.version.uuidString.lowercased(), forKey: .version)
        try container.encode(object.bucketID, forKey: .bucketID)
        try container.encode(object.size, forKey: .size)
        try container.encode(object.contentType, forKey: .contentType)
        try container.encode(object.cacheControl, forKey: .cacheControl)
        try container.encode(object.etag, forKey: .etag)
        try container.encode(object.userMetadata, forKey: .metadata)
        try container.encode(StoredObject.timestamp(object.updatedAt), forKey: .lastModified)
        try container.encode(StoredObject.timestamp(object.createdAt), forKey: .createdAt)
    }
}

/// One item of `POST object/list/{bucket}`: an object, named relative to the prefix, or a folder
/// (its next segment), whose other fields are all present and null.
struct ListEntry: Encodable, Sendable {
    var name: String
    var object: StoredObject?

    enum CodingKeys: String, CodingKey {
        case name, id, metadata
        case updatedAt = "updated_at"
        case createdAt = "created_at"
        case lastAccessedAt = "last_accessed_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(object?.id.uuidString.lowercased(), forKey: .id)
        try container.encode(object.map { StoredObject.timestamp($0.updatedAt) }, forKey: .updatedAt)
        try container.encode(object.map { StoredObject.timestamp($0.createdAt) }, forKey: .createdAt)
        try container.encode(object.map { StoredObject.timestamp($0.lastAccessedAt) }, forKey: .lastAccessedAt)
        try container.encode(object?.systemMetadata, forKey: .metadata)
    }

    /// A page of one level, in the Storage API's order: by name, folders and objects
    /// interleaved (lower-case, byte order); by another column, folders first, then objects.
    static func page(folders: [String], objects: [StoredObject], prefix: String, column: String, descending: Bool,
                     offset: Int, limit: Int) -> [ListEntry] {
        let relative = { (object: StoredObject) in String(object.name.unicodeScalars.dropFirst(prefix.unicodeScalars.count)) }
        var folderEntries = folders.map { ListEntry(name: $0, object: nil) }
        var objectEntries = objects.map { ListEntry(name: relative($0), object: $0) }
        let byName = { (a: ListEntry, b: ListEntry) in
            let (x, y) = (Array(a.name.lowercased().utf8), Array(b.name.lowercased().utf8))
            return descending ? y.lexicographicallyPrecedes(x) : x.lexicographicallyPrecedes(y)
        }
        let all: [ListEntry]
        if column == "name" {
            all = (folderEntries + objectEntries).sorted(by: byName)
        } else {
            folderEntries.sort(by: byName)
            let key = { (entry: ListEntry) -> Date in
                switch column {
                case "updated_at": entry.object?.updatedAt ?? .distantPast
                case "created_at": entry.object?.createdAt ?? .distantPast
                default: entry.object?.lastAccessedAt ?? .distantPast
                }
            }
            objectEntries.sort { descending ? key($0) > key($1) : key($0) < key($1) }
            all = folderEntries + objectEntries
        }
        return Array(all.dropFirst(offset).prefix(limit))
    }
}

/// One removed object of `DELETE object/{bucket}`.
struct RemovedObject: Encodable, Sendable {
    var object: StoredObject

    init(_ object: StoredObject) { self.object = object }

    enum CodingKeys: String, CodingKey {
        case name, owner, version, id, metadata
        case bucketID = "bucket_id"
        case ownerID = "owner_id"
        case updatedAt = "updated_at"
        case createdAt = "created_at"
        case lastAccessedAt = "last_accessed_at"
        case userMetadata = "user_metadata"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let owner = object.owner?.uuidString.lowercased()
        try container.encode(object.name, forKey: .name)
        try container.encode(object.bucketID, forKey: .bucketID)
        try container.encode(owner, forKey: .owner)
        try container.encode(owner, forKey: .ownerID)
        try container.encode(object.version.uuidString.lowercased(), forKey: .version)
        try container.encode(object.id.uuidString.lowercased(), forKey: .id)
        try container.encode(StoredObject.timestamp(object.updatedAt), forKey: .updatedAt)
        try container.encode(StoredObject.timestamp(object.createdAt), forKey: .createdAt)
        try container.encode(StoredObject.timestamp(object.lastAccessedAt), forKey: .lastAccessedAt)
        try container.encode(object.systemMetadata, forKey: .metadata)
        try container.encode(object.userMetadata, forKey: .userMetadata)
    }
}
