import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import TenantKit

/// A project's objects on `/storage/v1/object/…`, as the Storage API answers storage3 and
/// storage-js (docs/protocols/storage-reference.md §3), under the bucket's policy
/// (`BucketPolicy`):
///
/// | route | answer |
/// |---|---|
/// | `POST object/{bucket}/{path}` (multipart or raw; `x-upsert: true` replaces) | `{"Id","Key"}`; 409 `KeyAlreadyExists` |
/// | `PUT object/{bucket}/{path}` | the same, always replacing |
/// | `GET`/`HEAD object/{bucket}/{path}`, `object/authenticated/…`, `object/public/…` | the bytes (`ObjectDownload`) |
/// | `GET object/info/{bucket}/{path}` (and `…/authenticated/…`, `…/public/…`) | the object's facts |
/// | `POST object/list/{bucket}` `{prefix, limit?, offset?, sortBy?, search?}` | one level: folders and objects |
/// | `POST object/list-v2/{bucket}` `{prefix?, limit?, cursor?, with_delimiter?, sortBy?}` | a page by cursor: objects by full key (and folders with the delimiter) |
/// | `POST object/move`, `POST object/copy` `{bucketId, sourceKey, destinationKey, destinationBucket?}` | moved / `{"Id","Key"}` |
/// | `DELETE object/{bucket}` `{"prefixes":[names]}` | the removed objects (missing names skipped) |
/// | `DELETE object/{bucket}/{path}` | `{"message":"Successfully deleted"}` |
struct ObjectsController: Sendable {
    let access: StorageAccess
    let buckets: BucketStore
    let objects: ObjectStore
    let files: ObjectFiles
    let writer: ObjectWriter
    let download: ObjectDownload

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.post("/object/list/:bucket", use: list)
        group.post("/object/list-v2/:bucket", use: listV2)
        group.post("/object/move", use: move)
        group.post("/object/copy", use: copy)
        // `public/` reads name their project by host alone, and only public buckets.
        for (prefix, isPublic) in [("/object/info", false), ("/object/info/authenticated", false), ("/object/info/public", true)] {
            group.get(RouterPath(prefix + "/:bucket/**")) { try await info($0, $1, publicRoute: isPublic) }
        }
        for (prefix, isPublic) in [("/object", false), ("/object/authenticated", false), ("/object/public", true)] {
            group.get(RouterPath(prefix + "/:bucket/**")) { try await get($0, $1, publicRoute: isPublic) }
            group.head(RouterPath(prefix + "/:bucket/**")) { try await get($0, $1, publicRoute: isPublic) }
        }
        group.post("/object/:bucket/**", use: upload)
        group.put("/object/:bucket/**", use: update)
        group.delete("/object/:bucket/**", use: deleteOne)
        group.delete("/object/:bucket", use: deleteMany)
    }

    // MARK: Upload

    @Sendable func upload(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await write(request, context, upsert: request.headers[Self.upsertField] == "true")
    }

    @Sendable func update(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await write(request, context, upsert: true)
    }

    static let upsertField = HTTPField.Name("x-upsert")!

    private func write(_ request: Request, _ context: PlatformRequestContext, upsert: Bool) async throws -> Response {
        let caller = try await access.caller(request)
        let (bucket, name) = try await target(request, context, caller)
        guard BucketPolicy.mayWrite(by: caller.principal) else { throw StorageError.accessDenied }
        let object = try await writer.store(request, name: name, in: bucket, tenant: caller.tenant.id, principal: caller.principal, upsert: upsert)
        return try jsonResponse(["Id": object.id.uuidString.lowercased(), "Key": bucket.id + "/" + object.name])
    }

    // MARK: Read

    func get(_ request: Request, _ context: PlatformRequestContext, publicRoute: Bool) async throws -> Response {
        let (caller, object) = try await readable(request, context, publicRoute: publicRoute)
        return try await download.respond(object, tenant: caller.tenant.id, request: request)
    }

    func info(_ request: Request, _ context: PlatformRequestContext, publicRoute: Bool) async throws -> Response {
        let (_, object) = try await readable(request, context, publicRoute: publicRoute)
        return try jsonResponse(ObjectInfo(object))
    }

    /// The object a read names, if the caller may read it; a private bucket is not found by
    /// anyone without access to it, as in Supabase.
    private func readable(_ request: Request, _ context: PlatformRequestContext,
                          publicRoute: Bool) async throws -> (StorageAccess.Caller, StoredObject) {
        let caller = try await access.caller(request, requireKey: !publicRoute)
        let (bucket, _, found) = try await ObjectAddress.locate(request, context, objects: objects, tenant: caller.tenant.id,
                                                                principal: caller.principal)
        if publicRoute, !bucket.isPublic { throw StorageError.bucketNotFound }
        guard let object = found, BucketPolicy.mayRead(object, in: bucket, by: caller.principal) else { throw StorageError.objectNotFound }
        return (caller, object)
    }

    // MARK: List

    struct ListRequest: Decodable {
        var prefix: String?
        var limit: Int?
        var offset: Int?
        var search: String?
        var sortBy: Sort?

        struct Sort: Decodable {
            var column: String?
            var order: String?
        }
    }

    @Sendable func list(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        let input = try await request.decodeJSON(as: ListRequest.self, context: context)
        guard let id = BucketRules.fromPath(try context.parameters.require("bucket")),
              let bucket = try await buckets.bucket(id, tenant: caller.tenant.id)
        else { return try jsonResponse([JSONValue]()) }
        let owner: UUID?
        switch BucketPolicy.listing(of: bucket, by: caller.principal) {
        case .nothing: return try jsonResponse([JSONValue]())
        case .all: owner = nil
        case .ownedBy(let user): owner = user
        }
        var prefix = input.prefix ?? ""
        if !prefix.isEmpty, !prefix.hasSuffix("/") { prefix += "/" }
        let limit = min(max(input.limit ?? 100, 1), 1500)
        let offset = max(input.offset ?? 0, 0)
        // Each page reads `offset + limit` rows of the level: deep offsets are refused, not paid for.
        guard offset <= Self.maximumOffset else { throw StorageError.invalidRequest("body/offset must be <= \(Self.maximumOffset)") }
        let column = input.sortBy?.column ?? "name"
        guard ObjectStore.sortColumns.contains(column) else {
            throw StorageError.invalidRequest("body/sortBy/column must be equal to one of the allowed values")
        }
        let descending = input.sortBy?.order?.lowercased() == "desc"
        let level = try await objects.level(bucket: bucket.id, tenant: caller.tenant.id, prefix: prefix, search: input.search ?? "",
                                            owner: owner, column: column, descending: descending, limit: Self.saturatingSum(offset, limit))
        let entries = ListEntry.page(folders: level.folders, objects: level.objects, prefix: prefix, column: column,
                                     descending: descending, offset: offset, limit: limit)
        return try jsonResponse(entries)
    }

    static let maximumOffset = 100_000

    struct ListV2Request: Decodable {
        var prefix: String?
        var limit: Int?
        var cursor: String?
        var withDelimiter: Bool?
        var sortBy: ListRequest.Sort?

        enum CodingKeys: String, CodingKey {
            case prefix, limit, cursor, sortBy
            case withDelimiter = "with_delimiter"
        }
    }

    /// List v2: pages by an opaque cursor (`ObjectListing`, keyset by name, S3's listing), every
    /// page costing about its size whatever the depth. Sorted by name only (§12).
    @Sendable func listV2(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        let input = try await request.decodeJSON(as: ListV2Request.self, context: context)
        if let column = input.sortBy?.column, column != "name" {
            throw StorageError.invalidRequest("body/sortBy/column: list v2 sorts by name only")
        }
        if let order = input.sortBy?.order, order.lowercased() != "asc" {
            throw StorageError.invalidRequest("body/sortBy/order: list v2 sorts in ascending order only")
        }
        let limit = min(max(input.limit ?? 1000, 1), 1000)
        var start = ObjectListing.Cursor(key: "", inclusive: true)
        if let token = input.cursor, !token.isEmpty {
            guard let cursor = ObjectListing.Cursor(token: token) else { throw StorageError.invalidRequest("body/cursor is not a cursor this API gave") }
            start = cursor
        }
        let empty = ListV2Answer(ObjectListing.Page())
        guard let id = BucketRules.fromPath(try context.parameters.require("bucket")),
              let bucket = try await buckets.bucket(id, tenant: caller.tenant.id)
        else { return try jsonResponse(empty) }
        let owner: UUID?
        switch BucketPolicy.listing(of: bucket, by: caller.principal) {
        case .nothing: return try jsonResponse(empty)
        case .all: owner = nil
        case .ownedBy(let user): owner = user
        }
        let tenant = caller.tenant.id
        let page = try await ObjectListing.page(prefix: input.prefix ?? "", delimiter: input.withDelimiter == true ? "/" : "", start: start,
                                                maxKeys: limit) { prefix, cursor, count in
            try await objects.page(bucket: bucket.id, tenant: tenant, prefix: prefix, after: cursor, owner: owner, limit: count)
        }
        return try jsonResponse(ListV2Answer(page))
    }

    // MARK: Move, copy, remove

    struct Relocation: Decodable {
        var bucketId: String
        var sourceKey: String
        var destinationKey: String
        var destinationBucket: String?
    }

    @Sendable func move(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        guard BucketPolicy.mayWrite(by: caller.principal) else { throw StorageError.accessDenied }
        let input = try await request.decodeJSON(as: Relocation.self, context: context)
        let source = try ObjectName.valid(input.sourceKey), destination = try ObjectName.valid(input.destinationKey)
        let destinationBucket = input.destinationBucket ?? input.bucketId
        guard let sourceBucket = try await buckets.bucket(input.bucketId, tenant: caller.tenant.id),
              try await buckets.bucket(destinationBucket, tenant: caller.tenant.id) != nil
        else { throw StorageError.bucketNotFound }
        // An object the caller cannot see is not found, rather than forbidden: no probing.
        guard let object = try await objects.object(source, bucket: sourceBucket.id, tenant: caller.tenant.id),
              BucketPolicy.mayRead(object, in: sourceBucket, by: caller.principal)
        else { throw StorageError.objectNotFound }
        try await objects.move(source, bucket: input.bucketId, to: destination, in: destinationBucket, tenant: caller.tenant.id,
                               actingUser: BucketPolicy.actingUser(caller.principal))
        return try jsonResponse(["message": "Successfully moved"])
    }

    @Sendable func copy(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        guard BucketPolicy.mayWrite(by: caller.principal) else { throw StorageError.accessDenied }
        let input = try await request.decodeJSON(as: Relocation.self, context: context)
        let sourceName = try ObjectName.valid(input.sourceKey), destination = try ObjectName.valid(input.destinationKey)
        guard let sourceBucket = try await buckets.bucket(input.bucketId, tenant: caller.tenant.id),
              let targetBucket = try await buckets.bucket(input.destinationBucket ?? input.bucketId, tenant: caller.tenant.id)
        else { throw StorageError.bucketNotFound }
        guard let source = try await objects.object(sourceName, bucket: sourceBucket.id, tenant: caller.tenant.id),
              BucketPolicy.mayRead(source, in: sourceBucket, by: caller.principal)
        else { throw StorageError.objectNotFound }
        let object = try await writer.storeCopy(of: source, name: destination, in: targetBucket, tenant: caller.tenant.id,
                                                owner: caller.principal.userID, actingUser: BucketPolicy.actingUser(caller.principal),
                                                upsert: request.headers[Self.upsertField] == "true")
        return try jsonResponse(["Id": object.id.uuidString.lowercased(), "Key": targetBucket.id + "/" + object.name])
    }

    struct Removal: Decodable {
        var prefixes: [String]
    }

    @Sendable func deleteMany(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        guard BucketPolicy.mayWrite(by: caller.principal) else { throw StorageError.accessDenied }
        let input = try await request.decodeJSON(as: Removal.self, context: context)
        guard (1...1000).contains(input.prefixes.count) else {
            throw StorageError.invalidRequest("body/prefixes must have 1 to 1000 names")
        }
        // A bucket id no bucket can have holds nothing to remove (as an unknown one).
        guard let bucketID = BucketRules.fromPath(try context.parameters.require("bucket")) else { return try jsonResponse([JSONValue]()) }
        let removed = try await objects.remove(input.prefixes, bucket: bucketID, tenant: caller.tenant.id,
                                               actingUser: BucketPolicy.actingUser(caller.principal))
        for object in removed { try await files.remove(version: object.version, tenant: caller.tenant.id) }
        return try jsonResponse(removed.map(RemovedObject.init))
    }

    @Sendable func deleteOne(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request)
        guard BucketPolicy.mayWrite(by: caller.principal) else { throw StorageError.accessDenied }
        let (bucket, name) = try await target(request, context, caller)
        let removed = try await objects.remove([name], bucket: bucket.id, tenant: caller.tenant.id,
                                               actingUser: BucketPolicy.actingUser(caller.principal))
        guard let object = removed.first else { throw StorageError.objectNotFound }
        try await files.remove(version: object.version, tenant: caller.tenant.id)
        return try jsonResponse(["message": "Successfully deleted"])
    }

    // MARK: Helpers

    /// `a + b`, or `Int.max` where it would overflow: an offset past any listing (`Int.max`
    /// itself, say) asks for an empty page, not for the process to trap.
    static func saturatingSum(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : sum
    }

    private func target(_ request: Request, _ context: PlatformRequestContext, _ caller: StorageAccess.Caller) async throws -> (Bucket, String) {
        try await ObjectAddress.resolve(request, context, buckets: buckets, tenant: caller.tenant.id, principal: caller.principal)
    }
}
