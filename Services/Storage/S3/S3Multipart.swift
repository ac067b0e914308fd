import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit

/// S3's multipart upload on `/storage/v1/s3` (docs/protocols/storage-reference.md §8.3), for
/// `S3Controller`:
///
/// - **Create** (`POST …?uploads`) records the upload with what the object will be stored with
///   (`Content-Type`, refused at once when the bucket does not admit it; `Cache-Control`;
///   `x-amz-meta-*`).
/// - **UploadPart** (`PUT …?partNumber=N&uploadId=…`, N in 1…10000, a length required) streams
///   the part into an upload file, bounded as the object will be: the parts together may not
///   pass the bucket's or the global limit, and the parts of all the project's uploads in
///   progress may not pass what is left of its quota (413 while streaming). The part is then fsynced and renamed into the upload's directory, and its row
///   (size, MD5) written; a part number sent again replaces the earlier part. Its ETag is the
///   quoted MD5, as S3 clients expect.
/// - **Complete** (`POST …?uploadId=…`, the parts listed in ascending order with their ETags; an
///   empty list takes every part) streams the listed parts, in order, into one upload through
///   `ObjectWriter`, exactly as a PutObject's body: the limits, the quota and the MIME rule
///   apply again, and the object's row is written with the quota charged in its transaction.
///   Then the upload's rows and files go. Its ETag is the object's SHA-256, as everywhere else.
/// - **Abort** (`DELETE …?uploadId=…`) removes the rows, then the files (204).
/// - **UploadPartCopy** (the same, with `x-amz-copy-source` and optionally
///   `x-amz-copy-source-range`; boto3's managed `copy` of objects over 8 MB uses it): the part is
///   read from the source object's file on the thread pool, bounded and recorded the same way.
/// - **ListParts** (`GET …?uploadId=…`) and **ListMultipartUploads** (`GET /{bucket}?uploads`).
struct S3Multipart: Sendable {
    let store: MultipartUploadStore
    let objects: ObjectStore
    let files: ObjectFiles
    let writer: ObjectWriter
    let maximumObjectBytes: Int64

    func create(_ request: Request, _ caller: S3Access.Caller, _ bucket: Bucket, name: String) async throws -> Response {
        _ = try await S3Payload(request, caller: caller).collect(upTo: 64 * 1024)
        let attributes = S3Controller.attributes(request, declaredLength: nil)
        guard BucketRules.isMediaType(attributes.contentType), BucketRules.admits(attributes.contentType, in: bucket.allowedMimeTypes) else {
            throw S3Errors.s3(StorageError.invalidMimeType(attributes.contentType))
        }
        let upload = MultipartUploadStore.Upload(id: UUID(), bucket: bucket.id, name: name, contentType: attributes.contentType,
                                                 cacheControl: attributes.cacheControl, userMetadata: attributes.userMetadata, createdAt: Date())
        try await store.create(upload, tenant: caller.tenant.id)
        return S3XML.response("InitiateMultipartUploadResult", S3XML.element("Bucket", bucket.id) + S3XML.element("Key", name)
                                  + S3XML.element("UploadId", upload.id.uuidString.lowercased()))
    }

    /// The upload a request's `uploadId` names, of this object of this project.
    func upload(_ caller: S3Access.Caller, _ bucket: Bucket, name: String) async throws -> MultipartUploadStore.Upload {
        guard let text = caller.request.parameter("uploadId"), let id = UUID(uuidString: text),
              let upload = try await store.upload(id, bucket: bucket.id, name: name, tenant: caller.tenant.id)
        else { throw S3Error.noSuchUpload }
        return upload
    }

    static let copySourceRange = HTTPField.Name("x-amz-copy-source-range")!

    /// UploadPart, or UploadPartCopy when `source` (the object `x-amz-copy-source` names) is
    /// given: the part is then its bytes, or those of `x-amz-copy-source-range: bytes=a-b`.
    func uploadPart(_ request: Request, _ caller: S3Access.Caller, _ bucket: Bucket, name: String,
                    copying source: StoredObject? = nil) async throws -> Response {
        guard let text = caller.request.parameter("partNumber"), let number = Int(text), (1...10_000).contains(number) else {
            throw S3Error.invalidArgument("Part number must be an integer between 1 and 10000, inclusive.")
        }
        let upload = try await upload(caller, bucket, name: name)
        guard let source else {
            let payload = try S3Payload(request, caller: caller)
            guard let declared = payload.declaredLength else { throw S3Error.missingContentLength }
            let part = try await storePart(payload, digest: payload.digest, declared: declared, number: number, upload: upload, caller, bucket, name: name)
            return Response(status: .ok, headers: [.eTag: part.etag])
        }
        var range: ClosedRange<Int64>?
        if let header = request.headers[Self.copySourceRange] {
            let bounds = header.hasPrefix("bytes=") ? header.dropFirst(6).split(separator: "-", omittingEmptySubsequences: false) : []
            guard bounds.count == 2, let first = Int64(bounds[0]), let last = Int64(bounds[1]), first >= 0, first <= last, last < source.size
            else {
                throw S3Error.invalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last "
                                              + "are the zero-based offsets of the first and last bytes to copy, within the object.")
            }
            range = first...last
        }
        let bytes = MD5Bytes(base: files.bytes(version: source.version, tenant: caller.tenant.id, range: range))
        let declared = range.map { $0.upperBound - $0.lowerBound + 1 } ?? source.size
        let part = try await storePart(bytes, digest: bytes.digest, declared: declared, number: number, upload: upload, caller, bucket, name: name)
        return S3XML.response("CopyPartResult", S3XML.element("ETag", part.etag) + S3XML.element("LastModified", S3XML.timestamp(part.createdAt)))
    }

    /// Streams a part's bytes into its file and records it (replacing the part of that number).
    private func storePart<Bytes: AsyncSequence & Sendable>(
        _ bytes: Bytes, digest: S3Payload.Digest, declared: Int64, number: Int, upload: MultipartUploadStore.Upload,
        _ caller: S3Access.Caller, _ bucket: Bucket, name: String
    ) async throws -> MultipartUploadStore.Part where Bytes.Element == ByteBuffer {
        let tenant = caller.tenant.id
        // The parts together are bounded as the object will be (ObjectWriter): the bucket's and
        // the global limit, and the quota left (what the object replaces counting as room).
        let objectLimit = min(bucket.fileSizeLimit ?? maximumObjectBytes, maximumObjectBytes)
        let existing = try await objects.object(name, bucket: bucket.id, tenant: tenant)
        let room = try await objects.room(tenant: tenant) + (existing?.size ?? 0)
        // Parts are not charged until Complete, so every upload in progress of the project
        // counts against what is left of its quota: abandoned uploads cannot fill the disk.
        let others = try await store.size(of: upload.id, excluding: number)
        let pending = try await store.pendingSize(tenant: tenant, excluding: upload.id, number: number)
        let objectRoom = objectLimit - others, quotaRoom = room - pending
        let limit = max(0, min(objectRoom, quotaRoom))
        let tooLarge = objectRoom <= quotaRoom ? StorageError.tooLarge : StorageError.quotaExceeded
        guard declared <= limit else { throw S3Errors.s3(tooLarge) }
        let written: ObjectFiles.Upload
        do {
            written = try await files.write(bytes, tenant: tenant, limit: limit)
        } catch is ObjectFiles.TooLarge {
            throw S3Errors.s3(tooLarge)
        }
        guard let md5 = digest.md5 else {
            await files.discard(written.id, tenant: tenant)
            throw S3Error(.badRequest, "IncompleteBody", "The part's body did not end well.")
        }
        let file = UUID()
        do {
            try await files.keepPart(written, multipart: upload.id, tenant: tenant, file: file)
        } catch {
            await files.discard(written.id, tenant: tenant)
            throw error
        }
        let part = MultipartUploadStore.Part(number: number, file: file, size: written.size, md5: md5, createdAt: Date())
        let replaced: UUID?
        do {
            replaced = try await store.put(part, upload: upload.id, tenant: tenant)
        } catch {
            await files.removePart(file: file, multipart: upload.id, tenant: tenant)
            throw error is MultipartUploadStore.NoUpload ? S3Error.noSuchUpload : error
        }
        if let replaced { await files.removePart(file: replaced, multipart: upload.id, tenant: tenant) }
        return part
    }

    func complete(_ request: Request, _ caller: S3Access.Caller, _ bucket: Bucket, name: String) async throws -> Response {
        let upload = try await upload(caller, bucket, name: name)
        let document = try S3XML.parse(try await S3Payload(request, caller: caller).collect(upTo: 4 << 20))
        guard document.name == "CompleteMultipartUpload" else { throw S3Error.malformedXML("the root element must be CompleteMultipartUpload") }
        let stored = try await store.parts(of: upload.id)
        let byNumber = Dictionary(stored.map { ($0.number, $0) }, uniquingKeysWith: { first, _ in first })
        var chosen: [MultipartUploadStore.Part] = []
        let listed = document.children("Part")
        if listed.isEmpty {
            chosen = stored
        } else {
            var previous = 0
            for element in listed {
                guard let number = element.child("PartNumber").flatMap({ Int($0.text.trimmingCharacters(in: .whitespaces)) }) else {
                    throw S3Error.malformedXML("every Part needs a PartNumber")
                }
                guard number > previous else {
                    throw S3Error(.badRequest, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
                }
                previous = number
                guard let part = byNumber[number] else { throw Self.invalidPart }
                if let etag = element.child("ETag")?.text {
                    let given = etag.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
                    guard given == part.md5 else { throw Self.invalidPart }
                }
                chosen.append(part)
            }
        }
        guard !chosen.isEmpty else { throw S3Error.malformedXML("the upload has no parts") }
        let size = chosen.reduce(Int64(0)) { $0 + $1.size }
        let attributes = ObjectWriter.Attributes(contentType: upload.contentType, cacheControl: upload.cacheControl,
                                                 userMetadata: upload.userMetadata, declaredLength: size)
        let object = try await writer.store(files.parts(chosen.map(\.file), multipart: upload.id, tenant: caller.tenant.id), attributes,
                                            name: name, in: bucket, tenant: caller.tenant.id, owner: nil, actingUser: nil, upsert: true)
        if try await store.remove(upload.id, tenant: caller.tenant.id) {
            await files.removeMultipart(upload.id, tenant: caller.tenant.id)
        }
        return S3XML.response("CompleteMultipartUploadResult", S3XML.element("Location", bucket.id + "/" + name) + S3XML.element("Bucket", bucket.id)
                                  + S3XML.element("Key", name) + S3XML.element("ETag", object.etag))
    }

    static let invalidPart = S3Error(.badRequest, "InvalidPart",
                                     "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")

    func abort(_ request: Request, _ caller: S3Access.Caller, _ bucket: Bucket, name: String) async throws -> Response {
        let upload = try await upload(caller, bucket, name: name)
        guard try await store.remove(upload.id, tenant: caller.tenant.id) else { throw S3Error.noSuchUpload }
        await files.removeMultipart(upload.id, tenant: caller.tenant.id)
        return Response(status: .noContent)
    }

    func listParts(_ request: Request, _ caller: S3Access.Caller, _ bucket: Bucket, name: String) async throws -> Response {
        let upload = try await upload(caller, bucket, name: name)
        let query = caller.request
        let maxParts = min(max(Int(query.parameter("max-parts") ?? "") ?? 1000, 0), 1000)
        let marker = Int(query.parameter("part-number-marker") ?? "") ?? 0
        let after = try await store.parts(of: upload.id).filter { $0.number > marker }
        let page = after.prefix(maxParts)
        var body = S3XML.element("Bucket", bucket.id) + S3XML.element("Key", name) + S3XML.element("UploadId", upload.id.uuidString.lowercased())
            + S3XML.element("PartNumberMarker", String(marker)) + S3XML.element("MaxParts", String(maxParts))
            + S3XML.element("IsTruncated", after.count > page.count ? "true" : "false") + S3XML.element("StorageClass", "STANDARD")
        if after.count > page.count, let last = page.last { body += S3XML.element("NextPartNumberMarker", String(last.number)) }
        for part in page {
            body += S3XML.group("Part", S3XML.element("PartNumber", String(part.number)) + S3XML.element("LastModified", S3XML.timestamp(part.createdAt))
                                    + S3XML.element("ETag", part.etag) + S3XML.element("Size", String(part.size)))
        }
        return S3XML.response("ListPartsResult", body)
    }

    /// The bucket's uploads in progress under `prefix` (at most `max-uploads`, 1000).
    func listUploads(_ request: Request, _ caller: S3Access.Caller, _ bucket: Bucket) async throws -> Response {
        let query = caller.request
        let prefix = try S3Controller.nameParameter(query, "prefix") ?? ""
        let maxUploads = min(max(Int(query.parameter("max-uploads") ?? "") ?? 1000, 0), 1000)
        let uploads = try await store.uploads(bucket: bucket.id, prefix: prefix, tenant: caller.tenant.id, limit: maxUploads + 1)
        let page = uploads.prefix(maxUploads)
        var body = S3XML.element("Bucket", bucket.id) + S3XML.element("KeyMarker", "") + S3XML.element("UploadIdMarker", "")
            + S3XML.element("Prefix", prefix) + S3XML.element("MaxUploads", String(maxUploads))
            + S3XML.element("IsTruncated", uploads.count > page.count ? "true" : "false")
        for upload in page {
            body += S3XML.group("Upload", S3XML.element("Key", upload.name) + S3XML.element("UploadId", upload.id.uuidString.lowercased())
                                    + S3XML.element("Initiated", S3XML.timestamp(upload.createdAt)) + S3XML.element("StorageClass", "STANDARD"))
        }
        return S3XML.response("ListMultipartUploadsResult", body)
    }
}
