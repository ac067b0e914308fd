import Foundation
import Logging
import ServiceKit
import ServiceLifecycle

/// Deletes sessions that ended over a day ago, with their refresh tokens, every
/// `SESSION_PURGE_INTERVAL_SECONDS` on every replica (`SessionStore.purgeEnded`: batches that
/// skip rows in use, so replicas share the work). Ended sessions are refused when presented
/// whether or not their rows are still there; this keeps `auth.sessions` and
/// `auth.refresh_tokens` to what is live, plus a day.
struct SessionJanitor: Service {
    let sessions: SessionStore
    let interval: Duration
    let readiness: Readiness
    let now: @Sendable () -> Date
    let logger: Logger

    /// Sessions deleted per statement, and statements per round at most (the rest waits for the
    /// next round, so one round never holds the database long).
    static let batch = 500
    static let batchesPerRound = 20

    func run() async throws {
        try await RecurringWork(every: interval, readiness: readiness, logger: logger, failure: "could not delete ended sessions") {
            let purged = try await purgeRound()
            if purged > 0 { logger.info("ended sessions deleted", metadata: ["sessions": "\(purged)"]) }
        }.run()
    }

    /// One round: batches until one comes back short, or `batchesPerRound` of them.
    func purgeRound() async throws -> Int {
        var total = 0
        for _ in 0..<Self.batchesPerRound {
            let purged = try await sessions.purgeEnded(at: now(), batch: Self.batch)
            total += purged
            if purged < Self.batch { break }
        }
        return total
    }
}
