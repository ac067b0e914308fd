import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import TenantKit

/// Storage's S3-compatible endpoint, `/storage/v1/s3` (docs/protocols/storage-reference.md §8):
/// path-style requests signed with one of the project's S3 access keys (`S3Access`), acting as
/// the project itself; answers and errors in S3's XML with real HTTP statuses (`S3Errors`).
///
/// | request (after `/storage/v1/s3`) | operation |
/// |---|---|
/// | `GET /` | ListBuckets |
/// | `PUT` / `HEAD` / `DELETE /{bucket}` | CreateBucket (`x-amz-acl: public-read` → public), HeadBucket, DeleteBucket (204) |
/// | `GET /{bucket}?list-type=2`, `GET /{bucket}` | ListObjectsV2, ListObjects |
/// | `GET /{bucket}?location`, `?versioning`, `?uploads` | GetBucketLocation, GetBucketVersioning, ListMultipartUploads |
/// | `POST /{bucket}?delete` | DeleteObjects |
/// | `PUT /{bucket}/{key}` (`x-amz-copy-source`: CopyObject) | PutObject |
/// | `GET` / `HEAD /{bucket}/{key}` (`?tagging`: an empty tag set; `?uploadId`: ListParts) | GetObject (Range), HeadObject |
/// | `DELETE /{bucket}/{key}` | DeleteObject (204, also when missing) |
/// | `POST /{bucket}/{key}?uploads`, `PUT …?partNumber&uploadId`, `POST …?uploadId`, `DELETE …?uploadId` | multipart: create, upload part (or copy one, `x-amz-copy-source`), complete, abort (`S3Multipart`) |
///
/// Objects are written through `ObjectWriter` as the Storage API writes them: streamed into an
/// upload file, 413 as soon as the bucket's or the global limit or the quota is passed, fsynced
/// and renamed, then recorded with the quota charged in the same transaction. ETags of objects
/// are the platform's SHA-256 (as on `/object/`); boto3 does not check them.
struct S3Controller: Sendable {
    static let prefix = "/storage/v1/s3"

    let access: S3Access
    let buckets: BucketStore
    let objects: ObjectStore
    let files: ObjectFiles
    let writer: ObjectWriter
    let download: ObjectDownload
    let multipart: S3Multipart

    func addRoutes(to router: Router<PlatformRequestContext>, routes: RouteTable) {
        let group = router.group(RouterPath(Self.prefix))
        group.add(middleware: ProtocolErrorMiddleware(S3Errors(), prefix: Self.prefix, routes: routes))
        group.get(use: listBuckets)
        for method in [HTTPRequest.Method.get, .head, .put, .post, .delete] {
            group.on("**", method: method, use: handle)
        }
    }

    // MARK: Dispatch

    /// What a request's path names: a bucket's raw segment, and the raw key after it (nil for
    /// bucket operations).
    struct Target {
        var bucket: String
        var key: String?
    }

    static func target(_ path: String) -> Target {
        var rest = Substring(path.dropFirst(prefix.count))
        while rest.hasPrefix("/") { rest = rest.dropFirst() }
        guard let slash = rest.firstIndex(of: "/") else { return Target(bucket: String(rest), key: nil) }
        let key = rest[rest.index(after: slash)...]
        return Target(bucket: String(rest[..<slash]), key: key.isEmpty ? nil : String(key))
    }

    @Sendable func handle(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await access.caller(request, context: context)
        let target = Self.target(request.uri.path)
        // `/storage/v1/s3/` is the service itself, as without the slash.
        if target.bucket.isEmpty, request.method == .get { return try await listBuckets(caller) }
        let query = caller.request
        let has = { (name: String) in query.parameter(name) != nil }
        // An operation this endpoint does not offer is named by a sub-resource (`?tagging`,
        // `?acl`, `?cors`, …): refused, never taken for the plain operation (a DELETE
        // `?cors` must not delete the bucket, nor a PUT `?tagging` overwrite the object).
        let selectors = Set(query.parameters.map(\.name)).intersection(Self.subresources)
        let offered = (target.key == nil ? Self.bucketSelectors : Self.objectSelectors)[request.method] ?? []
        guard selectors.isSubset(of: offered) else { throw S3Error.notImplemented }
        guard let key = target.key else {
            switch request.method {
            case .get where has("location"):
                _ = try await bucket(target, caller)
                return S3XML.response("LocationConstraint", S3XML.escape(caller.signature.region))
            case .get where has("versioning"):
                _ = try await bucket(target, caller)
                return S3XML.response("VersioningConfiguration", "")
            case .get where has("uploads"): return try await multipart.listUploads(request, caller, try await bucket(target, caller))
            case .get: return try await listObjects(request, caller, try await bucket(target, caller), version2: query.parameter("list-type") == "2")
            case .head: return try await headBucket(caller, target)
            case .put: return try await createBucket(request, caller, target)
            case .delete: return try await deleteBucket(caller, target)
            case .post where has("delete"): return try await deleteObjects(request, caller, try await bucket(target, caller))
            default: throw S3Error.notImplemented
            }
        }
        switch request.method {
        case .put where has("uploadId") || has("partNumber"):
            let destination = try await bucket(target, caller), name = try ObjectName.fromPath(key)
            let source = request.headers[Self.copySource] == nil ? nil : try await copySource(request, caller)
            return try await multipart.uploadPart(request, caller, destination, name: name, copying: source)
        case .put where request.headers[Self.copySource] != nil:
            return try await copyObject(request, caller, try await bucket(target, caller), name: try ObjectName.fromPath(key))
        case .put: return try await putObject(request, caller, try await bucket(target, caller), rawKey: key)
        case .get where has("uploadId"):
            return try await multipart.listParts(request, caller, try await bucket(target, caller), name: try ObjectName.fromPath(key))
        case .get where has("tagging"):
            _ = try await object(caller, try await bucket(target, caller), name: try ObjectName.fromPath(key))
            return S3XML.response("Tagging", "<TagSet></TagSet>")
        case .get, .head: return try await getObject(request, caller, try await bucket(target, caller), name: try ObjectName.fromPath(key))
        case .post where has("uploads"):
            return try await multipart.create(request, caller, try await bucket(target, caller), name: try ObjectName.fromPath(key))
        case .post where has("uploadId"):
            return try await multipart.complete(request, caller, try await bucket(target, caller), name: try ObjectName.fromPath(key))
        case .delete where has("uploadId"):
            return try await multipart.abort(request, caller, try await bucket(target, caller), name: try ObjectName.fromPath(key))
        case .delete: return try await deleteObject(caller, try await bucket(target, caller), name: try ObjectName.fromPath(key))
        default: throw S3Error.notImplemented
        }
    }

    /// S3's sub-resources: query parameters that name another operation on the same path.
    static let subresources: Set<String> = [
        "accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption", "intelligent-tiering", "inventory",
        "legal-hold", "lifecycle", "location", "logging", "metadataConfiguration", "metrics", "notification", "object-lock",
        "ownershipControls", "partNumber", "policy", "policyStatus", "publicAccessBlock", "replication", "requestPayment",
        "restore", "retention", "select", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning", "versions",
        "website",
    ]
    /// The sub-resources each method serves, on a bucket and on an object.
    static let bucketSelectors: [HTTPRequest.Method: Set<String>] = [.get: ["location", "versioning", "uploads"], .post: ["delete"]]
    static let objectSelectors: [HTTPRequest.Method: Set<String>] = [
        .get: ["uploadId", "tagging"], .put: ["uploadId", "partNumber"], .post: ["uploads", "uploadId"], .delete: ["uploadId"],
    ]

    static let copySource = HTTPField.Name("x-amz-copy-source")!
    static let metadataDirective = HTTPField.Name("x-amz-metadata-directive")!
    static let acl = HTTPField.Name("x-amz-acl")!
    static let bucketRegion = HTTPField.Name("x-amz-bucket-region")!
    static let missingMeta = HTTPField.Name("x-amz-missing-meta")!

    /// The project's bucket a path names.
    func bucket(_ target: Target, _ caller: S3Access.Caller) async throws -> Bucket {
        guard let id = BucketRules.fromPath(target.bucket), let bucket = try await buckets.bucket(id, tenant: caller.tenant.id) else {
            throw S3Error.noSuchBucket
        }
        return bucket
    }

    func object(_ caller: S3Access.Caller, _ bucket: Bucket, name: String) async throws -> StoredObject {
        guard let object = try await objects.object(name, bucket: bucket.id, tenant: caller.tenant.id) else { throw S3Error.noSuchKey }
        return object
    }

    // MARK: Buckets

    @Sendable func listBuckets(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await listBuckets(try await access.caller(request, context: context))
    }

    func listBuckets(_ caller: S3Access.Caller) async throws -> Response {
        let all = try await buckets.list(tenant: caller.tenant.id, publicOnly: false)
        let items = all.map { bucket in
            S3XML.group("Bucket", S3XML.element("Name", bucket.id) + S3XML.element("CreationDate", S3XML.timestamp(bucket.createdAt)))
        }
        return S3XML.response("ListAllMyBucketsResult", S3XML.group("Buckets", items.joined()))
    }

    func headBucket(_ caller: S3Access.Caller, _ target: Target) async throws -> Response {
        _ = try await bucket(target, caller)
        return Response(status: .ok, headers: [Self.bucketRegion: caller.signature.region])
    }

    func createBucket(_ request: Request, _ caller: S3Access.Caller, _ target: Target) async throws -> Response {
        guard let decoded = target.bucket.removingPercentEncoding else { throw S3Error(.badRequest, "InvalidBucketName", "Bucket name invalid") }
        let id: String
        do { id = try BucketRules.validID(decoded) } catch { throw S3Error(.badRequest, "InvalidBucketName", "Bucket name invalid") }
        // A CreateBucketConfiguration body (a LocationConstraint) is read and ignored.
        _ = try await S3Payload(request, caller: caller).collect(upTo: 64 * 1024)
        let acl = request.headers[Self.acl]?.lowercased()
        let now = Date()
        let bucket = Bucket(id: id, name: id, isPublic: acl == "public-read" || acl == "public-read-write", userAccess: .owner,
                            fileSizeLimit: nil, allowedMimeTypes: nil, createdAt: now, updatedAt: now)
        do {
            try await buckets.create(bucket, tenant: caller.tenant.id)
        } catch is BucketStore.Exists {
            throw S3Error(.conflict, "BucketAlreadyExists", "The resource already exists")
        }
        return Response(status: .ok, headers: [.location: "/" + id])
    }

    func deleteBucket(_ caller: S3Access.Caller, _ target: Target) async throws -> Response {
        let bucket = try await bucket(target, caller)
        // Uploads in progress go with the bucket (their rows cascade; their files follow).
        let uploads = try await multipart.store.ids(bucket: bucket.id, tenant: caller.tenant.id)
        switch try await buckets.delete(bucket.id, tenant: caller.tenant.id) {
        case .deleted:
            for upload in uploads { await files.removeMultipart(upload, tenant: caller.tenant.id) }
            return Response(status: .noContent)
        case .notFound: throw S3Error.noSuchBucket
        case .notEmpty: throw S3Error(.conflict, "BucketNotEmpty", "The bucket you tried to delete is not empty")
        }
    }

    // MARK: Objects

    /// What an object is stored with, from S3's headers: `Content-Type` (default
    /// `application/octet-stream`), `Cache-Control` (default `no-cache`), `x-amz-meta-*` as the
    /// user's metadata (names lower-cased, the prefix dropped).
    static func attributes(_ request: Request, declaredLength: Int64?) -> ObjectWriter.Attributes {
        let contentType = request.headers[.contentType]?.trimmingCharacters(in: .whitespaces) ?? ""
        let cacheControl = request.headers[.cacheControl]?.trimmingCharacters(in: .whitespaces) ?? ""
        var metadata: [String: JSONValue] = [:]
        for field in request.headers where field.name.canonicalName.hasPrefix("x-amz-meta-") {
            let name = String(field.name.canonicalName.dropFirst("x-amz-meta-".count))
            guard !name.isEmpty else { continue }
            if case .string(let existing) = metadata[name] {
                metadata[name] = .string(existing + "," + field.value)
            } else {
                metadata[name] = .string(field.value)
            }
        }
        return ObjectWriter.Attributes(contentType: contentType.isEmpty ? UploadBody.defaultContentType : contentType,
                                       cacheControl: cacheControl.isEmpty ? "no-cache" : cacheControl,
                                       userMetadata: metadata.isEmpty ? nil : .object(metadata), declaredLength: declaredLength)
    }

    func putObject(_ request: Request, _ caller: S3Access.Caller, _ bucket: Bucket, rawKey: String) async throws -> Response {
        let payload = try S3Payload(request, caller: caller)
        // A "folder" (a key ending in `/`, no bytes) is stored as Supabase stores it.
        let name = rawKey.hasSuffix("/") && payload.declaredLength == 0
            ? try ObjectName.fromPath(rawKey + ".emptyFolderPlaceholder") : try ObjectName.fromPath(rawKey)
        let object = try await writer.store(payload, Self.attributes(request, declaredLength: payload.declaredLength), name: name, in: bucket,
                                            tenant: caller.tenant.id, owner: nil, actingUser: nil, upsert: true)
        return Response(status: .ok, headers: [.eTag: object.etag])
    }

    /// Query parameters of GetObject that set an answer's header.
    static let overrides: [(String, HTTPField.Name)] = [
        ("response-content-type", .contentType), ("response-content-disposition", .contentDisposition),
        ("response-cache-control", .cacheControl), ("response-content-encoding", .contentEncoding),
        ("response-content-language", .contentLanguage), ("response-expires", .expires),
    ]

    static let preconditionFailed = S3Error(.preconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")

    /// `If-Match` / `If-Unmodified-Since` (s3transfer sends `If-Match` with the ETag it saw while
    /// it fetches an object's ranges): 412 when the object changed.
    static func preconditionsHold(_ object: StoredObject, _ request: Request) -> Bool {
        if let tags = request.headers[.ifMatch] {
            return tags.split(separator: ",").contains { tag in
                let value = tag.trimmingCharacters(in: .whitespaces)
                return value == "*" || value == object.etag
            }
        }
        if let since = request.headers[.ifUnmodifiedSince], let date = ObjectDownload.parseHTTPDate(since) {
            return object.updatedAt.timeIntervalSince1970.rounded(.down) <= date.timeIntervalSince1970
        }
        return true
    }

    func getObject(_ request: Request, _ caller: S3Access.Caller, _ bucket: Bucket, name: String) async throws -> Response {
        let object = try await object(caller, bucket, name: name)
        guard Self.preconditionsHold(object, request) else { throw Self.preconditionFailed }
        var response = try await download.respond(object, tenant: caller.tenant.id, request: request)
        var missing = 0
        if case .object(let metadata)? = object.userMetadata {
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
                guard case .string(let text) = value, let field = HTTPField.Name("x-amz-meta-" + key),
                      text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F })
                else { missing += 1; continue }
                response.headers[field] = text
            }
        }
        if missing > 0 { response.headers[Self.missingMeta] = String(missing) }
        for (parameter, field) in Self.overrides {
            if let value = caller.request.parameter(parameter), !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                response.headers[field] = value
            }
        }
        return response
    }

    func deleteObject(_ caller: S3Access.Caller, _ bucket: Bucket, name: String) async throws -> Response {
        let removed = try await objects.remove([name], bucket: bucket.id, tenant: caller.tenant.id, actingUser: nil)
        for object in removed { try await files.remove(version: object.version, tenant: caller.tenant.id) }
        return Response(status: .noContent)
    }

    /// `<Delete><Object><Key>…</Key></Object>…</Delete>`: at most 1000 keys; missing ones count
    /// as deleted (S3's rule), keys that are not valid names as errors.
    func deleteObjects(_ request: Request, _ caller: S3Access.Caller, _ bucket: Bucket) async throws -> Response {
        let document = try S3XML.parse(try await S3Payload(request, caller: caller).collect(upTo: 2 << 20))
        guard document.name == "Delete" else { throw S3Error.malformedXML("the root element must be Delete") }
        let keys = document.children("Object").map { $0.child("Key")?.text ?? "" }
        guard (1...1000).contains(keys.count) else { throw S3Error.malformedXML("Delete must name 1 to 1000 objects") }
        let quiet = document.child("Quiet")?.text.lowercased() == "true"
        var valid: [String] = [], invalid: [String] = []
        for key in keys {
            if (try? ObjectName.valid(key)) != nil { valid.append(key) } else { invalid.append(key) }
        }
        let removed = try await objects.remove(valid, bucket: bucket.id, tenant: caller.tenant.id, actingUser: nil)
        for object in removed { try await files.remove(version: object.version, tenant: caller.tenant.id) }
        var body = ""
        if !quiet {
            for key in valid { body += S3XML.group("Deleted", S3XML.element("Key", key)) }
        }
        for key in invalid {
            body += S3XML.group("Error", S3XML.element("Key", key) + S3XML.element("Code", "InvalidKey") + S3XML.element("Message", "Invalid key"))
        }
        return S3XML.response("DeleteResult", body)
    }

    /// `x-amz-copy-source: <bucket>/<key>` (URL-encoded, an optional leading `/` and
    /// `?versionId=…`), within the project. `x-amz-metadata-directive: REPLACE` stores the
    /// request's attributes instead of the source's.
    func copyObject(_ request: Request, _ caller: S3Access.Caller, _ bucket: Bucket, name: String) async throws -> Response {
        let original = try await copySource(request, caller)
        let replace = request.headers[Self.metadataDirective]?.uppercased() == "REPLACE"
        let copied = try await writer.storeCopy(of: original, name: name, in: bucket, tenant: caller.tenant.id, owner: nil, actingUser: nil,
                                                upsert: true, replacing: replace ? Self.attributes(request, declaredLength: nil) : nil)
        return S3XML.response("CopyObjectResult", S3XML.element("ETag", copied.etag) + S3XML.element("LastModified", S3XML.timestamp(copied.updatedAt)))
    }

    /// The project's object `x-amz-copy-source` names.
    func copySource(_ request: Request, _ caller: S3Access.Caller) async throws -> StoredObject {
        var source = Substring(request.headers[Self.copySource] ?? "")
        if let question = source.firstIndex(of: "?") { source = source[..<question] }
        while source.hasPrefix("/") { source = source.dropFirst() }
        guard let slash = source.firstIndex(of: "/"), let sourceBucketID = BucketRules.fromPath(String(source[..<slash])) else {
            throw S3Error.invalidArgument("x-amz-copy-source must be <bucket>/<key>.")
        }
        let sourceName = try ObjectName.fromPath(String(source[source.index(after: slash)...]))
        guard let sourceBucket = try await buckets.bucket(sourceBucketID, tenant: caller.tenant.id) else { throw S3Error.noSuchBucket }
        return try await object(caller, sourceBucket, name: sourceName)
    }

    // MARK: Listing

    /// ListObjectsV2 (`list-type=2`: `continuation-token`, `start-after`) and ListObjects
    /// (`marker`), with `prefix`, `delimiter`, `max-keys` (at most 1000) and `encoding-type=url`
    /// (which boto3 always asks for; every name it covers is then percent-encoded).
    func listObjects(_ request: Request, _ caller: S3Access.Caller, _ bucket: Bucket, version2: Bool) async throws -> Response {
        let query = caller.request
        let prefix = try Self.nameParameter(query, "prefix") ?? "", delimiter = try Self.nameParameter(query, "delimiter") ?? ""
        let maxKeys: Int
        if let text = query.parameter("max-keys") {
            guard let value = Int(text), value >= 0 else { throw S3Error.invalidArgument("max-keys must be a non-negative integer.") }
            maxKeys = min(value, 1000)
        } else {
            maxKeys = 1000
        }
        guard let encodingType = query.parameter("encoding-type").map({ $0.lowercased() }) ?? .some(""), encodingType.isEmpty || encodingType == "url" else {
            throw S3Error.invalidArgument("encoding-type must be url.")
        }
        let encode = { (text: String) in encodingType == "url" ? SigV4.uriEncode(text, keepSlash: true) : text }
        var start = Cursor(key: "", inclusive: false)
        let token = query.parameter("continuation-token")
        let startAfter = try Self.nameParameter(query, "start-after"), marker = try Self.nameParameter(query, "marker")
        if version2, let token {
            guard let cursor = Cursor(token: token), !Self.hasControlCharacters(cursor.key) else {
                throw S3Error.invalidArgument("The continuation token provided is incorrect.")
            }
            start = cursor
        } else if let after = version2 ? startAfter : marker {
            start = Cursor(key: after, inclusive: false)
        }
        let page = try await ObjectListing.page(prefix: prefix, delimiter: delimiter, start: start, maxKeys: maxKeys,
                                                  fetch: { try await objects.page(bucket: bucket.id, tenant: caller.tenant.id, prefix: $0, after: $1, limit: $2) })
        var body = S3XML.element("Name", bucket.id) + S3XML.element("Prefix", encode(prefix))
        if version2 {
            if let token { body += S3XML.element("ContinuationToken", token) }
            if let startAfter { body += S3XML.element("StartAfter", encode(startAfter)) }
            body += S3XML.element("KeyCount", String(page.objects.count + page.commonPrefixes.count))
        } else {
            body += S3XML.element("Marker", encode(marker ?? ""))
        }
        body += S3XML.element("MaxKeys", String(maxKeys))
        if !delimiter.isEmpty { body += S3XML.element("Delimiter", encode(delimiter)) }
        if !encodingType.isEmpty { body += S3XML.element("EncodingType", encodingType) }
        body += S3XML.element("IsTruncated", page.isTruncated ? "true" : "false")
        if page.isTruncated {
            if version2, let next = page.next {
                body += S3XML.element("NextContinuationToken", next.token)
            } else if !version2, !delimiter.isEmpty, let last = page.lastEntry {
                body += S3XML.element("NextMarker", encode(last))
            }
        }
        for entry in page.objects {
            body += S3XML.group("Contents", S3XML.element("Key", encode(entry.name)) + S3XML.element("LastModified", S3XML.timestamp(entry.updatedAt))
                                    + S3XML.element("ETag", entry.etag) + S3XML.element("Size", String(entry.size))
                                    + S3XML.element("StorageClass", "STANDARD"))
        }
        for common in page.commonPrefixes {
            body += S3XML.group("CommonPrefixes", S3XML.element("Prefix", encode(common)))
        }
        return S3XML.response("ListBucketResult", body)
    }

    typealias Cursor = ObjectListing.Cursor

    /// A query parameter compared with object names (a prefix, a marker): at most 1,024 bytes
    /// and no control characters, which no name holds (and PostgreSQL's text cannot take NUL).
    static func nameParameter(_ query: SigV4.Request, _ name: String) throws -> String? {
        guard let value = query.parameter(name) else { return nil }
        guard value.utf8.count <= ObjectName.maximumBytes, !hasControlCharacters(value) else {
            throw S3Error.invalidArgument("\(name) must be at most \(ObjectName.maximumBytes) bytes, without control characters.")
        }
        return value
    }

    static func hasControlCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }
}
