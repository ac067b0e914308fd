import Foundation
import Logging
import ServiceKit
import ServiceLifecycle

/// Deletes readable API keys nobody took within `PROVISIONING_KEY_REVEAL_SECONDS` of minting,
/// every `interval` (a twelfth of that window, between 1 s and a minute), on every instance (the
/// DELETE is idempotent). Reads already ignore them once the window is over; this takes them
/// out of the database and its dumps.
struct KeyRevealJanitor: Service {
    let vault: KeyVault
    let ttl: Duration
    let readiness: Readiness
    let logger: Logger

    var interval: Duration { min(max(ttl / 12, .seconds(1)), .seconds(60)) }

    func run() async throws {
        try await RecurringWork(every: interval, readiness: readiness, logger: logger, failure: "could not delete unrevealed api keys") {
            let purged = try await vault.purgeUnrevealed(olderThan: ttl)
            if purged > 0 { logger.info("unrevealed api keys deleted", metadata: ["projects": "\(purged)"]) }
        }.run()
    }
}
