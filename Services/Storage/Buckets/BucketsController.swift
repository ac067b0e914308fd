import Contracts
import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// A project's buckets on `/storage/v1/bucket`, as the Storage API answers storage3 and
/// storage-js (docs/protocols/storage-reference.md §2). Creating, changing, emptying and deleting
/// take the secret key; listing and reading show every bucket to it and the public ones to
/// everyone else.
///
/// | route | answer |
/// |---|---|
/// | `GET bucket` | `[Bucket]` |
/// | `GET bucket/{id}` | `Bucket`; 404 `NoSuchBucket` |
/// | `POST bucket` `{id?, name, public?, file_size_limit?, allowed_mime_types?, user_access?}` | `{"name"}`; 409 `BucketAlreadyExists` |
/// | `PUT bucket/{id}` `{public?, file_size_limit?, allowed_mime_types?, user_access?}` | `{"message":"Successfully updated"}` |
/// | `POST bucket/{id}/empty` | every object removed (at once, though the message keeps Supabase's words) |
/// | `DELETE bucket/{id}` | `{"message":"Successfully deleted"}`; 409 `ResourceNotEmpty` while objects remain |
struct BucketsController: Sendable {
    let access: StorageAccess
    let buckets: BucketStore
    let objects: ObjectStore
    let files: ObjectFiles
    let maximumObjectBytes: Int64

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.get("/bucket", use: list)
        group.post("/bucket", use: create)
        group.get("/bucket/:bucket", use: get)
        group.put("/bucket/:bucket", use: update)
        group.delete("/bucket/:bucket", use: delete)
        group.post("/bucket/:bucket/empty", use: empty)
    }

    @Sendable func list(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        return try jsonResponse(try await buckets.list(tenant: caller.tenant.id, publicOnly: caller.principal != .service))
    }

    @Sendable func get(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        guard let bucket = try await buckets.bucket(try Self.bucketID(context), tenant: caller.tenant.id),
              bucket.isPublic || caller.principal == .service
        else { throw StorageError.bucketNotFound }
        return try jsonResponse(bucket)
    }

    struct Creation: Decodable {
        var id: String?
        var name: String?
        var isPublic: Bool?
        var userAccess: Bucket.UserAccess?
        var fileSizeLimit: JSONValue?
        var allowedMimeTypes: [String]?

        enum CodingKeys: String, CodingKey {
            case id, name
            case isPublic = "public"
            case userAccess = "user_access"
            case fileSizeLimit = "file_size_limit"
            case allowedMimeTypes = "allowed_mime_types"
        }
    }

    @Sendable func create(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        guard caller.principal == .service else { throw StorageError.accessDenied }
        let input = try await request.decodeJSON(as: Creation.self, context: context)
        guard let name = input.name ?? input.id else { throw StorageError.invalidRequest("body must have required property 'name'") }
        let id = try BucketRules.validID(input.id ?? name)
        let now = Date()
        let bucket = Bucket(id: id, name: try BucketRules.validID(name), isPublic: input.isPublic ?? false, userAccess: input.userAccess ?? .owner,
                            fileSizeLimit: try BucketRules.fileSizeLimit(input.fileSizeLimit, maximum: maximumObjectBytes),
                            allowedMimeTypes: try BucketRules.allowedMimeTypes(input.allowedMimeTypes), createdAt: now, updatedAt: now)
        do {
            try await buckets.create(bucket, tenant: caller.tenant.id)
        } catch is BucketStore.Exists {
            throw StorageError.bucketExists
        }
        return try jsonResponse(["name": bucket.name])
    }

    /// Absent fields stay; `null` clears a limit or the MIME allow-list (so the body is read as
    /// JSON values, where absent and null differ).
    @Sendable func update(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        guard caller.principal == .service else { throw StorageError.accessDenied }
        let id = try Self.bucketID(context)
        let input = try await request.decodeJSON(as: [String: JSONValue].self, context: context)
        var changes = BucketStore.Changes()
        if let value = input["public"] {
            guard case .bool(let flag) = value else { throw StorageError.invalidRequest("body/public must be boolean") }
            changes.isPublic = flag
        }
        if let value = input["user_access"] {
            guard case .string(let text) = value, let userAccess = Bucket.UserAccess(rawValue: text) else {
                throw StorageError.invalidRequest("body/user_access must be owner or authenticated_read")
            }
            changes.userAccess = userAccess
        }
        if let value = input["file_size_limit"] {
            changes.fileSizeLimit = .some(try BucketRules.fileSizeLimit(value, maximum: maximumObjectBytes))
        }
        if let value = input["allowed_mime_types"] {
            switch value {
            case .null: changes.allowedMimeTypes = .some(nil)
            case .array(let items):
                let types = try items.map { item -> String in
                    guard case .string(let text) = item else { throw StorageError.invalidRequest("body/allowed_mime_types must be an array of strings") }
                    return text
                }
                changes.allowedMimeTypes = .some(try BucketRules.allowedMimeTypes(types))
            default: throw StorageError.invalidRequest("body/allowed_mime_types must be an array of strings")
            }
        }
        guard !changes.isEmpty else { throw StorageError.invalidRequest("No content provided") }
        guard try await buckets.update(id, tenant: caller.tenant.id, changes) else { throw StorageError.bucketNotFound }
        return try jsonResponse(["message": "Successfully updated"])
    }

    @Sendable func delete(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        guard caller.principal == .service else { throw StorageError.accessDenied }
        let id = try Self.bucketID(context)
        // S3 multipart uploads in progress go with the bucket (their rows cascade; their files follow).
        let uploads = try await MultipartUploadStore(pool: buckets.pool).ids(bucket: id, tenant: caller.tenant.id)
        switch try await buckets.delete(id, tenant: caller.tenant.id) {
        case .deleted:
            for upload in uploads { await files.removeMultipart(upload, tenant: caller.tenant.id) }
            return try jsonResponse(["message": "Successfully deleted"])
        case .notFound: throw StorageError.bucketNotFound
        case .notEmpty: throw StorageError.bucketNotEmpty
        }
    }

    @Sendable func empty(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        guard caller.principal == .service else { throw StorageError.invalidRole }
        let id = try Self.bucketID(context)
        guard try await buckets.bucket(id, tenant: caller.tenant.id) != nil else { throw StorageError.bucketNotFound }
        let removed = try await objects.removeAll(bucket: id, tenant: caller.tenant.id)
        // The rows are gone (committed); their files follow.
        for version in removed { try await files.remove(version: version, tenant: caller.tenant.id) }
        return try jsonResponse(["message": "Empty bucket has been queued. Completion may take up to an hour."])
    }

    /// The path's bucket id, decoded (`BucketRules.fromPath`); one no bucket can have is not found.
    static func bucketID(_ context: PlatformRequestContext) throws -> String {
        guard let id = BucketRules.fromPath(try context.parameters.require("bucket")) else { throw StorageError.bucketNotFound }
        return id
    }
}
