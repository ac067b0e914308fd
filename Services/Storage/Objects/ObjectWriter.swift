import Contracts
import Foundation
import Hummingbird
import TenantKit

/// Turns an upload's bytes into a committed object, never half-written: the bytes stream into an
/// upload file (bounded by the bucket's limit, the global limit and what is left of the tenant's
/// quota, 413 as soon as one is passed), are fsynced and renamed into their version's file, and
/// only then is the row written, charging the quota in the same transaction. Whatever fails on
/// the way removes what was written; the replaced version's file goes after the commit. A crash
/// between the rename and the commit leaves a file no row names, which the consistency check
/// finds; never a row without its bytes, nor a partial object anyone can read.
struct ObjectWriter: Sendable {
    let objects: ObjectStore
    let files: ObjectFiles
    let maximumObjectBytes: Int64

    /// What to store besides the bytes.
    struct Attributes: Sendable {
        var contentType: String
        var cacheControl: String
        var userMetadata: JSONValue?
        var declaredLength: Int64?
    }

    /// Stores a request's upload body (multipart or raw, `UploadBody`) as `name`, owned by the
    /// principal's user, replacing only what the principal may replace.
    func store(_ request: Request, name: String, in bucket: Bucket, tenant: UUID, principal: StorageAccess.Principal,
               upsert: Bool) async throws -> StoredObject {
        let body = try await UploadBody.read(request)
        return try await store(body.bytes, Attributes(contentType: body.contentType, cacheControl: body.cacheControl,
                                                      userMetadata: body.userMetadata, declaredLength: body.declaredLength),
                               name: name, in: bucket, tenant: tenant, owner: principal.userID,
                               actingUser: BucketPolicy.actingUser(principal), upsert: upsert)
    }

    func store<Bytes: AsyncSequence & Sendable>(_ bytes: Bytes, _ attributes: Attributes, name: String, in bucket: Bucket, tenant: UUID,
                                                owner: UUID?, actingUser: UUID?, upsert: Bool) async throws -> StoredObject
        where Bytes.Element == ByteBuffer {
        // Served back as the downloads' Content-Type: a media type, or refused as a type the
        // bucket does not allow is (a departure: Supabase stores any text).
        guard BucketRules.isMediaType(attributes.contentType), BucketRules.admits(attributes.contentType, in: bucket.allowedMimeTypes) else {
            throw StorageError.invalidMimeType(attributes.contentType)
        }
        let objectLimit = min(bucket.fileSizeLimit ?? maximumObjectBytes, maximumObjectBytes)
        if let declared = attributes.declaredLength, declared > objectLimit { throw StorageError.tooLarge }
        // A first refusal before any byte is read; the write's transaction decides for good.
        let existing = try await objects.object(name, bucket: bucket.id, tenant: tenant)
        if !upsert, existing != nil { throw StorageError.keyExists }
        // A replacement is charged the difference: the replaced bytes count as room.
        let room = try await objects.room(tenant: tenant) + (existing?.size ?? 0)
        let upload: ObjectFiles.Upload
        do {
            upload = try await files.write(bytes, tenant: tenant, limit: min(objectLimit, room))
        } catch let tooLarge as ObjectFiles.TooLarge {
            throw tooLarge.limit < objectLimit ? StorageError.quotaExceeded : StorageError.tooLarge
        }
        let version = UUID()
        do {
            try await files.commit(upload, tenant: tenant, version: version)
        } catch {
            await files.discard(upload.id, tenant: tenant)
            throw error
        }
        return try await record(ObjectStore.Write(name: name, bucket: bucket.id, owner: owner, version: version, size: upload.size,
                                                  contentType: attributes.contentType, cacheControl: attributes.cacheControl,
                                                  sha256: upload.sha256, userMetadata: attributes.userMetadata),
                                tenant: tenant, upsert: upsert, actingUser: actingUser)
    }

    /// A copy of `source` as `name` in `bucket`: a new version file with the same bytes (a hard
    /// link where the file system allows), recorded as an upload's would be, quota and all.
    /// `replacing` stores other attributes than the source's (S3's `REPLACE` directive).
    func storeCopy(of source: StoredObject, name: String, in bucket: Bucket, tenant: UUID, owner: UUID?, actingUser: UUID?,
                   upsert: Bool, replacing attributes: Attributes? = nil) async throws -> StoredObject {
        let contentType = attributes?.contentType ?? source.contentType
        guard attributes == nil || BucketRules.isMediaType(contentType), BucketRules.admits(contentType, in: bucket.allowedMimeTypes) else {
            throw StorageError.invalidMimeType(contentType)
        }
        guard source.size <= min(bucket.fileSizeLimit ?? maximumObjectBytes, maximumObjectBytes) else { throw StorageError.tooLarge }
        let version = UUID()
        try await files.duplicate(version: source.version, of: tenant, as: version, for: tenant)
        return try await record(ObjectStore.Write(name: name, bucket: bucket.id, owner: owner, version: version, size: source.size,
                                                  contentType: contentType, cacheControl: attributes?.cacheControl ?? source.cacheControl,
                                                  sha256: source.sha256, userMetadata: attributes.map(\.userMetadata) ?? source.userMetadata),
                                tenant: tenant, upsert: upsert, actingUser: actingUser)
    }

    /// Records a version whose file is in place: its row (charging the quota), then the replaced
    /// version's file goes; if the row cannot be written, the new file goes instead. (Also the
    /// commit of a completed resumable upload, `ResumableController`.)
    func record(_ write: ObjectStore.Write, tenant: UUID, upsert: Bool, actingUser: UUID?) async throws -> StoredObject {
        do {
            let (object, replaced) = try await objects.put(write, tenant: tenant, upsert: upsert, actingUser: actingUser)
            if let replaced { try? await files.remove(version: replaced, tenant: tenant) }
            return object
        } catch {
            try? await files.remove(version: write.version, tenant: tenant)
            throw error
        }
    }
}
