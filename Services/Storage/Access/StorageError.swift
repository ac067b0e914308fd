import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import TenantKit

/// An error on `/storage/v1/`, in the Storage API's shape, which storage3 and storage-js parse
/// (docs/protocols/storage-reference.md §1.2–1.3):
/// `{"statusCode":"404","code":"NoSuchKey","error":"not_found","message":"Object not found"}`.
///
/// `statusCode` is a string; storage3 reads `error` as its code and `statusCode` as its status,
/// storage-js reads `code`. One departure from Supabase: the HTTP status is the real one (404,
/// 409, 413, …), where Supabase answers 400 for every client error; no client reads the HTTP
/// status in place of `statusCode`, and HTTP tools see the truth.
struct StorageError: Error, HTTPResponseError, Sendable {
    var status: HTTPResponse.Status
    var code: String
    var error: String
    var message: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ code: String, error: String? = nil, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.error = error ?? code
        self.message = message
        self.headers = headers
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        let body: [String: JSONValue] = [
            "statusCode": .string(String(status.code)), "code": .string(code), "error": .string(error), "message": .string(message),
        ]
        // A HEAD answer has no body.
        if request.method == .head { return Response(status: status, headers: fields) }
        return try jsonResponse(JSONValue.object(body), status: status, headers: fields)
    }

    // MARK: The Storage API's errors, as its server words them

    static let objectNotFound = StorageError(.notFound, "NoSuchKey", error: "not_found", "Object not found")
    static let bucketNotFound = StorageError(.notFound, "NoSuchBucket", error: "Bucket not found", "Bucket not found")
    static let bucketExists = StorageError(.conflict, "BucketAlreadyExists", error: "Duplicate", "The resource already exists")
    static let keyExists = StorageError(.conflict, "KeyAlreadyExists", error: "Duplicate", "The resource already exists")
    static let bucketNotEmpty = StorageError(.conflict, "ResourceNotEmpty", "The bucket you tried to delete is not empty")
    static let tooLarge = StorageError(.contentTooLarge, "EntityTooLarge", error: "Payload too large", "The object exceeded the maximum allowed size")
    static let quotaExceeded = StorageError(.contentTooLarge, "EntityTooLarge", error: "Payload too large",
                                            "The object would exceed the project's storage quota")
    static let accessDenied = StorageError(.forbidden, "AccessDenied", error: "Unauthorized", "new row violates row-level security policy")
    static let invalidRole = StorageError(.forbidden, "AccessDenied", error: "Unauthorized", "Access denied: Invalid role")

    static func invalidRequest(_ message: String) -> StorageError { StorageError(.badRequest, "InvalidRequest", message) }
    static func invalidKey(_ key: String) -> StorageError { StorageError(.badRequest, "InvalidKey", "Invalid key: \(key)") }
    static func invalidMimeType(_ type: String) -> StorageError {
        StorageError(.unsupportedMediaType, "InvalidMimeType", error: "invalid_mime_type", "mime type \(type) is not supported")
    }
    static func invalidJWT(_ message: String) -> StorageError { StorageError(.badRequest, "InvalidJWT", message) }
    static let invalidSignature = StorageError(.badRequest, "InvalidSignature", "Invalid signature")
}
