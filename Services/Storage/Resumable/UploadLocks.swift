import Foundation
import Synchronization

/// One writer per resumable upload at a time in this process: a PATCH, the commit that follows
/// its last byte, and a termination each hold the upload's lock.
///
/// A client that lost its connection mid-PATCH resumes at once (HEAD, then PATCH), sometimes
/// before the server has noticed the old connection is gone; the new PATCH therefore waits for
/// the old one to finish (it keeps and records what arrived), up to `wait`, rather than being
/// refused. Across processes the row's conditional offset update (`ResumableUploadStore.advance`)
/// still refuses a second writer's bytes; this lock is what keeps two writers of one process out
/// of the same file.
final class UploadLocks: Sendable {
    private let held = Mutex<Set<UUID>>([])
    let wait: Duration

    init(wait: Duration = .seconds(15)) {
        self.wait = wait
    }

    /// Runs `body` holding the upload's lock; `TusError.locked` (423) when another request held
    /// it for all of `wait`.
    func with<T: Sendable>(_ id: UUID, _ body: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + wait
        while !held.withLock({ $0.insert(id).inserted }) {
            guard ContinuousClock.now < deadline else { throw TusError.locked }
            try await Task.sleep(for: .milliseconds(20))
        }
        defer { _ = held.withLock { $0.remove(id) } }
        return try await body()
    }
}
