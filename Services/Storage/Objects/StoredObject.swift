import Contracts
import Foundation

/// An object's row (`storage.objects`): its key, who uploaded it, and which file version holds
/// its bytes.
struct StoredObject: Sendable, Equatable {
    var id: UUID
    var bucketID: String
    var name: String
    /// The project's user who uploaded it; nil for the project itself (its secret key).
    var owner: UUID?
    var version: UUID
    var size: Int64
    var contentType: String
    var cacheControl: String
    /// SHA-256 of the bytes, lowercase hex.
    var sha256: String
    var userMetadata: JSONValue?
    var createdAt: Date
    var updatedAt: Date
    var lastAccessedAt: Date

    /// The strong entity tag of the bytes, as HTTP and the Storage API quote it.
    var etag: String { "\"" + sha256 + "\"" }

    /// The Storage API's `metadata` of an object (list items, info): system facts, not the
    /// user's metadata.
    var systemMetadata: JSONValue {
        .object([
            "eTag": .string(etag), "size": .number(Double(size)), "mimetype": .string(contentType),
            "cacheControl": .string(cacheControl), "lastModified": .string(Self.timestamp(updatedAt)),
            "contentLength": .number(Double(size)), "httpStatusCode": .number(200),
        ])
    }

    /// ISO 8601 with milliseconds, as the Storage API writes dates.
    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
