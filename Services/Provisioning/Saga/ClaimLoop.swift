import Resilience
import ServiceKit

/// The loop every claimer of durable work in provisioning runs (the orchestrator's workers,
/// the webhook dispatcher): wait until the migrations are applied; claim and run; when there
/// was nothing to claim, wait for the doorbell (new work announced) or the poll; when claiming
/// failed, report it and back off before the next try.
struct ClaimLoop: Sendable {
    let readiness: Readiness
    let doorbell: Doorbell
    let pollInterval: Duration
    let backoff: Backoff

    /// Runs until the task is cancelled. `claimAndRun` returns false when nothing was due;
    /// `failed` hears each error (not when cancelled) before the backoff.
    func run(failed: (any Error) -> Void, _ claimAndRun: () async throws -> Bool) async {
        var failures = 0
        while !Task.isCancelled {
            guard readiness.migrationsApplied else {
                await doorbell.wait(upTo: .milliseconds(100))
                continue
            }
            do {
                let claimed = try await claimAndRun()
                failures = 0
                if !claimed { await doorbell.wait(upTo: pollInterval) }
            } catch {
                failures += 1
                if !Task.isCancelled { failed(error) }
                try? await Task.sleep(for: backoff.delay(beforeRetry: failures))
            }
        }
    }
}
