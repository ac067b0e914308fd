import Foundation
import Postgres
import Resilience
import ServiceLifecycle
import Synchronization

/// Wakes whoever watches a project (an event stream, a long poll) when it has new events: every
/// event's NOTIFY on `provisioning_events` (payload: the project id) reaches every instance, and
/// this hands it to the watchers of that project here. A watcher re-reads the project's events
/// on each wake, and at least every heartbeat, so a notification lost to a listener
/// reconnection costs at most one heartbeat of delay, never an event.
///
/// On graceful shutdown every watcher is woken and `isClosed` turns true, so open streams end
/// instead of holding the server up. (The server stops before this service does, waiting for
/// requests in flight: a watching request therefore also closes its own signal when its task
/// learns of the shutdown — `watching` — and ends.)
final class ProjectSignals: Service {
    static let channel = "provisioning_events"

    private struct State {
        var watchers: [UUID: [ObjectIdentifier: Signal]] = [:]
        var closed = false
    }

    private let listener: PostgresListener
    private let state = Mutex(State())

    init(listener: PostgresListener) {
        self.listener = listener
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Starts watching `project`; the signal is fired by each of its events from now on.
    func watch(_ project: UUID) -> Signal {
        let signal = Signal()
        let closed = state.withLock { state -> Bool in
            state.watchers[project, default: [:]][ObjectIdentifier(signal)] = signal
            return state.closed
        }
        if closed { signal.fire() }
        return signal
    }

    func unwatch(_ project: UUID, _ signal: Signal) {
        state.withLock { state in
            state.watchers[project]?[ObjectIdentifier(signal)] = nil
            if state.watchers[project]?.isEmpty == true { state.watchers[project] = nil }
        }
    }

    /// Runs `body` with a signal of `project`'s events, and stops watching after it. The
    /// signal closes when the server shuts down gracefully, so a long wait ends at once.
    func watching<T: Sendable>(_ project: UUID, _ body: (Signal) async throws -> T) async throws -> T {
        let signal = watch(project)
        defer { unwatch(project, signal) }
        return try await closingOnShutdown(signal) { try await body(signal) }
    }

    /// Runs `body`; closes `signal` if the task is told of a graceful shutdown meanwhile.
    func closingOnShutdown<T: Sendable>(_ signal: Signal, _ body: () async throws -> T) async throws -> T {
        try await withGracefulShutdownHandler {
            try await body()
        } onGracefulShutdown: {
            signal.close()
        }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await notification in self.listener.notifications(on: Self.channel) {
                guard let project = UUID(uuidString: notification.payload) else { continue }
                let signals = self.state.withLock { Array(($0.watchers[project] ?? [:]).values) }
                for signal in signals { signal.fire() }
            }
        }
        let signals = state.withLock { state -> [Signal] in
            state.closed = true
            return state.watchers.values.flatMap(\.values)
        }
        for signal in signals { signal.fire() }
    }
}

/// One watcher's wake-up: `fire` wakes the waiting `wait`, or, when nobody waits, makes the next
/// `wait` return at once (a wake that came while the watcher was reading is not lost).
final class Signal: Sendable {
    private struct State {
        var pending = false
        var closed = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    /// True once `close()` was called: its watcher should end.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Tells the watcher to end (the server is shutting down), and wakes it.
    func close() {
        state.withLock { $0.closed = true }
        fire()
    }

    func fire() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns when fired (or fired since the last wait), after `timeout`, or when the task is
    /// cancelled, whichever is first.
    func wait(upTo timeout: Duration) async {
        await withTimeout(timeout) {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let now = state.withLock { state -> Bool in
                        if state.pending || Task.isCancelled {
                            state.pending = false
                            return true
                        }
                        state.waiter = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            } onCancel: {
                self.fire()
            }
        } onTimeout: { [weak self] in
            self?.fire()
        }
        // A timeout or cancellation that fired after the wait ended leaves no stale wake behind
        // for long: at worst the next wait returns at once and its caller reads again.
    }
}
