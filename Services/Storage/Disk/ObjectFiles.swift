#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation
import Hummingbird
import NIOPosix
import Synchronization

/// A tenant's object bytes on disk.
///
/// **Layout.** Under `STORAGE_ROOT`, each tenant has the directory `TenantDirectories` makes,
/// `<root>/<tenant-id>/`, and in it, created on first use (mode 0700):
///
/// ```
/// <root>/<tenant-id>/objects/<version-uuid>   one immutable file (0600) per object version
/// <root>/<tenant-id>/uploads/<upload-uuid>    an upload in progress, or one never committed
/// <root>/<tenant-id>/resumable/<upload-id>     a resumable (TUS) upload's bytes so far (ResumableFiles)
/// <root>/<tenant-id>/multipart/<upload-id>/<part-file-uuid>
///                                             a part of an S3 multipart upload in progress
/// ```
///
/// All names are lower-case UUIDs chosen here or by the caller: bucket and object names never
/// reach the disk (they live in the object's row), so no client string can traverse, collide
/// or exceed a name limit. A version file is never written again once in `objects/`; a new
/// upload of the same object is a new version, and the old file is removed after its row.
///
/// **Durability: why no partial object is ever visible.**
/// 1. `write` streams the body into `uploads/<upload-uuid>`, never into `objects/`. A cut
///    connection, a body over the limit, cancellation or a full disk remove that file before the
///    error is rethrown; a crash (or `kill -9`) mid-stream leaves it in `uploads/`, where no row
///    points.
/// 2. `commit` fsyncs the upload's bytes, renames the file into `objects/<version-uuid>` (an
///    atomic replace within one file system) and fsyncs `objects/`, so both the bytes and the name
///    are on disk before it returns.
/// 3. Only then does the caller commit the object's row naming that version. A crash before the
///    row commits leaves a complete file no row names; a crash after leaves a row whose file is
///    already durable. Readers find files only through rows, so they see the old version or the
///    complete new one, never a partial one.
/// 4. An S3 multipart upload's parts stream into `uploads/` like any upload, and are then
///    fsynced and renamed into their upload's directory (`keepPart`); Complete reads them in
///    order (`parts`) as the body of one new upload, committed as above, and the directory goes
///    (`removeMultipart`), as it does on Abort. A part's row names its file, as an object's row
///    does.
/// 5. What a crash can leave behind — upload files, version files without rows (and a replaced
///    version's file whose `remove` never ran) — is exactly what `inventory` lists for the
///    consistency check, which removes it.
///
/// **Threading.** Every blocking call (open, write, fsync, rename, link, pread, close, readdir)
/// runs on the `NIOThreadPool`, never on an event loop or Swift's cooperative pool. Clean-up
/// (closing a descriptor, removing a partial upload) runs there even when the calling task is
/// cancelled. Descriptors are opened `O_CLOEXEC` and always closed: on success, on error, on
/// cancellation, and — for a download body that is never written — when the body is dropped.
struct ObjectFiles: Sendable {
    let root: URL
    let threadPool: NIOThreadPool
    /// `duplicate` tries a hard link before copying; tests turn this off to exercise the copy.
    var hardLinks = true

    /// The bytes read from disk per chunk of a download (and of a copy).
    static let readChunkSize = 64 * 1024
    /// Body chunks smaller than this are gathered up to it before they are written: one thread
    /// hop per 64 KiB at most, whatever size the client's packets arrive in.
    static let writeChunkSize = 64 * 1024

    init(root: URL, threadPool: NIOThreadPool = .singleton) {
        self.root = root
        self.threadPool = threadPool
    }

    /// A finished upload file: its id (the name in `uploads/`), size in bytes and SHA-256.
    struct Upload: Sendable, Hashable {
        var id: UUID
        var size: Int64
        /// Lower-case hex.
        var sha256: String
    }

    /// More than `limit` bytes arrived (the caller's 413).
    struct TooLarge: Error, Equatable {
        var limit: Int64
    }

    /// No such version file (or, for `commit`, neither the upload nor the version file).
    struct NotFound: Error, Equatable {
        var tenant: UUID
        var file: UUID
    }

    /// The tenant's directory does not exist (the tenant is not registered, or was removed): it
    /// is not made again here, so a write racing a tenant's removal cannot bring it back.
    struct NoTenantDirectory: Error, Equatable {
        var tenant: UUID
    }

    /// `read`'s range is not within the file (`size` bytes): the caller's 416.
    struct InvalidRange: Error, Equatable {
        var range: ClosedRange<Int64>
        var size: Int64
    }

    /// A system call failed: `code` is its errno (`ENOSPC`, `EDQUOT`, `EIO`, …).
    struct SystemCallError: Error, CustomStringConvertible {
        var call: String
        var path: String
        var code: Int32

        var description: String { "\(call) \(path): \(String(cString: strerror(code))) (errno \(code))" }
    }

    // MARK: Paths

    func tenantDirectory(_ tenant: UUID) -> String {
        TenantDirectories(root: root, threadPool: threadPool).directory(for: tenant).path
    }

    func objectsDirectory(_ tenant: UUID) -> String { tenantDirectory(tenant) + "/objects" }
    func uploadsDirectory(_ tenant: UUID) -> String { tenantDirectory(tenant) + "/uploads" }
    func objectPath(version: UUID, tenant: UUID) -> String { objectsDirectory(tenant) + "/" + version.uuidString.lowercased() }
    func uploadPath(upload: UUID, tenant: UUID) -> String { uploadsDirectory(tenant) + "/" + upload.uuidString.lowercased() }
    func multipartDirectory(_ tenant: UUID) -> String { tenantDirectory(tenant) + "/multipart" }
    func multipartDirectory(_ multipart: UUID, tenant: UUID) -> String { multipartDirectory(tenant) + "/" + multipart.uuidString.lowercased() }
    func partPath(file: UUID, multipart: UUID, tenant: UUID) -> String {
        multipartDirectory(multipart, tenant: tenant) + "/" + file.uuidString.lowercased()
    }

    // MARK: Uploads

    /// Streams `body` into a new upload file of the tenant, hashing it (SHA-256) as it goes.
    ///
    /// Throws `TooLarge` as soon as more than `limit` bytes have arrived (before writing them).
    /// On any error — too large, the body's own error when a client disconnects, cancellation
    /// (also when the body simply ends because its task was cancelled), a full disk — the upload
    /// file is removed before rethrowing. Memory stays bounded: at most one body chunk plus
    /// `writeChunkSize` gathered bytes, whatever the body's length.
    func write<Body: AsyncSequence & Sendable>(_ body: Body, tenant: UUID, limit: Int64) async throws -> Upload
    where Body.Element == ByteBuffer {
        let id = UUID()
        let path = uploadPath(upload: id, tenant: tenant)
        let directory = uploadsDirectory(tenant)
        let tenantPath = tenantDirectory(tenant)
        let threadPool = threadPool
        let file = try await threadPool.runIfActive {
            let flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC
            let descriptor: Int32
            if let opened = try POSIX.openFileIfPresent(path, flags, mode: 0o600) {
                descriptor = opened
            } else {
                // The first upload of the tenant: make uploads/ (in an existing tenant directory).
                try POSIX.makeDirectory(directory, in: tenantPath, tenant: tenant, durable: false)
                descriptor = try POSIX.openFile(path, flags, mode: 0o600)
            }
            return OpenFile(descriptor: descriptor, path: path, threadPool: threadPool)
        }
        do {
            var hasher = SHA256()
            var size: Int64 = 0
            var pending = ByteBuffer()
            for try await chunk in body {
                try Task.checkCancellation()
                size += Int64(chunk.readableBytes)
                guard size <= limit else { throw TooLarge(limit: limit) }
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                if pending.readableBytes == 0, chunk.readableBytes >= Self.writeChunkSize {
                    try await file.append(chunk)
                } else {
                    pending.writeImmutableBuffer(chunk)
                    if pending.readableBytes >= Self.writeChunkSize {
                        try await file.append(pending)
                        pending.clear()
                    }
                }
            }
            // A body may end quietly when its task is cancelled (AsyncStream does): that is not
            // the whole body, so it must not become an upload.
            try Task.checkCancellation()
            if pending.readableBytes > 0 {
                try await file.append(pending)
            }
            try await file.close()
            return Upload(id: id, size: size, sha256: Self.hex(hasher.finalize()))
        } catch {
            try? await file.close()
            _ = try? await threadPool.runUncancellable { try POSIX.removeFile(path) }
            throw error
        }
    }

    /// Makes the upload the object file of `version`: fsyncs the file, renames it into
    /// `objects/`, fsyncs `objects/` — so the bytes and the name are durable before the caller
    /// commits the object's row. Idempotent: when the upload is gone and the version file is
    /// there, it was committed already (the directory is fsynced again). Throws `NotFound` when
    /// neither exists.
    ///
    /// One job on the thread pool: cancelled before it starts, nothing happened (the upload
    /// stays for the caller to `discard`); once started, it completes.
    func commit(_ upload: Upload, tenant: UUID, version: UUID) async throws {
        let from = uploadPath(upload: upload.id, tenant: tenant)
        let to = objectPath(version: version, tenant: tenant)
        let objects = objectsDirectory(tenant)
        let tenantPath = tenantDirectory(tenant)
        try await threadPool.runIfActive {
            guard let descriptor = try POSIX.openFileIfPresent(from, O_RDONLY | O_CLOEXEC) else {
                guard POSIX.exists(to) else { throw NotFound(tenant: tenant, file: upload.id) }
                try POSIX.fsyncDirectory(objects)
                return
            }
            try POSIX.syncAndClose(descriptor, path: from)
            if try !POSIX.renameFile(from, to, missingIsFalse: true) {
                // The tenant's first object: make objects/ durably, then again.
                try POSIX.makeDirectory(objects, in: tenantPath, tenant: tenant, durable: true)
                try POSIX.renameFile(from, to)
            }
            try POSIX.fsyncDirectory(objects)
        }
    }

    /// Removes an upload file (missing is fine). Runs even when the calling task is cancelled;
    /// a failure is left to the consistency check, which finds every upload file.
    func discard(_ upload: UUID, tenant: UUID) async {
        let path = uploadPath(upload: upload, tenant: tenant)
        _ = try? await threadPool.runUncancellable { try POSIX.removeFile(path) }
    }

    // MARK: Versions

    /// Removes an object version's file (missing is fine): after its row was replaced or deleted.
    /// Runs even when the calling task is cancelled (the row is already gone).
    func remove(version: UUID, tenant: UUID) async throws {
        let path = objectPath(version: version, tenant: tenant)
        _ = try await threadPool.runUncancellable { try POSIX.removeFile(path) }
    }

    /// A new version file, `newVersion` of `newTenant`, with the same bytes as `version` of
    /// `tenant` (for copy): a hard link when the file system allows (version files are
    /// immutable, so sharing the inode is safe, and removing one name leaves the other), else a
    /// copy through an upload file, committed like any upload. Either way the new name is durable
    /// when this returns. Idempotent: a new version file already there is kept.
    func duplicate(version: UUID, of tenant: UUID, as newVersion: UUID, for newTenant: UUID) async throws {
        let source = objectPath(version: version, tenant: tenant)
        if hardLinks {
            let target = objectPath(version: newVersion, tenant: newTenant)
            let objects = objectsDirectory(newTenant)
            let tenantPath = tenantDirectory(newTenant)
            let linked = try await threadPool.runIfActive { () throws -> Bool in
                try POSIX.makeDirectory(objects, in: tenantPath, tenant: newTenant, durable: true)
                switch POSIX.linkFile(source, target) {
                case 0, EEXIST:
                    try POSIX.fsyncDirectory(objects)
                    return true
                case ENOENT:
                    throw NotFound(tenant: tenant, file: version)
                case EXDEV, EPERM, EMLINK, ENOTSUP, EOPNOTSUPP:
                    return false  // another file system, or one without hard links: copy
                case let code:
                    throw SystemCallError(call: "link", path: target, code: code)
                }
            }
            if linked { return }
        }
        let (file, size) = try await open(version: version, tenant: tenant)
        let upload: Upload
        do {
            upload = try await write(FileChunks(file: file, bytes: 0..<size, threadPool: threadPool), tenant: newTenant, limit: .max)
            try await file.close()
        } catch {
            try? await file.close()
            throw error
        }
        do {
            try await commit(upload, tenant: newTenant, version: newVersion)
        } catch {
            await discard(upload.id, tenant: newTenant)
            throw error
        }
    }

    /// The object's bytes — all, or the inclusive byte offsets of `range` — as a response body
    /// that reads the file in `readChunkSize` chunks on the thread pool as the client consumes
    /// them (each read waits for the writer to take the previous chunk).
    ///
    /// The file is opened here, so a version unlinked afterwards (an overwrite, a delete) is
    /// still served whole from the open descriptor. The descriptor is closed when the body has
    /// been written, when writing fails or is cancelled, or — when the body is never written
    /// (a HEAD, an error in between) — when the body is dropped. A body is written once.
    /// `contentLength` is the number of bytes it carries.
    ///
    /// Throws `NotFound` when there is no such file, `InvalidRange` when `range` is not within it.
    func read(version: UUID, tenant: UUID, range: ClosedRange<Int64>?) async throws -> ResponseBody {
        let (file, size, small) = try await openForReading(version: version, tenant: tenant, range: range)
        if let small {
            // Read whole in the job that opened it (and closed): one thread hop for a small object.
            return ResponseBody(byteBuffer: small)
        }
        guard let file else { throw NotFound(tenant: tenant, file: version) }
        let bytes: Range<Int64>
        if let range {
            guard range.lowerBound >= 0, range.upperBound < size else {
                try? await file.close()
                throw InvalidRange(range: range, size: size)
            }
            bytes = range.lowerBound..<(range.upperBound + 1)
        } else {
            bytes = 0..<size
        }
        let chunks = FileChunks(file: file, bytes: bytes, threadPool: threadPool)
        return ResponseBody(contentLength: Int(bytes.count)) { writer in
            guard file.claim() else { throw BodyAlreadyWritten(path: file.path) }
            do {
                for try await chunk in chunks {
                    try await writer.write(chunk)
                }
                try await file.close()
            } catch {
                try? await file.close()
                throw error
            }
            try await writer.finish(nil)
        }
    }

    /// A read body written a second time (the descriptor is closed after the first).
    struct BodyAlreadyWritten: Error {
        var path: String
    }

    /// Opens a version file for reading, with its size.
    private func open(version: UUID, tenant: UUID) async throws -> (OpenFile, Int64) {
        let path = objectPath(version: version, tenant: tenant)
        let threadPool = threadPool
        return try await threadPool.runIfActive { () throws -> (OpenFile, Int64) in
            guard let descriptor = try POSIX.openFileIfPresent(path, O_RDONLY | O_CLOEXEC) else {
                throw NotFound(tenant: tenant, file: version)
            }
            let file = OpenFile(descriptor: descriptor, path: path, threadPool: threadPool)
            return (file, try POSIX.status(of: descriptor, path: path).size)
        }
    }

    /// `open`, for `read`. When the bytes asked for (`range`, or the
    /// whole file) fit in one read chunk, they are read in the same job and the file is closed
    /// there: the third value holds them, and there is no open file.
    private func openForReading(version: UUID, tenant: UUID, range: ClosedRange<Int64>?) async throws -> (OpenFile?, Int64, ByteBuffer?) {
        let path = objectPath(version: version, tenant: tenant)
        let threadPool = threadPool
        return try await threadPool.runIfActive { () throws -> (OpenFile?, Int64, ByteBuffer?) in
            guard let descriptor = try POSIX.openFileIfPresent(path, O_RDONLY | O_CLOEXEC) else {
                throw NotFound(tenant: tenant, file: version)
            }
            let file = OpenFile(descriptor: descriptor, path: path, threadPool: threadPool)
            let size = try POSIX.status(of: descriptor, path: path).size
            guard size > 0 else { return (file, size, nil) }
            let wanted = range ?? 0...(size - 1)
            guard wanted.lowerBound >= 0, wanted.upperBound < size, wanted.count <= Self.readChunkSize else {
                return (file, size, nil)
            }
            var buffer = ByteBufferAllocator().buffer(capacity: wanted.count)
            _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted.count) { memory in
                try POSIX.readFully(descriptor, UnsafeMutableRawBufferPointer(rebasing: memory[..<wanted.count]), at: wanted.lowerBound, path: path)
            }
            try file.closeNow()
            return (nil, size, buffer)
        }
    }

    // MARK: Multipart uploads (S3)

    /// Makes a finished upload the part file `file` of the multipart upload: fsyncs it, renames
    /// it into `multipart/<multipart>/` (made as needed) and fsyncs that directory. On failure the
    /// upload stays for the caller to `discard`.
    func keepPart(_ upload: Upload, multipart: UUID, tenant: UUID, file: UUID) async throws {
        let from = uploadPath(upload: upload.id, tenant: tenant)
        let to = partPath(file: file, multipart: multipart, tenant: tenant)
        let parent = multipartDirectory(tenant), directory = multipartDirectory(multipart, tenant: tenant)
        let tenantPath = tenantDirectory(tenant)
        try await threadPool.runIfActive {
            let descriptor = try POSIX.openFile(from, O_RDONLY | O_CLOEXEC)
            try POSIX.syncAndClose(descriptor, path: from)
            if try !POSIX.renameFile(from, to, missingIsFalse: true) {
                try POSIX.makeDirectory(parent, in: tenantPath, tenant: tenant, durable: true)
                try POSIX.makeDirectory(directory, in: parent, tenant: tenant, durable: true)
                try POSIX.renameFile(from, to)
            }
            try POSIX.fsyncDirectory(directory)
        }
    }

    /// Removes one part file (missing is fine): a part uploaded again replaced it.
    func removePart(file: UUID, multipart: UUID, tenant: UUID) async {
        let path = partPath(file: file, multipart: multipart, tenant: tenant)
        _ = try? await threadPool.runUncancellable { try POSIX.removeFile(path) }
    }

    /// Removes a multipart upload's directory and every file in it (missing is fine). Runs even
    /// when the calling task is cancelled (its rows are already gone).
    func removeMultipart(_ multipart: UUID, tenant: UUID) async {
        let directory = multipartDirectory(multipart, tenant: tenant)
        _ = try? await threadPool.runUncancellable {
            for file in try POSIX.listFiles(directory) {
                try POSIX.removeFile(directory + "/" + file.id.uuidString.lowercased())
            }
            while rmdir(directory) != 0, errno == EINTR {}
        }
    }

    /// Every multipart upload directory of the tenant with its part files (the consistency
    /// check): the directory's last change (the later of modification and status change) and
    /// each file's.
    func multipartInventory(tenant: UUID) async throws -> [(upload: UUID, changed: Date, files: [(id: UUID, changed: Date)])] {
        let parent = multipartDirectory(tenant)
        return try await threadPool.runIfActive {
            try POSIX.listDirectories(parent).map { directory in
                let files = try POSIX.listFiles(parent + "/" + directory.id.uuidString.lowercased())
                return (directory.id, directory.changed, files.map { (id: $0.id, changed: max($0.modified, $0.changed)) })
            }
        }
    }

    /// The bytes of the part files `files` of a multipart upload, one after the other, read in
    /// `readChunkSize` chunks on the thread pool as they are asked for (each file opened when
    /// its turn comes, closed when read). A missing file throws `NotFound`.
    func parts(_ files: [UUID], multipart: UUID, tenant: UUID) -> PartFiles {
        PartFiles(paths: files.map { (id: $0, path: partPath(file: $0, multipart: multipart, tenant: tenant), range: nil) }, tenant: tenant,
                  threadPool: threadPool)
    }

    /// A version's bytes (all, or the inclusive offsets of `range`) as a sequence read on the
    /// thread pool as it is consumed: the source of S3's UploadPartCopy. A missing file throws
    /// `NotFound`, a range not within it `InvalidRange`, when the first chunk is asked for.
    func bytes(version: UUID, tenant: UUID, range: ClosedRange<Int64>?) -> PartFiles {
        PartFiles(paths: [(id: version, path: objectPath(version: version, tenant: tenant), range: range)], tenant: tenant, threadPool: threadPool)
    }

    // MARK: Consistency

    /// What a tenant's directory holds, for the consistency check.
    struct Inventory: Sendable {
        /// Every version file, with its size.
        var versions: [UUID: Int64] = [:]
        /// When each version file last changed: the later of its modification and its status
        /// change (a rename into `objects/` and a hard link both change the latter), so a file
        /// that was just committed or linked reads as new, however old its bytes.
        var versionsChanged: [UUID: Date] = [:]
        /// Every upload file, with its last modification (an upload in progress keeps writing).
        var uploads: [(id: UUID, modified: Date)] = []
    }

    /// Every version file and every upload file of the tenant. Names that are not lower-case
    /// UUIDs, and anything not a regular file, are not ours and not listed. A tenant without
    /// files (or without a directory) has none.
    func inventory(tenant: UUID) async throws -> Inventory {
        let objects = objectsDirectory(tenant)
        let uploads = uploadsDirectory(tenant)
        let (versionFiles, uploadFiles) = try await threadPool.runIfActive {
            (try POSIX.listFiles(objects), try POSIX.listFiles(uploads))
        }
        var inventory = Inventory()
        for file in versionFiles {
            inventory.versions[file.id] = file.size
            inventory.versionsChanged[file.id] = max(file.modified, file.changed)
        }
        inventory.uploads = uploadFiles.map { (id: $0.id, modified: $0.modified) }
        return inventory
    }

    /// Whether the version file exists now (the consistency check asks again before it repairs).
    func exists(version: UUID, tenant: UUID) async throws -> Bool {
        let path = objectPath(version: version, tenant: tenant)
        return try await threadPool.runIfActive {
            var status = stat()
            if lstat(path, &status) == 0 { return true }
            let code = errno
            if code == ENOENT { return false }
            throw SystemCallError(call: "lstat", path: path, code: code)
        }
    }

    // MARK: Helpers

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func hex(_ digest: SHA256.Digest) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(SHA256.byteCount * 2)
        for byte in digest {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// An open descriptor, closed exactly once: by `close()` (on the thread pool, even when the task
/// is cancelled), or — when its owner never got that far, as with a download body dropped
/// unwritten — on the thread pool when the last reference goes.
private final class OpenFile: Sendable {
    let descriptor: Int32
    let path: String
    private let threadPool: NIOThreadPool
    private let isOpen = Atomic<Bool>(true)
    private let isClaimed = Atomic<Bool>(false)

    init(descriptor: Int32, path: String, threadPool: NIOThreadPool) {
        self.descriptor = descriptor
        self.path = path
        self.threadPool = threadPool
    }

    /// True for the first caller only: a read body is written once.
    func claim() -> Bool {
        !isClaimed.exchange(true, ordering: .acquiringAndReleasing)
    }

    /// Writes the buffer's bytes at the end of the file (on the thread pool).
    func append(_ buffer: ByteBuffer) async throws {
        let descriptor = descriptor
        let path = path
        try await threadPool.runIfActive {
            try buffer.withUnsafeReadableBytes { try POSIX.writeAll(descriptor, $0, path: path) }
        }
    }

    /// Closes the descriptor on the calling thread (one already on the thread pool); a second
    /// call, or a later `close()`, does nothing.
    func closeNow() throws {
        guard isOpen.exchange(false, ordering: .acquiringAndReleasing) else { return }
        if systemClose(descriptor) != 0 {
            throw ObjectFiles.SystemCallError(call: "close", path: path, code: errno)
        }
    }

    /// Closes the descriptor; a second call does nothing. Throws close's own error (a delayed
    /// write error on some file systems).
    func close() async throws {
        guard isOpen.exchange(false, ordering: .acquiringAndReleasing) else { return }
        let descriptor = descriptor
        let path = path
        try await threadPool.runUncancellable {
            // Not retried on EINTR: on Linux the descriptor is released either way.
            if systemClose(descriptor) != 0 {
                throw ObjectFiles.SystemCallError(call: "close", path: path, code: errno)
            }
        }
    }

    deinit {
        guard isOpen.load(ordering: .acquiring) else { return }
        let descriptor = descriptor
        threadPool.submit { _ in _ = systemClose(descriptor) }
    }
}

func systemClose(_ descriptor: Int32) -> Int32 {
    close(descriptor)
}

/// A file's bytes in `bytes`, read in chunks on the thread pool as they are asked for.
private struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let file: OpenFile
    let bytes: Range<Int64>
    let threadPool: NIOThreadPool

    func makeAsyncIterator() -> Iterator {
        Iterator(file: file, offset: bytes.lowerBound, end: bytes.upperBound, threadPool: threadPool)
    }

    struct Iterator: AsyncIteratorProtocol {
        let file: OpenFile
        var offset: Int64
        let end: Int64
        let threadPool: NIOThreadPool

        mutating func next() async throws -> ByteBuffer? {
            guard offset < end else { return nil }
            try Task.checkCancellation()
            let length = Int(Swift.min(Int64(ObjectFiles.readChunkSize), end - offset))
            let (descriptor, path, offset) = (file.descriptor, file.path, offset)
            let chunk = try await threadPool.runIfActive {
                var buffer = ByteBufferAllocator().buffer(capacity: length)
                _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { memory in
                    try POSIX.readFully(descriptor, UnsafeMutableRawBufferPointer(rebasing: memory[..<length]), at: offset, path: path)
                }
                return buffer
            }
            self.offset += Int64(length)
            return chunk
        }
    }
}

/// Several files' bytes one after the other (a multipart upload's parts), for `ObjectFiles.parts`.
/// Files' bytes one after the other (a multipart upload's parts; or one range of a version, for
/// S3's UploadPartCopy), for `ObjectFiles.parts` and `ObjectFiles.bytes`.
struct PartFiles: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    /// Each file, and the bytes of it to read (nil: all); a range not within the file throws
    /// `ObjectFiles.InvalidRange` when its turn comes.
    let paths: [(id: UUID, path: String, range: ClosedRange<Int64>?)]
    let tenant: UUID
    let threadPool: NIOThreadPool

    func makeAsyncIterator() -> Iterator {
        Iterator(paths: paths[...], tenant: tenant, threadPool: threadPool)
    }

    struct Iterator: AsyncIteratorProtocol {
        var paths: ArraySlice<(id: UUID, path: String, range: ClosedRange<Int64>?)>
        let tenant: UUID
        let threadPool: NIOThreadPool
        fileprivate var current: (file: OpenFile, chunks: FileChunks.Iterator)?

        mutating func next() async throws -> ByteBuffer? {
            while true {
                if var current {
                    if let chunk = try await current.chunks.next() {
                        self.current = current
                        return chunk
                    }
                    try await current.file.close()
                    self.current = nil
                }
                guard let next = paths.popFirst() else { return nil }
                let (tenant, threadPool) = (tenant, threadPool)
                let (file, size) = try await threadPool.runIfActive { () throws -> (OpenFile, Int64) in
                    guard let descriptor = try POSIX.openFileIfPresent(next.path, O_RDONLY | O_CLOEXEC) else {
                        throw ObjectFiles.NotFound(tenant: tenant, file: next.id)
                    }
                    let file = OpenFile(descriptor: descriptor, path: next.path, threadPool: threadPool)
                    return (file, try POSIX.status(of: descriptor, path: next.path).size)
                }
                var bytes = 0..<size
                if let range = next.range {
                    guard range.lowerBound >= 0, range.upperBound < size else {
                        try? await file.close()
                        throw ObjectFiles.InvalidRange(range: range, size: size)
                    }
                    bytes = range.lowerBound..<(range.upperBound + 1)
                }
                current = (file, FileChunks(file: file, bytes: bytes, threadPool: threadPool).makeAsyncIterator())
            }
        }
    }
}

extension NIOThreadPool {
    /// Runs `body` on the pool whether or not the calling task is cancelled: clean-up that must
    /// happen (closing descriptors, removing partial files). `runIfActive` skips a job whose task
    /// was cancelled before it started. On a pool that has stopped, `submit` runs the job on the
    /// calling thread: a last resort that still closes and removes.
    func runUncancellable<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit { _ in continuation.resume(with: Result(catching: body)) }
        }
    }
}

/// The system calls, retried on EINTR, their errors thrown as `SystemCallError`. Blocking: call
/// them on the thread pool only. (Internal for ResumableFiles, which shares them.)
enum POSIX {
    typealias Failure = ObjectFiles.SystemCallError

    /// Opens `path`.
    static func openFile(_ path: String, _ flags: Int32, mode: mode_t = 0) throws -> Int32 {
        guard let descriptor = try openFileIfPresent(path, flags, mode: mode) else {
            throw Failure(call: "open", path: path, code: ENOENT)
        }
        return descriptor
    }

    /// Opens `path`; nil when it (or its directory) does not exist.
    static func openFileIfPresent(_ path: String, _ flags: Int32, mode: mode_t = 0) throws -> Int32? {
        while true {
            let descriptor = open(path, flags, mode)
            if descriptor >= 0 { return descriptor }
            let code = errno
            if code == EINTR { continue }
            if code == ENOENT { return nil }
            throw Failure(call: "open", path: path, code: code)
        }
    }

    /// Writes every byte, however many calls it takes.
    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        guard var next = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = write(descriptor, next, remaining)
            if written < 0 {
                let code = errno
                if code == EINTR { continue }
                throw Failure(call: "write", path: path, code: code)
            }
            if written == 0 { throw Failure(call: "write", path: path, code: EIO) }
            next += written
            remaining -= written
        }
    }

    /// Fills `memory` from `offset`, however many calls it takes; the file ending first is an
    /// error (version files never shrink).
    static func readFully(_ descriptor: Int32, _ memory: UnsafeMutableRawBufferPointer, at offset: Int64, path: String) throws -> Int {
        guard let start = memory.baseAddress else { return 0 }
        var done = 0
        while done < memory.count {
            let read = pread(descriptor, start + done, memory.count - done, off_t(offset) + off_t(done))
            if read < 0 {
                let code = errno
                if code == EINTR { continue }
                throw Failure(call: "pread", path: path, code: code)
            }
            if read == 0 { throw Failure(call: "pread (file shorter than expected)", path: path, code: EIO) }
            done += read
        }
        return done
    }

    static func syncFile(_ descriptor: Int32, path: String) throws {
        while fsync(descriptor) != 0 {
            let code = errno
            if code != EINTR { throw Failure(call: "fsync", path: path, code: code) }
        }
    }

    /// fsyncs and closes the descriptor (closed whether or not the fsync succeeds).
    static func syncAndClose(_ descriptor: Int32, path: String) throws {
        defer { _ = systemClose(descriptor) }
        try syncFile(descriptor, path: path)
    }

    /// Makes a directory's entries durable.
    static func fsyncDirectory(_ path: String) throws {
        let descriptor = try openFile(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { _ = systemClose(descriptor) }
        try syncFile(descriptor, path: path)
    }

    /// Makes `path` (0700) in `parent` unless it exists; `durable` fsyncs `parent` after making
    /// it. A missing parent — the tenant's directory — is `NoTenantDirectory`: never made here.
    static func makeDirectory(_ path: String, in parent: String, tenant: UUID, durable: Bool) throws {
        while mkdir(path, 0o700) != 0 {
            switch errno {
            case EINTR: continue
            case EEXIST: return
            case ENOENT: throw ObjectFiles.NoTenantDirectory(tenant: tenant)
            case let code: throw Failure(call: "mkdir", path: path, code: code)
            }
        }
        if durable { try fsyncDirectory(parent) }
    }

    /// Renames; with `missingIsFalse`, false when the source or the target's directory is missing.
    @discardableResult
    static func renameFile(_ from: String, _ to: String, missingIsFalse: Bool = false) throws -> Bool {
        while rename(from, to) != 0 {
            let code = errno
            if code == EINTR { continue }
            if code == ENOENT, missingIsFalse { return false }
            throw Failure(call: "rename", path: "\(from) → \(to)", code: code)
        }
        return true
    }

    /// `link`'s errno, 0 on success.
    static func linkFile(_ from: String, _ to: String) -> Int32 {
        while link(from, to) != 0 {
            let code = errno
            if code != EINTR { return code }
        }
        return 0
    }

    /// Removes a file; false when it was not there.
    @discardableResult
    static func removeFile(_ path: String) throws -> Bool {
        while unlink(path) != 0 {
            let code = errno
            if code == EINTR { continue }
            if code == ENOENT { return false }
            throw Failure(call: "unlink", path: path, code: code)
        }
        return true
    }

    static func exists(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0
    }

    struct Status {
        var size: Int64
        var modified: Date
        /// The last status change (a rename, a link, a permission change) or write.
        var changed: Date
        var isRegularFile: Bool

        init(_ status: stat) {
            size = Int64(status.st_size)
            #if os(Linux)
            let (modification, change) = (status.st_mtim, status.st_ctim)
            #else
            let (modification, change) = (status.st_mtimespec, status.st_ctimespec)
            #endif
            modified = Self.date(modification)
            changed = Self.date(change)
            isRegularFile = (status.st_mode & S_IFMT) == S_IFREG
        }

        static func date(_ time: timespec) -> Date {
            Date(timeIntervalSince1970: TimeInterval(time.tv_sec) + TimeInterval(time.tv_nsec) / 1_000_000_000)
        }
    }

    static func status(of descriptor: Int32, path: String) throws -> Status {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw Failure(call: "fstat", path: path, code: errno) }
        return Status(status)
    }

    struct ListedFile: Sendable {
        var id: UUID
        var size: Int64
        var modified: Date
        var changed: Date
    }

    /// The directories named by a lower-case UUID in `directory`, with when each last changed (the
    /// later of its modification and status change); none when it does not exist.
    static func listDirectories(_ directory: String) -> [(id: UUID, changed: Date)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (id: UUID, changed: Date)? in
            guard let id = UUID(uuidString: name), id.uuidString.lowercased() == name else { return nil }
            var status = stat()
            guard lstat(directory + "/" + name, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else { return nil }
            let described = Status(status)
            return (id, max(described.modified, described.changed))
        }
    }

    /// The regular files named by a lower-case UUID in `directory`; none when it does not exist.
    static func listFiles(_ directory: String) throws -> [ListedFile] {
        guard let stream = opendir(directory) else {
            let code = errno
            if code == ENOENT { return [] }
            throw Failure(call: "opendir", path: directory, code: code)
        }
        defer { closedir(stream) }
        var files: [ListedFile] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw Failure(call: "readdir", path: directory, code: errno) }
                return files
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let id = UUID(uuidString: name), id.uuidString.lowercased() == name else { continue }
            var status = stat()
            guard lstat(directory + "/" + name, &status) == 0 else {
                let code = errno
                if code == ENOENT { continue }  // removed since readdir
                throw Failure(call: "lstat", path: directory + "/" + name, code: code)
            }
            let described = Status(status)
            guard described.isRegularFile else { continue }
            files.append(ListedFile(id: id, size: described.size, modified: described.modified, changed: described.changed))
        }
    }
}
