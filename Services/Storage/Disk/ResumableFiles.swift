#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation
import Hummingbird
import NIOPosix

/// The bytes of resumable (TUS) uploads so far, one file per upload:
///
/// ```
/// <root>/<tenant-id>/resumable/<upload-id>   the first `upload_offset` bytes are durable
/// ```
///
/// Next to `objects/` and `uploads/` in the tenant's directory (`ObjectFiles`), so they go with
/// the tenant, and a completed upload's file is renamed (not copied) on its way to `objects/`.
///
/// **Durability.** The row's `upload_offset` (`ResumableUploadStore`) advances only after the
/// bytes up to it were fsynced here, so the offset a HEAD reports is always on disk. The file
/// may be longer than the row says (a crash between the fsync and the row's update, or bytes
/// written when a PATCH failed on the disk): `append` truncates it back to the row's offset
/// before writing, so file and row agree again before a byte more is taken. A PATCH whose
/// connection is cut keeps what arrived: those bytes are fsynced and the caller advances the
/// row to them, so the client's next HEAD resumes right after them.
///
/// **Threading.** As `ObjectFiles`: every blocking call on its `NIOThreadPool`; closing and
/// clean-up also when the task is cancelled.
struct ResumableFiles: Sendable {
    let files: ObjectFiles

    /// Bytes read per call when hashing a completed upload (the memory it takes, whatever the
    /// object's size).
    static let hashChunkSize = 256 * 1024

    func directory(_ tenant: UUID) -> String { files.tenantDirectory(tenant) + "/resumable" }
    func path(_ id: UUID, tenant: UUID) -> String { directory(tenant) + "/" + id.uuidString.lowercased() }

    /// Makes the upload's empty file, durably (`resumable/` too, on the tenant's first).
    func create(_ id: UUID, tenant: UUID) async throws {
        let path = path(id, tenant: tenant), directory = directory(tenant), tenantPath = files.tenantDirectory(tenant)
        try await files.threadPool.runIfActive {
            let flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC
            let descriptor: Int32
            if let opened = try POSIX.openFileIfPresent(path, flags, mode: 0o600) {
                descriptor = opened
            } else {
                try POSIX.makeDirectory(directory, in: tenantPath, tenant: tenant, durable: true)
                descriptor = try POSIX.openFile(path, flags, mode: 0o600)
            }
            defer { _ = systemClose(descriptor) }
            try POSIX.syncFile(descriptor, path: path)
            try POSIX.fsyncDirectory(directory)
        }
    }

    /// What `append` took: `written` bytes after the offset, fsynced; `interruption` is the
    /// body's own error (a cut connection) or cancellation when it did not end normally.
    struct Appended: Sendable {
        var written: Int64
        var interruption: (any Error)?
    }

    /// Writes `body` after the first `offset` bytes of the upload's file (dropping anything
    /// beyond them first), then fsyncs.
    ///
    /// - More than `limit` bytes: the file is cut back to `offset` and `ObjectFiles.TooLarge`
    ///   thrown (the caller's 413); nothing of the request is kept.
    /// - A failing disk (a write or fsync error): cut back to `offset` where possible, the
    ///   error thrown.
    /// - The body failing or ending early (the client went away, the task was cancelled): what
    ///   arrived is kept and fsynced, and returned with the interruption.
    ///
    /// Memory stays bounded: one body chunk plus `ObjectFiles.writeChunkSize` gathered bytes.
    /// Throws `ObjectFiles.NotFound` when the file is gone.
    func append<Body: AsyncSequence & Sendable>(_ body: Body, _ id: UUID, tenant: UUID, at offset: Int64, limit: Int64) async throws -> Appended
    where Body.Element == ByteBuffer {
        let path = path(id, tenant: tenant)
        let pool = files.threadPool
        let descriptor = try await pool.runIfActive { () throws -> Int32 in
            guard let descriptor = try POSIX.openFileIfPresent(path, O_WRONLY | O_CLOEXEC) else {
                throw ObjectFiles.NotFound(tenant: tenant, file: id)
            }
            do {
                try Self.truncate(descriptor, to: offset, path: path)
                guard lseek(descriptor, off_t(offset), SEEK_SET) >= 0 else { throw ObjectFiles.SystemCallError(call: "lseek", path: path, code: errno) }
            } catch {
                _ = systemClose(descriptor)
                throw error
            }
            return descriptor
        }
        // Cut back to `offset`, fsync and close: nothing of this request stays.
        let undo = { @Sendable () async in
            _ = try? await pool.runUncancellable {
                try? Self.truncate(descriptor, to: offset, path: path)
                _ = fsync(descriptor)
                _ = systemClose(descriptor)
            }
        }
        var written: Int64 = 0
        var pending = ByteBuffer()
        var interruption: (any Error)?
        do {
            for try await chunk in body {
                guard written + Int64(pending.readableBytes) + Int64(chunk.readableBytes) <= limit else {
                    await undo()
                    throw ObjectFiles.TooLarge(limit: limit)
                }
                // A large chunk is written as it came; small ones are gathered first. Either way
                // the bytes stay in `pending` until written, so a write skipped by cancellation
                // is still made below.
                if pending.readableBytes == 0, chunk.readableBytes >= ObjectFiles.writeChunkSize {
                    pending = chunk
                } else {
                    pending.writeImmutableBuffer(chunk)
                }
                if pending.readableBytes >= ObjectFiles.writeChunkSize {
                    let buffer = pending
                    try await pool.runIfActive {
                        try buffer.withUnsafeReadableBytes { try POSIX.writeAll(descriptor, $0, path: path) }
                    }
                    written += Int64(buffer.readableBytes)
                    pending = ByteBuffer()
                }
            }
        } catch let error as ObjectFiles.TooLarge {
            throw error
        } catch let error as ObjectFiles.SystemCallError {
            await undo()
            throw error
        } catch {
            // The body's own error, or cancellation: keep what arrived.
            interruption = error
        }
        // The rest, and the fsync, whatever the task's state: these bytes arrived. A disk that
        // fails them cuts the file back to `offset`.
        let rest = pending
        try await pool.runUncancellable {
            do {
                if rest.readableBytes > 0 {
                    try rest.withUnsafeReadableBytes { try POSIX.writeAll(descriptor, $0, path: path) }
                }
                try POSIX.syncFile(descriptor, path: path)
            } catch {
                try? Self.truncate(descriptor, to: offset, path: path)
                _ = fsync(descriptor)
                _ = systemClose(descriptor)
                throw error
            }
            if systemClose(descriptor) != 0 {
                let code = errno
                try? Self.truncate(path: path, to: offset)
                throw ObjectFiles.SystemCallError(call: "close", path: path, code: code)
            }
        }
        written += Int64(rest.readableBytes)
        return Appended(written: written, interruption: interruption)
    }

    /// Hashes the upload's file (SHA-256, read in `hashChunkSize` pieces in one job on the
    /// thread pool) and moves it into `uploads/` under a new id, ready for `ObjectFiles.commit`.
    /// Throws `ObjectFiles.NotFound` when it is gone.
    func stage(_ id: UUID, tenant: UUID) async throws -> ObjectFiles.Upload {
        let path = path(id, tenant: tenant)
        let staged = UUID()
        let target = files.uploadPath(upload: staged, tenant: tenant)
        let uploads = files.uploadsDirectory(tenant), tenantPath = files.tenantDirectory(tenant)
        return try await files.threadPool.runIfActive { () throws -> ObjectFiles.Upload in
            guard let descriptor = try POSIX.openFileIfPresent(path, O_RDONLY | O_CLOEXEC) else {
                throw ObjectFiles.NotFound(tenant: tenant, file: id)
            }
            defer { _ = systemClose(descriptor) }
            var hasher = SHA256()
            var size: Int64 = 0
            var buffer = [UInt8](repeating: 0, count: Self.hashChunkSize)
            while true {
                let count = try buffer.withUnsafeMutableBytes { memory -> Int in
                    while true {
                        let count = read(descriptor, memory.baseAddress, memory.count)
                        if count >= 0 { return count }
                        if errno != EINTR { throw ObjectFiles.SystemCallError(call: "read", path: path, code: errno) }
                    }
                }
                if count == 0 { break }
                buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<count])) }
                size += Int64(count)
            }
            if try !POSIX.renameFile(path, target, missingIsFalse: true) {
                try POSIX.makeDirectory(uploads, in: tenantPath, tenant: tenant, durable: false)
                try POSIX.renameFile(path, target)
            }
            return ObjectFiles.Upload(id: staged, size: size, sha256: ObjectFiles.hex(hasher.finalize()))
        }
    }

    /// Removes the upload's file (missing is fine), also when the task is cancelled.
    func remove(_ id: UUID, tenant: UUID) async {
        let path = path(id, tenant: tenant)
        _ = try? await files.threadPool.runUncancellable { try POSIX.removeFile(path) }
    }

    /// Every upload file of the tenant with its size and last change, for the consistency check
    /// (compare with `ResumableUploadStore.liveIDs`).
    func inventory(tenant: UUID) async throws -> [(id: UUID, size: Int64, modified: Date)] {
        let directory = directory(tenant)
        return try await files.threadPool.runIfActive { try POSIX.listFiles(directory) }.map { (id: $0.id, size: $0.size, modified: $0.modified) }
    }

    private static func truncate(_ descriptor: Int32, to size: Int64, path: String) throws {
        while ftruncate(descriptor, off_t(size)) != 0 {
            let code = errno
            if code != EINTR { throw ObjectFiles.SystemCallError(call: "ftruncate", path: path, code: code) }
        }
    }

    private static func truncate(path: String, to size: Int64) throws {
        while systemTruncate(path, off_t(size)) != 0 {
            let code = errno
            if code == ENOENT { return }
            if code != EINTR { throw ObjectFiles.SystemCallError(call: "truncate", path: path, code: code) }
        }
    }
}

private func systemTruncate(_ path: String, _ size: off_t) -> Int32 {
    truncate(path, size)
}
