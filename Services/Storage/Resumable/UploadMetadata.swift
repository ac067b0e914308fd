import Contracts
import Foundation

/// What a TUS creation's `Upload-Metadata` names, as Supabase reads it (storage-reference §6):
/// the bucket (`bucketName`) and object name (`objectName`), both required; the object's
/// `contentType` (default `application/octet-stream`), `cacheControl` and user `metadata` (JSON
/// text of an object). Checked here as a REST upload's are, so the same names and values are
/// refused the same way.
struct UploadMetadata: Equatable, Sendable {
    var bucket: String
    var objectName: String
    var contentType: String
    var cacheControl: String
    var userMetadata: JSONValue?

    init(bucket: String, objectName: String, contentType: String, cacheControl: String, userMetadata: JSONValue?) {
        self.bucket = bucket
        self.objectName = objectName
        self.contentType = contentType
        self.cacheControl = cacheControl
        self.userMetadata = userMetadata
    }

    /// From the decoded pairs (`TusHeaders.metadata`). Throws a `TusError` (400) for a missing
    /// bucket or name and malformed values, `StorageError` 422 `InvalidKey` for an object name
    /// REST would refuse.
    init(_ pairs: [String: String]) throws {
        guard let bucket = pairs["bucketName"], !bucket.isEmpty else { throw TusError(.badRequest, "bucketName is required in Upload-Metadata") }
        guard let name = pairs["objectName"], !name.isEmpty else { throw TusError(.badRequest, "objectName is required in Upload-Metadata") }
        self.bucket = bucket
        self.objectName = try ObjectName.valid(name)
        let type = (pairs["contentType"] ?? "").trimmingCharacters(in: .whitespaces)
        guard !type.unicodeScalars.contains(where: UploadBody.isControl) else {
            throw TusError(.badRequest, "contentType holds control characters")
        }
        self.contentType = type.isEmpty ? UploadBody.defaultContentType : type
        do {
            self.cacheControl = try UploadBody.storedCacheControl(field: pairs["cacheControl"])
        } catch {
            throw TusError(.badRequest, "cacheControl is neither a number of seconds nor a Cache-Control directive list")
        }
        if let text = pairs["metadata"], !text.isEmpty {
            guard let value = UploadBody.jsonObject(Data(text.utf8)) else { throw TusError(.badRequest, "metadata is not a JSON object") }
            self.userMetadata = value
        } else {
            self.userMetadata = nil
        }
    }

    /// The pairs a HEAD sends back.
    var pairs: [String: String] {
        var pairs = ["bucketName": bucket, "objectName": objectName, "contentType": contentType, "cacheControl": cacheControl]
        if let userMetadata, let data = try? JSONEncoder().encode(userMetadata) { pairs["metadata"] = String(decoding: data, as: UTF8.self) }
        return pairs
    }
}
