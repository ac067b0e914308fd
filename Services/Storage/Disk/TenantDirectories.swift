import Foundation
import NIOPosix

/// Each tenant's objects live under `<STORAGE_ROOT>/<tenant-id>`; this makes and removes those
/// directories as tenants are registered and removed.
///
/// File-system calls block, so they run on NIO's shared blocking-I/O thread pool, never on
/// Swift's cooperative threads (which every request of the service shares).
struct TenantDirectories: Sendable {
    let root: URL
    let threadPool: NIOThreadPool

    init(root: URL, threadPool: NIOThreadPool = .singleton) {
        self.root = root
        self.threadPool = threadPool
    }

    func directory(for tenantID: UUID) -> URL {
        root.appendingPathComponent(tenantID.uuidString.lowercased(), isDirectory: true)
    }

    /// Creates the tenant's directory (and the root) when missing; an existing one is kept.
    func create(for tenantID: UUID) async throws {
        let path = directory(for: tenantID).path
        try await threadPool.runIfActive {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
    }

    /// Removes the tenant's directory with everything in it; a missing one is fine.
    func remove(for tenantID: UUID) async throws {
        let path = directory(for: tenantID).path
        try await threadPool.runIfActive {
            let files = FileManager.default
            guard files.fileExists(atPath: path) else { return }
            do {
                try files.removeItem(atPath: path)
            } catch where !files.fileExists(atPath: path) {
                // Removed by someone else meanwhile: the outcome asked for.
            }
        }
    }

    /// Every tenant directory under the root (named by a lower-case UUID), with when it last
    /// changed: for the consistency check, which removes those whose tenant is gone.
    func inventory() async throws -> [(id: UUID, changed: Date)] {
        let root = root.path
        return try await threadPool.runIfActive { POSIX.listDirectories(root) }
    }
}
