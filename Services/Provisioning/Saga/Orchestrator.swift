import Foundation
import Logging
import Postgres
import Resilience
import ServiceKit
import ServiceLifecycle
import Synchronization

/// Claims open workflow executions and runs them, with `workers` running at once.
///
/// Several instances (or processes) may run side by side: an execution is claimed with
/// `FOR UPDATE SKIP LOCKED` plus a lease that a heartbeat extends every third of its length;
/// if an instance dies, its lease runs out and another instance resumes the execution from
/// its recorded steps. New work wakes idle workers through LISTEN/NOTIFY (every instance) and
/// an in-process doorbell (this instance); a slow poll catches anything else.
struct Orchestrator: Service {
    let ledger: ExecutionLedger
    let runner: SagaRunner
    let settings: ProvisioningSettings
    let listener: PostgresListener
    let doorbell: Doorbell
    let readiness: Readiness
    let logger: Logger
    /// Identifies this instance's leases: host, process and a random part.
    let owner = "\(ProcessInfo.processInfo.hostName)/\(ProcessInfo.processInfo.processIdentifier)/\(UUID().uuidString.prefix(8))"

    func run() async throws {
        _ = await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await listener.run() }
                group.addTask {
                    for await _ in listener.notifications(on: ProjectStore.workChannel) {
                        doorbell.ring()
                    }
                }
                for index in 0..<settings.workers {
                    group.addTask { await work(index) }
                }
                await group.next()
                group.cancelAll()
            }
        }
        logger.info("orchestrator stopped", metadata: ["lease.owner": "\(owner)"])
    }

    /// One worker: claim, run, repeat; wait for the doorbell (or the poll) when idle.
    private func work(_ index: Int) async {
        let loop = ClaimLoop(readiness: readiness, doorbell: doorbell, pollInterval: settings.pollInterval, backoff: settings.backoff)
        await loop.run(failed: { error in
            logger.warning("could not claim work", metadata: ["worker": "\(index)", "error": "\(error)"])
        }) {
            guard let execution = try await ledger.claim(owner: owner, lease: settings.lease) else { return false }
            await runHoldingLease(execution)
            return true
        }
    }

    /// Runs an execution while a heartbeat keeps its lease; stops the run when the lease is lost.
    private func runHoldingLease(_ execution: ClaimedExecution) async {
        let owner = self.owner
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await runner.run(execution, owner: owner) }
                group.addTask {
                    while true {
                        try await Task.sleep(for: settings.lease / 3)
                        guard try await ledger.renew(execution.id, owner: owner, lease: settings.lease) else { throw LeaseLost() }
                    }
                }
                // The heartbeat never ends by itself: the first task to end is the run (or a
                // lost lease, which throws).
                try await group.next()
                group.cancelAll()
            }
        } catch is LeaseLost {
            logger.warning("lost the lease of an execution; another instance resumes it", metadata: ["workflow.id": "\(execution.id)"])
        } catch is CancellationError {
            // Shutting down: hand the execution back at once so another instance resumes it
            // without waiting for the lease to run out. (A fresh task: this one is cancelled.)
            let ledger = self.ledger
            _ = await Task { try? await ledger.release(execution.id, owner: owner, after: .zero) }.value
        } catch {
            logger.error("execution run failed; it will be resumed", metadata: ["workflow.id": "\(execution.id)", "error": "\(error)"])
            _ = try? await ledger.release(execution.id, owner: owner, after: settings.retryMax)
        }
    }
}

/// Wakes idle workers when there is new work.
final class Doorbell: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var next: UInt64 = 0
        var list: [Waiter] = []
        /// Waiters woken (by their timer or cancellation) before they had registered.
        var wokenEarly: Set<UInt64> = []
    }

    private let waiters = Mutex(State())

    /// Wakes every waiting worker.
    func ring() {
        let woken = waiters.withLock { (state: inout State) -> [Waiter] in
            defer { state.list = [] }
            return state.list
        }
        for waiter in woken { waiter.continuation.resume() }
    }

    /// Returns when rung, after `timeout`, or when the task is cancelled, whichever is first.
    func wait(upTo timeout: Duration) async {
        let id = waiters.withLock { (state: inout State) -> UInt64 in
            state.next += 1
            return state.next
        }
        await withTimeout(timeout) {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let registered = waiters.withLock { (state: inout State) -> Bool in
                        guard !Task.isCancelled, state.wokenEarly.remove(id) == nil else { return false }
                        state.list.append(Waiter(id: id, continuation: continuation))
                        return true
                    }
                    if !registered { continuation.resume() }
                }
            } onCancel: {
                wake(id)
            }
        } onTimeout: { [weak self] in
            self?.wake(id)
        }
        waiters.withLock { (state: inout State) in _ = state.wokenEarly.remove(id) }
    }

    private func wake(_ id: UInt64) {
        let waiter = waiters.withLock { (state: inout State) -> Waiter? in
            guard let index = state.list.firstIndex(where: { $0.id == id }) else {
                state.wokenEarly.insert(id)
                return nil
            }
            return state.list.remove(at: index)
        }
        waiter?.continuation.resume()
    }
}
