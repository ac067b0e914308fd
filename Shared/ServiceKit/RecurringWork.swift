import Logging
import ServiceLifecycle

/// Work a service repeats in the background: a round every `interval` once the service's
/// migrations are applied (looked at every 200 ms until then), until the graceful shutdown. A
/// round that fails is logged as a warning with `failure` as its message, and the next one comes
/// at its time. Each janitor and reconciler runs as one of these.
public struct RecurringWork: Service {
    public let interval: Duration
    let readiness: Readiness
    let logger: Logger
    let failure: Logger.Message
    let round: @Sendable () async throws -> Void

    public init(every interval: Duration, readiness: Readiness, logger: Logger, failure: Logger.Message,
                _ round: @escaping @Sendable () async throws -> Void) {
        self.interval = interval
        self.readiness = readiness
        self.logger = logger
        self.failure = failure
        self.round = round
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                guard readiness.migrationsApplied else {
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
                do {
                    try await round()
                } catch {
                    if !Task.isCancelled { logger.warning(failure, metadata: ["error": "\(error)"]) }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
