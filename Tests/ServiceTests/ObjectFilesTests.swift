import Crypto
import Foundation
import Hummingbird
import Synchronization
import TestSupport
import Testing

@testable import Storage

/// The storage service's object files on the real file system, each test in a directory of its
/// own: streamed uploads (hash, size, limit, and what every failure leaves: nothing), commit,
/// downloads as Hummingbird response bodies (ranges, an unlinked version, descriptors closed),
/// remove, discard, duplicate and the inventory the consistency check reads.
@Suite("Object files")
struct ObjectFilesTests {
    // MARK: Uploads

    @Test("0 B, 1 B and 10 MB round trips from odd-sized chunks: size, SHA-256, the bytes back", arguments: [0, 1, 10_000_000])
    func roundTrip(size: Int) async throws {
        try await withTenant { files, tenant in
            let bytes = Self.bytes(size)
            let upload = try await files.write(ScriptedBody(Self.oddChunks(bytes)), tenant: tenant, limit: Int64(size))
            #expect(upload.size == Int64(size))
            #expect(upload.sha256 == SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined())
            #expect(try Data(contentsOf: URL(fileURLWithPath: files.uploadPath(upload: upload.id, tenant: tenant))) == Data(bytes))

            let version = UUID()
            try await files.commit(upload, tenant: tenant, version: version)
            let inventory = try await files.inventory(tenant: tenant)
            #expect(inventory.versions == [version: Int64(size)])
            #expect(inventory.uploads.isEmpty)

            let body = try await files.read(version: version, tenant: tenant, range: nil)
            #expect(body.contentLength == size)
            let read = try await Self.collect(body)
            #expect(read.finished)
            #expect(read.bytes == bytes)
        }
    }

    @Test("more than the limit: TooLarge as soon as it is passed (the rest of the body unread), no upload file left")
    func tooLarge() async throws {
        try await withTenant { files, tenant in
            let body = ScriptedBody((0..<10).map { _ in ByteBuffer(repeating: 7, count: 300) })
            await #expect(throws: ObjectFiles.TooLarge(limit: 1000)) {
                try await files.write(body, tenant: tenant, limit: 1000)
            }
            #expect(body.pulls == 4)  // 1,200 bytes had arrived: the 5th chunk was never asked for
            try await Self.expectNoUploads(files, tenant)

            // Exactly the limit is fine.
            let exact = try await files.write(ScriptedBody([ByteBuffer(repeating: 1, count: 600), ByteBuffer(repeating: 2, count: 400)]), tenant: tenant, limit: 1000)
            #expect(exact.size == 1000)
        }
    }

    @Test("a body that fails mid-stream (the client cut the connection): its error, no upload file, no descriptor")
    func bodyFails() async throws {
        try await withTenant { files, tenant in
            let body = ScriptedBody([ByteBuffer(repeating: 1, count: 70_000), ByteBuffer(repeating: 2, count: 5)], then: .fail)
            await #expect(throws: ClientDisconnected.self) {
                try await files.write(body, tenant: tenant, limit: 1 << 30)
            }
            #expect(body.pulls == 3)
            try await Self.expectNoUploads(files, tenant)
        }
    }

    @Test("the task cancelled mid-write, whether the body throws on cancellation or just ends: CancellationError, no upload file",
          arguments: [true, false])
    func cancelledMidWrite(bodyThrows: Bool) async throws {
        try await withTenant { files, tenant in
            let chunk = ByteBuffer(repeating: 9, count: ObjectFiles.writeChunkSize)  // written at once, not gathered
            let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
            let scripted = ScriptedBody([chunk, chunk], then: .hangUntilCancelled)
            let writing = Task {
                bodyThrows
                    ? try await files.write(scripted, tenant: tenant, limit: 1 << 30)
                    : try await files.write(stream, tenant: tenant, limit: 1 << 30)
            }
            continuation.yield(chunk)
            continuation.yield(chunk)
            // In flight: the upload file holds both chunks and the body is waiting for more.
            let inFlight = await eventually {
                guard let upload = try? await files.inventory(tenant: tenant).uploads.first else { return false }
                let size = try? FileManager.default.attributesOfItem(atPath: files.uploadPath(upload: upload.id, tenant: tenant))[.size] as? Int
                return size == 2 * chunk.readableBytes && (!bodyThrows || scripted.pulls == 3)
            }
            #expect(inFlight)
            writing.cancel()
            await #expect(throws: CancellationError.self) { try await writing.value }
            continuation.finish()
            try await Self.expectNoUploads(files, tenant)
        }
    }

    @Test("a tenant without its directory: NoTenantDirectory, and the directory is not made")
    func noTenantDirectory() async throws {
        try await withTenant { files, _ in
            let stranger = UUID()
            await #expect(throws: ObjectFiles.NoTenantDirectory(tenant: stranger)) {
                try await files.write(ScriptedBody([ByteBuffer(repeating: 1, count: 3)]), tenant: stranger, limit: 10)
            }
            #expect(!FileManager.default.fileExists(atPath: files.tenantDirectory(stranger)))
            let inventory = try await files.inventory(tenant: stranger)
            #expect(inventory.versions.isEmpty && inventory.uploads.isEmpty)
        }
    }

    // MARK: Commit

    @Test("commit: the file renamed into objects/ (0600, directories 0700); again is fine; an unknown upload is NotFound")
    func commit() async throws {
        try await withTenant { files, tenant in
            let upload = try await files.write(ScriptedBody([ByteBuffer(string: "hello")]), tenant: tenant, limit: 5)
            let version = UUID()
            try await files.commit(upload, tenant: tenant, version: version)
            let path = files.objectPath(version: version, tenant: tenant)
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "hello")
            #expect(try Self.mode(path) == 0o600)
            #expect(try Self.mode(files.objectsDirectory(tenant)) == 0o700)
            #expect(try Self.mode(files.uploadsDirectory(tenant)) == 0o700)
            #expect(try Self.entries(files.uploadsDirectory(tenant)) == [])

            try await files.commit(upload, tenant: tenant, version: version)  // a retry: already there
            #expect(try await files.inventory(tenant: tenant).versions == [version: 5])

            let unknown = ObjectFiles.Upload(id: UUID(), size: 1, sha256: "")
            await #expect(throws: ObjectFiles.NotFound(tenant: tenant, file: unknown.id)) {
                try await files.commit(unknown, tenant: tenant, version: UUID())
            }
        }
    }

    // MARK: Reads

    @Test("ranges: first byte, last byte, a middle across chunk boundaries, the whole; outside is InvalidRange; missing is NotFound")
    func ranges() async throws {
        try await withTenant { files, tenant in
            let bytes = Self.bytes(200_000)
            let version = try await Self.store(bytes, files, tenant)
            let last = Int64(bytes.count - 1)
            for range: ClosedRange<Int64> in [0...0, last...last, 100...150_000, 0...last, 65_536...65_536] {
                let body = try await files.read(version: version, tenant: tenant, range: range)
                #expect(body.contentLength == range.count)
                let read = try await Self.collect(body)
                #expect(read.bytes == Array(bytes[Int(range.lowerBound)...Int(range.upperBound)]), "\(range)")
                #expect(read.finished)
            }
            for range: ClosedRange<Int64> in [0...Int64(bytes.count), Int64(bytes.count)...Int64(bytes.count), -1...3] {
                await #expect(throws: ObjectFiles.InvalidRange(range: range, size: Int64(bytes.count))) {
                    try await files.read(version: version, tenant: tenant, range: range)
                }
            }
            let empty = try await Self.store([], files, tenant)
            await #expect(throws: ObjectFiles.InvalidRange(range: 0...0, size: 0)) {
                try await files.read(version: empty, tenant: tenant, range: 0...0)
            }
            let missing = UUID()
            await #expect(throws: ObjectFiles.NotFound(tenant: tenant, file: missing)) {
                try await files.read(version: missing, tenant: tenant, range: nil)
            }
            #expect(Self.openDescriptors(under: files.root.path) == [])
        }
    }

    @Test("a version removed after its body was made is still read whole from the open descriptor")
    func readAfterUnlink() async throws {
        try await withTenant { files, tenant in
            let bytes = Self.bytes(300_000)
            let version = try await Self.store(bytes, files, tenant)
            let body = try await files.read(version: version, tenant: tenant, range: nil)
            try await files.remove(version: version, tenant: tenant)
            #expect(try await files.inventory(tenant: tenant).versions.isEmpty)
            let read = try await Self.collect(body)
            #expect(read.bytes == bytes && read.finished)
            #expect(Self.openDescriptors(under: files.root.path) == [])
        }
    }

    @Test("descriptors: closed when the client stops reading, when a body is dropped unwritten; a body is written once")
    func descriptorsClosed() async throws {
        try await withTenant { files, tenant in
            let bytes = Self.bytes(500_000)
            let version = try await Self.store(bytes, files, tenant)
            let path = files.objectPath(version: version, tenant: tenant)

            // The client goes away after two chunks: the writer's error, the descriptor closed.
            let body = try await files.read(version: version, tenant: tenant, range: nil)
            #expect(Self.openDescriptors(under: files.root.path) == [path])
            let collected = Collected()
            await #expect(throws: ClientDisconnected.self) {
                try await body.write(CollectingWriter(collected: collected, failAfter: 2))
            }
            #expect(collected.state.withLock { $0.writes } == 2)
            #expect(Self.openDescriptors(under: files.root.path) == [])

            // Written a second time: refused (its descriptor is gone), nothing written.
            let again = Collected()
            await #expect(throws: ObjectFiles.BodyAlreadyWritten.self) {
                try await body.write(CollectingWriter(collected: again))
            }
            #expect(again.state.withLock { $0.writes } == 0)

            // Never written (a HEAD): closed when the body goes.
            do {
                let unwritten = try await files.read(version: version, tenant: tenant, range: 1...Int64(ObjectFiles.readChunkSize + 1))
                #expect(unwritten.contentLength == ObjectFiles.readChunkSize + 1)
                #expect(Self.openDescriptors(under: files.root.path) == [path])
            }
            #expect(await eventually { Self.openDescriptors(under: files.root.path) == [] })

            // What fits in one read chunk is read when it is opened, and closed there: no
            // descriptor outlives the call, written or not.
            let small = try await files.read(version: version, tenant: tenant, range: 1...2)
            #expect(small.contentLength == 2 && Self.openDescriptors(under: files.root.path) == [])
            let whole = Collected()
            try await small.write(CollectingWriter(collected: whole))
            #expect(whole.state.withLock { $0.bytes } == Array(bytes[1...2]))
        }
    }

    // MARK: Remove, discard, duplicate

    @Test("remove and discard: the file goes; a missing one is fine")
    func removeAndDiscard() async throws {
        try await withTenant { files, tenant in
            let version = try await Self.store(Self.bytes(10), files, tenant)
            try await files.remove(version: version, tenant: tenant)
            try await files.remove(version: version, tenant: tenant)
            try await files.remove(version: UUID(), tenant: UUID())  // no tenant directory either

            let upload = try await files.write(ScriptedBody([ByteBuffer(string: "draft")]), tenant: tenant, limit: 10)
            #expect(try await files.inventory(tenant: tenant).uploads.map(\.id) == [upload.id])
            await files.discard(upload.id, tenant: tenant)
            await files.discard(upload.id, tenant: tenant)
            await files.discard(UUID(), tenant: UUID())
            let inventory = try await files.inventory(tenant: tenant)
            #expect(inventory.versions.isEmpty && inventory.uploads.isEmpty)
        }
    }

    @Test("duplicate: same bytes under the new version (another tenant too), by hard link or by copy; the source's removal leaves it; idempotent",
          arguments: [true, false])
    func duplicate(hardLinks: Bool) async throws {
        try await withTenant { files, tenant in
            var files = files
            files.hardLinks = hardLinks
            let other = UUID()
            try await TenantDirectories(root: files.root).create(for: other)
            let bytes = Self.bytes(150_001)
            let version = try await Self.store(bytes, files, tenant)

            let sameTenant = UUID()
            let otherTenant = UUID()
            try await files.duplicate(version: version, of: tenant, as: sameTenant, for: tenant)
            try await files.duplicate(version: version, of: tenant, as: otherTenant, for: other)
            try await files.duplicate(version: version, of: tenant, as: otherTenant, for: other)  // a retry
            let shared = try Self.inode(files.objectPath(version: sameTenant, tenant: tenant)) == Self.inode(files.objectPath(version: version, tenant: tenant))
            #expect(shared == hardLinks)

            try await files.remove(version: version, tenant: tenant)
            #expect(try await Self.collect(files.read(version: sameTenant, tenant: tenant, range: nil)).bytes == bytes)
            #expect(try await Self.collect(files.read(version: otherTenant, tenant: other, range: nil)).bytes == bytes)
            #expect(try await files.inventory(tenant: tenant).versions == [sameTenant: 150_001])
            let otherInventory = try await files.inventory(tenant: other)
            #expect(otherInventory.versions == [otherTenant: 150_001])
            #expect(otherInventory.uploads.isEmpty)  // a copy leaves no upload file behind

            await #expect(throws: ObjectFiles.NotFound(tenant: tenant, file: version)) {
                try await files.duplicate(version: version, of: tenant, as: UUID(), for: other)
            }
            #expect(Self.openDescriptors(under: files.root.path) == [])
        }
    }

    // MARK: Inventory

    @Test("inventory: exactly the version files with sizes and the upload files with mtimes; other names are not ours")
    func inventory() async throws {
        try await withTenant { files, tenant in
            let small = try await Self.store(Self.bytes(3), files, tenant)
            let empty = try await Self.store([], files, tenant)
            let before = Date()
            let pending = try await files.write(ScriptedBody([ByteBuffer(string: "x")]), tenant: tenant, limit: 1)
            let gone = try await files.write(ScriptedBody([ByteBuffer(string: "y")]), tenant: tenant, limit: 1)
            await files.discard(gone.id, tenant: tenant)
            // Not ours: another name, an upper-case UUID, a directory named like a version.
            let manager = FileManager.default
            #expect(manager.createFile(atPath: files.objectsDirectory(tenant) + "/notes.txt", contents: Data("n".utf8)))
            #expect(manager.createFile(atPath: files.objectsDirectory(tenant) + "/" + UUID().uuidString.uppercased(), contents: Data("n".utf8)))
            try manager.createDirectory(atPath: files.uploadsDirectory(tenant) + "/" + UUID().uuidString.lowercased(), withIntermediateDirectories: false)

            let inventory = try await files.inventory(tenant: tenant)
            #expect(inventory.versions == [small: 3, empty: 0])
            #expect(inventory.uploads.map(\.id) == [pending.id])
            let modified = try #require(inventory.uploads.first?.modified)
            #expect(modified >= before.addingTimeInterval(-2) && modified <= Date().addingTimeInterval(2))
        }
    }

    // MARK: Measurement (not a test of speed: run by hand with OBJECT_FILES_1GB=1)

    @Test("1 GB written and read back: prints time and peak RSS", .enabled(if: ProcessInfo.processInfo.environment["OBJECT_FILES_1GB"] != nil))
    func oneGigabyte() async throws {
        try await withTenant { files, tenant in
            let chunk = ByteBuffer(bytes: Self.bytes(65_536))
            let count = 16_384  // 1 GiB
            var expected = SHA256()
            for _ in 0..<count { chunk.withUnsafeReadableBytes { expected.update(bufferPointer: $0) } }
            let digest = ObjectFiles.hex(expected.finalize())
            print("1 GB: peak RSS before \(Self.peakRSS())")
            let clock = ContinuousClock()

            var start = clock.now
            let upload = try await files.write(RepeatedBody(chunk: chunk, count: count), tenant: tenant, limit: .max)
            let written = clock.now - start
            start = clock.now
            let version = UUID()
            try await files.commit(upload, tenant: tenant, version: version)
            let committed = clock.now - start
            print("1 GB: write \(written), commit (fsync) \(committed), peak RSS \(Self.peakRSS())")
            #expect(upload.size == Int64(count * 65_536) && upload.sha256 == digest)

            start = clock.now
            let hashing = HashingWriter()
            try await files.read(version: version, tenant: tenant, range: nil).write(hashing)
            let read = clock.now - start
            let (size, sha) = hashing.result()
            print("1 GB: read \(read), peak RSS \(Self.peakRSS())")
            #expect(size == upload.size && sha == digest)
        }
    }

    // MARK: Helpers

    /// No upload file left (listed or on disk), and no descriptor open under the root.
    static func expectNoUploads(_ files: ObjectFiles, _ tenant: UUID) async throws {
        let uploads = try await files.inventory(tenant: tenant).uploads
        #expect(uploads.isEmpty)
        let entries = try Self.entries(files.uploadsDirectory(tenant))
        #expect(entries == [])
        #expect(Self.openDescriptors(under: files.root.path) == [])
    }

    /// A temporary STORAGE_ROOT with one registered tenant's directory; removed afterwards.
    private func withTenant(_ body: (ObjectFiles, UUID) async throws -> Void) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("object-files-\(UUID().uuidString.lowercased())", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let tenant = UUID()
        try await TenantDirectories(root: root).create(for: tenant)
        try await body(ObjectFiles(root: root), tenant)
    }

    /// Writes and commits `bytes` as a new version.
    static func store(_ bytes: [UInt8], _ files: ObjectFiles, _ tenant: UUID) async throws -> UUID {
        let upload = try await files.write(ScriptedBody(oddChunks(bytes)), tenant: tenant, limit: Int64(bytes.count))
        let version = UUID()
        try await files.commit(upload, tenant: tenant, version: version)
        return version
    }

    /// Deterministic bytes that are not a repeating pattern of any chunk size.
    static func bytes(_ count: Int) -> [UInt8] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    /// `bytes` cut into chunks of odd sizes: single bytes, sizes around the gathering size, large ones.
    static func oddChunks(_ bytes: [UInt8]) -> [ByteBuffer] {
        let sizes = [1, 7, 4_093, 65_537, 13, 100_003, 65_535, 1, 333_331, 2]
        var chunks: [ByteBuffer] = []
        var start = 0
        var index = 0
        while start < bytes.count {
            let end = min(bytes.count, start + sizes[index % sizes.count])
            chunks.append(ByteBuffer(bytes: bytes[start..<end]))
            start = end
            index += 1
        }
        return chunks
    }

    static func collect(_ body: ResponseBody) async throws -> (bytes: [UInt8], finished: Bool) {
        let collected = Collected()
        try await body.write(CollectingWriter(collected: collected))
        return collected.state.withLock { ($0.bytes, $0.finished) }
    }

    /// The files under `directory` this process has open (from /proc/self/fd).
    static func openDescriptors(under directory: String) -> [String] {
        let links = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return links.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0) }
            .filter { $0.hasPrefix(directory + "/") }
            .map { $0.hasSuffix(" (deleted)") ? String($0.dropLast(" (deleted)".count)) : $0 }
            .sorted()
    }

    static func entries(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    static func mode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    static func inode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int)
    }

    /// VmHWM from /proc/self/status: the process's peak resident set.
    static func peakRSS() -> String {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }.map { $0.dropFirst(6).trimmingCharacters(in: .whitespaces) } ?? "?"
    }
}

/// What a body throws when its client goes away.
struct ClientDisconnected: Error {}

/// A request body: the given chunks, then an end, an error, or a wait until the task is cancelled
/// (which Task.sleep turns into a CancellationError). Counts how often it was asked for a chunk.
struct ScriptedBody: AsyncSequence, Sendable {
    enum Ending: Sendable { case finish, fail, hangUntilCancelled }

    let chunks: [ByteBuffer]
    let ending: Ending
    private let counter = Counter()

    init(_ chunks: [ByteBuffer], then ending: Ending = .finish) {
        self.chunks = chunks
        self.ending = ending
    }

    var pulls: Int { counter.value.withLock { $0 } }

    func makeAsyncIterator() -> Iterator { Iterator(body: self) }

    struct Iterator: AsyncIteratorProtocol {
        let body: ScriptedBody
        var index = 0

        mutating func next() async throws -> ByteBuffer? {
            body.counter.value.withLock { $0 += 1 }
            if index < body.chunks.count {
                index += 1
                return body.chunks[index - 1]
            }
            switch body.ending {
            case .finish: return nil
            case .fail: throw ClientDisconnected()
            case .hangUntilCancelled:
                try await Task.sleep(for: .seconds(86_400))
                return nil
            }
        }
    }

    final class Counter: Sendable {
        let value = Mutex(0)
    }
}

/// The same chunk `count` times: a long body in constant memory.
struct RepeatedBody: AsyncSequence, Sendable {
    let chunk: ByteBuffer
    let count: Int

    func makeAsyncIterator() -> Iterator { Iterator(chunk: chunk, remaining: count) }

    struct Iterator: AsyncIteratorProtocol {
        let chunk: ByteBuffer
        var remaining: Int

        mutating func next() async -> ByteBuffer? {
            guard remaining > 0 else { return nil }
            remaining -= 1
            return chunk
        }
    }
}

final class Collected: Sendable {
    struct State {
        var bytes: [UInt8] = []
        var writes = 0
        var finished = false
    }

    let state = Mutex(State())
}

/// A response body writer that keeps what it is given; with `failAfter`, it fails as a client
/// going away does after that many writes.
struct CollectingWriter: ResponseBodyWriter {
    let collected: Collected
    var failAfter: Int? = nil

    mutating func write(_ buffer: ByteBuffer) async throws {
        try collected.state.withLock { state in
            if let failAfter, state.writes >= failAfter { throw ClientDisconnected() }
            state.writes += 1
            state.bytes.append(contentsOf: buffer.readableBytesView)
        }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        collected.state.withLock { $0.finished = true }
    }
}

/// A response body writer that only counts and hashes (for the 1 GB measurement).
final class HashingWriter: ResponseBodyWriter, Sendable {
    private let state = Mutex((size: Int64(0), hash: SHA256(), finished: false))

    func write(_ buffer: ByteBuffer) async throws {
        state.withLock { state in
            state.size += Int64(buffer.readableBytes)
            buffer.withUnsafeReadableBytes { state.hash.update(bufferPointer: $0) }
        }
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {
        state.withLock { $0.finished = true }
    }

    func result() -> (Int64, String) {
        state.withLock { ($0.size, ObjectFiles.hex($0.hash.finalize())) }
    }
}
