import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import TenantKit

/// Resumable uploads with TUS 1.0 on `/storage/v1/upload/resumable`, as Supabase's Storage
/// serves tus-js-client and tuspy (docs/protocols/storage-reference.md §6; departures in §12):
///
/// | route | answer |
/// |---|---|
/// | `OPTIONS upload/resumable[/{id}]` | 204, the server's TUS capabilities (no credentials needed) |
/// | `POST upload/resumable` (`Upload-Length`, `Upload-Metadata`: bucketName, objectName, contentType, cacheControl, metadata; `x-upsert`; optionally the first bytes) | 201, `Location: /storage/v1/upload/resumable/{id}` |
/// | `HEAD upload/resumable/{id}` | 200, `Upload-Offset` (durable), `Upload-Length`, `Upload-Metadata` |
/// | `PATCH upload/resumable/{id}` (`Upload-Offset`, `application/offset+octet-stream`) | 204, the new `Upload-Offset`; the last byte commits the object |
/// | `DELETE upload/resumable/{id}` | 204, the upload and its bytes gone |
///
/// The same rules as a REST upload (`ObjectsController`): the secret key is the service; a
/// user's token writes by the bucket's policy and owns the object; the publishable key alone
/// cannot write. The bucket's `file_size_limit`, `STORAGE_MAX_OBJECT_BYTES`, the allowed MIME
/// types and the project's quota are checked at creation (413/415 before a byte is taken; the
/// quota counts what the project's other live uploads will take), and again at the commit, which
/// is a REST upload's (`ObjectWriter.record`: the row, the quota charged in its transaction, the
/// replaced version's file removed). Nothing is visible before that commit.
///
/// An upload is the project's and its creator's: another project's credentials, another user
/// and the publishable key all find nothing (404). Expired uploads answer 410; their rows and
/// files stay until the consistency check removes them (`ResumableUploadStore.expired`).
///
/// TUS errors are plain text with the real status (`TusError`), as `@tus/server` answers;
/// credentials are refused before TUS, in the Storage API's JSON, as in Supabase.
struct ResumableController: Sendable {
    let access: StorageAccess
    let buckets: BucketStore
    let objects: ObjectStore
    let uploads: ResumableUploadStore
    let files: ResumableFiles
    let writer: ObjectWriter
    let maximumObjectBytes: Int64
    let locks: UploadLocks
    let keys: SigningKeyStore
    var now: @Sendable () -> Date = { Date() }
    /// Seconds an upload lives after its creation, and after each PATCH that takes bytes
    /// (Supabase: one hour after creation).
    var lifetime = 3600

    /// The public path of an upload, also its `Location`. Relative (TUS 1.0 allows it; tuspy and
    /// tus-js-client resolve it against their endpoint): right through the gateway and against the
    /// service's own port alike, with no forwarded host or scheme to trust.
    static func location(_ id: UUID, signed: Bool = false) -> String {
        (signed ? "/storage/v1/upload/resumable/sign/" : "/storage/v1/upload/resumable/") + id.uuidString.lowercased()
    }

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        // `…/sign`: the same protocol, the caller from a signed upload URL's token (`x-signature`).
        for (base, signed) in [("/upload/resumable", false), ("/upload/resumable/sign", true)] {
            group.on(RouterPath(base), method: .options, use: options)
            group.post(RouterPath(base)) { try await create($0, $1, signed: signed) }
            group.on(RouterPath(base + "/:id"), method: .options, use: options)
            group.head(RouterPath(base + "/:id")) { try await head($0, $1, signed: signed) }
            group.patch(RouterPath(base + "/:id")) { try await patch($0, $1, signed: signed) }
            group.delete(RouterPath(base + "/:id")) { try await terminate($0, $1, signed: signed) }
        }
    }

    // MARK: Who calls

    /// Whom a TUS request acts for, and whether its upload may replace an existing object.
    struct Caller: Sendable {
        var tenant: UUID
        var principal: StorageAccess.Principal
        var upsert: Bool
        /// For a signed upload: the token, whose object (`<bucket>/<name>`) is the only one it may write.
        var signature: SignedURLToken?

        /// Refuses an object a signed upload's token was not made for.
        func mayUpload(_ bucket: String, _ name: String) throws {
            try signature?.matches(bucket + "/" + name)
        }
    }

    /// The caller from the Storage API's credentials (`apikey`, `Authorization`; `x-upsert`), or
    /// on `…/sign` from a signed upload URL's token in `x-signature` (storage-reference §6): the
    /// token's project, its signer as the owner, its upsert; the object is checked against the
    /// token once the upload names it.
    private func caller(_ request: Request, signed: Bool) async throws -> Caller {
        guard signed else {
            let caller = try await access.caller(request)
            return Caller(tenant: caller.tenant.id, principal: caller.principal, upsert: request.headers[TusHeaders.upsert] == "true")
        }
        guard let text = request.headers[Self.signatureField], !text.isEmpty else {
            throw StorageError(.forbidden, "AccessDenied", error: "Unauthorized", "headers must have required property 'x-signature'")
        }
        let tenant = try await access.tenant(signedBy: text, request)
        guard let key = try await keys.key(tenant: tenant.id) else { throw SignedURLToken.Refusal.badSignature }
        let token = try SignedURLToken.verified(text, key: key, now: now(), scope: .upload, url: nil)
        return Caller(tenant: tenant.id, principal: token.owner.map { .user($0) } ?? .service, upsert: token.upsert ?? false,
                      signature: token)
    }

    static let signatureField = HTTPField.Name("x-signature")!

    /// `caller`, its refusal in the Storage API's JSON (as Supabase refuses credentials before
    /// TUS) with `Tus-Resumable`, which TUS asks of every answer.
    private func tusCaller(_ request: Request, signed: Bool) async throws -> Caller {
        do {
            return try await caller(request, signed: signed)
        } catch {
            let vocabulary = StorageErrors()
            var refusal = vocabulary.own(error)
            if refusal == nil, let failure = error as? ProjectResolver.Failure { refusal = vocabulary.failure(failure) }
            guard var refusal else { throw error }
            refusal.headers[TusHeaders.tusResumable] = TusHeaders.version
            throw refusal
        }
    }

    // MARK: Routes

    @Sendable func options(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        Response(status: .noContent, headers: [
            TusHeaders.tusResumable: TusHeaders.version, TusHeaders.tusVersion: TusHeaders.version,
            TusHeaders.tusExtension: TusHeaders.extensions, TusHeaders.tusMaxSize: String(maximumObjectBytes),
            .accessControlAllowMethods: "POST, HEAD, PATCH, OPTIONS, DELETE",
            .accessControlAllowHeaders: "Authorization, Content-Type, Location, Tus-Extension, Tus-Max-Size, Tus-Resumable, Tus-Version, "
                + "Upload-Length, Upload-Metadata, Upload-Offset, X-Requested-With, X-Upsert, Upload-Expires, ApiKey, x-signature",
            .accessControlMaxAge: "86400",
        ])
    }

    func create(_ request: Request, _ context: PlatformRequestContext, signed: Bool) async throws -> Response {
        let caller = try await tusCaller(request, signed: signed)
        return try await answer(request) {
            try TusHeaders.requireVersion(request.headers)
            if request.headers[TusHeaders.uploadDeferLength] != nil {
                throw TusError(.badRequest, "Upload-Defer-Length is not supported: send Upload-Length")
            }
            guard let length = try TusHeaders.integer(request.headers, TusHeaders.uploadLength) else { throw TusError.lengthRequired }
            guard let header = request.headers[TusHeaders.uploadMetadata] else { throw TusError.metadataRequired }
            let metadata = try UploadMetadata(try TusHeaders.metadata(header))
            try caller.mayUpload(metadata.bucket, metadata.objectName)
            let carriesBytes = TusHeaders.isChunk(request.headers)
            let declared = carriesBytes ? try TusHeaders.integer(request.headers, .contentLength) : nil
            if let declared, declared > length { throw TusError.sizeExceeded }

            let bucket = try await writableBucket(metadata, caller)
            let existing = try await objects.object(metadata.objectName, bucket: bucket.id, tenant: caller.tenant)
            if let existing {
                guard caller.upsert else { throw StorageError.keyExists }
                if let user = BucketPolicy.actingUser(caller.principal), existing.owner != user { throw StorageError.accessDenied }
            }
            guard length <= min(bucket.fileSizeLimit ?? maximumObjectBytes, maximumObjectBytes) else { throw TusError.maximumSizeExceeded }
            // The quota, less what the project's other live uploads will take; a replaced
            // object's bytes count as room (a replacement is charged the difference).
            let room = try await objects.room(tenant: caller.tenant) - uploads.reserved(tenant: caller.tenant)
                + (existing?.size ?? 0)
            guard length <= room else { throw StorageError.quotaExceeded }

            let id = UUID()
            try await files.create(id, tenant: caller.tenant)
            let upload: ResumableUpload
            do {
                upload = try await uploads.create(id: id, tenant: caller.tenant, metadata: metadata, length: length,
                                                  owner: caller.principal.userID, upsert: caller.upsert, lifetime: lifetime)
            } catch {
                await files.remove(id, tenant: caller.tenant)
                throw error
            }
            // creation-with-upload: the first bytes in the same request; an empty upload is
            // complete at once. Its Location not yet sent, an upload whose first request fails
            // is no use to anyone: it goes.
            let progress: Progress
            do {
                progress = try await locks.with(id) {
                    try await receive(carriesBytes ? request.body : nil, declared: declared, into: upload, caller)
                }
            } catch {
                await end(upload, caller)
                throw error
            }
            var headers = progress.headers
            headers[.location] = Self.location(id, signed: signed)
            return Response(status: .created, headers: headers)
        }
    }

    func head(_ request: Request, _ context: PlatformRequestContext, signed: Bool) async throws -> Response {
        let caller = try await tusCaller(request, signed: signed)
        return try await answer(request) {
            try TusHeaders.requireVersion(request.headers)
            let upload = try await visibleUpload(context, caller)
            return Response(status: .ok, headers: [
                TusHeaders.uploadOffset: String(upload.offset), TusHeaders.uploadLength: String(upload.length),
                TusHeaders.uploadMetadata: TusHeaders.encodeMetadata(upload.metadata.pairs),
                TusHeaders.uploadExpires: ObjectDownload.httpDate(upload.expiresAt), .cacheControl: "no-store",
            ])
        }
    }

    func patch(_ request: Request, _ context: PlatformRequestContext, signed: Bool) async throws -> Response {
        let caller = try await tusCaller(request, signed: signed)
        return try await answer(request) {
            try TusHeaders.requireVersion(request.headers)
            guard TusHeaders.isChunk(request.headers) else { throw TusError.chunkTypeRequired }
            guard let offset = try TusHeaders.integer(request.headers, TusHeaders.uploadOffset) else { throw TusError.offsetRequired }
            let declared = try TusHeaders.integer(request.headers, .contentLength)
            let found = try await visibleUpload(context, caller)
            let progress = try await locks.with(found.id) {
                // Read again under the lock: a PATCH that held it may have moved the offset.
                guard let upload = try await uploads.upload(found.id, tenant: caller.tenant) else { throw TusError.notFound }
                if upload.isExpired { throw TusError.gone }
                guard upload.offset == offset else { throw TusError.offsetConflict }
                return try await receive(request.body, declared: declared, into: upload, caller)
            }
            return Response(status: .noContent, headers: progress.headers)
        }
    }

    func terminate(_ request: Request, _ context: PlatformRequestContext, signed: Bool) async throws -> Response {
        let caller = try await tusCaller(request, signed: signed)
        return try await answer(request) {
            try TusHeaders.requireVersion(request.headers)
            let upload = try await visibleUpload(context, caller, expiredToo: true)
            try await locks.with(upload.id) {
                try await uploads.remove(upload.id, tenant: caller.tenant)
                await files.remove(upload.id, tenant: caller.tenant)
            }
            return Response(status: .noContent)
        }
    }

    // MARK: Writing

    /// Where an upload stands after a request's bytes.
    struct Progress: Sendable {
        var offset: Int64
        /// Until when it may be continued; nil once complete.
        var expiresAt: Date?

        var headers: HTTPFields {
            var headers: HTTPFields = [TusHeaders.uploadOffset: String(offset)]
            if let expiresAt {
                headers[TusHeaders.uploadExpires] = ObjectDownload.httpDate(expiresAt)
            } else {
                headers[TusHeaders.tusComplete] = "1"
            }
            return headers
        }
    }

    /// Appends `body` (when given) at the upload's offset and records the new offset; commits
    /// the object when the last byte is in. The caller holds the upload's lock.
    private func receive(_ body: RequestBody?, declared: Int64?, into upload: ResumableUpload, _ caller: Caller) async throws -> Progress {
        var upload = upload
        if let body {
            let room = upload.length - upload.offset
            if let declared, declared > room { throw TusError.sizeExceeded }
            let appended: ResumableFiles.Appended
            do {
                appended = try await files.append(body, upload.id, tenant: caller.tenant, at: upload.offset, limit: room)
            } catch is ObjectFiles.TooLarge {
                throw TusError.sizeExceeded
            } catch is ObjectFiles.NotFound {
                // A row whose file is gone (a crash between the commit and the row's removal).
                try await uploads.remove(upload.id, tenant: caller.tenant)
                throw TusError.notFound
            }
            if appended.written > 0 {
                // Recorded even when this request's task is cancelled: the bytes are on disk.
                let (uploads, id, tenant, from, to, lifetime) = (uploads, upload.id, caller.tenant, upload.offset,
                                                                 upload.offset + appended.written, lifetime)
                guard let advanced = try await Task(operation: {
                    try await uploads.advance(id, tenant: tenant, from: from, to: to, lifetime: lifetime)
                }).value else { throw TusError.offsetConflict }
                upload = advanced
            }
            if appended.interruption != nil {
                throw TusError(.badRequest, "The request's body ended early; HEAD tells the offset to resume from")
            }
        }
        guard upload.offset == upload.length else { return Progress(offset: upload.offset, expiresAt: upload.expiresAt) }
        try await commit(upload, caller)
        return Progress(offset: upload.offset, expiresAt: nil)
    }

    /// Makes the complete upload its object, as a REST upload is made one: its bytes hashed and
    /// moved into the version's file, the row written (quota charged, `x-upsert` honoured) by
    /// `ObjectWriter.record`; then the upload's row goes. Whatever refuses the object (the bucket
    /// gone or changed, the key taken, the quota passed) ends the upload: the client must start
    /// over, and nothing is left behind.
    private func commit(_ upload: ResumableUpload, _ caller: Caller) async throws {
        let metadata = upload.metadata
        do {
            guard let bucket = try await buckets.bucket(metadata.bucket, tenant: caller.tenant) else { throw StorageError.bucketNotFound }
            guard BucketRules.admits(metadata.contentType, in: bucket.allowedMimeTypes) else { throw StorageError.invalidMimeType(metadata.contentType) }
            guard upload.length <= min(bucket.fileSizeLimit ?? maximumObjectBytes, maximumObjectBytes) else { throw TusError.maximumSizeExceeded }
        } catch {
            await end(upload, caller)
            throw error
        }
        let staged: ObjectFiles.Upload
        do {
            staged = try await files.stage(upload.id, tenant: caller.tenant)
        } catch is ObjectFiles.NotFound {
            try await uploads.remove(upload.id, tenant: caller.tenant)
            throw TusError.notFound
        }
        // From here the upload's file is the staged one: on failure both go.
        do {
            let version = UUID()
            do {
                try await writer.files.commit(staged, tenant: caller.tenant, version: version)
            } catch {
                await writer.files.discard(staged.id, tenant: caller.tenant)
                throw error
            }
            _ = try await writer.record(
                ObjectStore.Write(name: metadata.objectName, bucket: metadata.bucket, owner: upload.owner, version: version, size: staged.size,
                                  contentType: metadata.contentType, cacheControl: metadata.cacheControl, sha256: staged.sha256,
                                  userMetadata: metadata.userMetadata),
                tenant: caller.tenant, upsert: upload.upsert, actingUser: BucketPolicy.actingUser(caller.principal))
        } catch {
            _ = try? await uploads.remove(upload.id, tenant: caller.tenant)
            throw error
        }
        try await uploads.remove(upload.id, tenant: caller.tenant)
    }

    /// Removes an upload's row and file.
    private func end(_ upload: ResumableUpload, _ caller: Caller) async {
        _ = try? await uploads.remove(upload.id, tenant: caller.tenant)
        await files.remove(upload.id, tenant: caller.tenant)
    }

    // MARK: Helpers

    /// The bucket an upload is for, if the caller may write to it: a private bucket is not
    /// found by the publishable key, which writes nowhere.
    private func writableBucket(_ metadata: UploadMetadata, _ caller: Caller) async throws -> Bucket {
        guard (try? BucketRules.validID(metadata.bucket)) != nil,
              let bucket = try await buckets.bucket(metadata.bucket, tenant: caller.tenant)
        else { throw StorageError.bucketNotFound }
        if caller.principal == .anonymous, !bucket.isPublic { throw StorageError.bucketNotFound }
        guard BucketPolicy.mayWrite(by: caller.principal) else { throw StorageError.accessDenied }
        guard BucketRules.isMediaType(metadata.contentType), BucketRules.admits(metadata.contentType, in: bucket.allowedMimeTypes) else {
            throw StorageError.invalidMimeType(metadata.contentType)
        }
        return bucket
    }

    /// The upload the route names, if the caller may see it: the project's, and the service's
    /// or its creator's; 404 otherwise (never 403: ids do not leak), 410 once expired.
    private func visibleUpload(_ context: PlatformRequestContext, _ caller: Caller, expiredToo: Bool = false) async throws -> ResumableUpload {
        guard let id = UUID(uuidString: try context.parameters.require("id")),
              let upload = try await uploads.upload(id, tenant: caller.tenant)
        else { throw TusError.notFound }
        switch caller.principal {
        case .service: break
        case .user(let user) where upload.owner == user: break
        default: throw TusError.notFound
        }
        try caller.mayUpload(upload.metadata.bucket, upload.metadata.objectName)
        if upload.isExpired, !expiredToo { throw TusError.gone }
        return upload
    }

    /// Runs a TUS route: its errors in TUS's words (plain text, the real status), the Storage
    /// API's own errors (a missing bucket, a taken key, the quota) with their status and message
    /// as plain text too; `Tus-Resumable` on every answer. Anything else is left to the
    /// Storage API's error middleware (a 500, logged).
    private func answer(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await body()
        } catch let error as TusError {
            return error.response(for: request.method)
        } catch {
            guard let known = StorageErrors().own(error) else { throw error }
            return TusError(known.status, known.message, headers: known.headers).response(for: request.method)
        }
        response.headers[TusHeaders.tusResumable] = TusHeaders.version
        return response
    }
}
