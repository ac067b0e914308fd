import Resilience
import Synchronization
import Testing

/// The platform's one way of waiting with a time limit (Shared/Resilience), tested here with
/// its first users' kits. Every test asserts outcomes and the order of events, never how long
/// anything took: the deadline is either an hour away or already past.
@Suite("withDeadline / withTimeout")
struct DeadlineTests {
    struct Boom: Error {}
    struct TimedOut: Error {}

    /// Events in the order they happened, from any task.
    final class EventLog: Sendable {
        private let events = Mutex<[String]>([])
        func record(_ event: String) { events.withLock { $0.append(event) } }
        var recorded: [String] { events.withLock { $0 } }
    }

    /// A one-shot wait, like a pool's waiter: `wait()` suspends until `fail(_:)`; a `fail` that
    /// comes first makes the `wait` end at once.
    final class Gate: Sendable {
        private enum State { case idle, waiting(CheckedContinuation<Void, any Error>), failed(any Error) }
        private let state = Mutex(State.idle)

        func wait() async throws {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let failure: (any Error)? = state.withLock { state in
                    if case .failed(let error) = state { return error }
                    state = .waiting(continuation)
                    return nil
                }
                if let failure { continuation.resume(throwing: failure) }
            }
        }

        func fail(_ error: any Error) {
            let waiting: CheckedContinuation<Void, any Error>? = state.withLock { state in
                defer { state = .failed(error) }
                if case .waiting(let continuation) = state { return continuation }
                return nil
            }
            waiting?.resume(throwing: error)
        }
    }

    @Test("an operation that returns first gives its value, and the deadline handler never runs")
    func operationFirst() async throws {
        let log = EventLog()
        let value = await withTimeout(.seconds(3600)) {
            42
        } onTimeout: {
            log.record("deadline")
        }
        #expect(value == 42)
        // The timer was cancelled when the operation returned: its hour cannot run out now.
        #expect(log.recorded.isEmpty)
    }

    @Test("an operation's own error is rethrown as is")
    func operationError() async {
        await #expect(throws: Boom.self) {
            try await withTimeout(.seconds(3600)) { () async throws -> Int in throw Boom() } onTimeout: {}
        }
    }

    @Test("at the deadline the handler ends the wait, with the error it chooses")
    func deadlineEndsWait() async {
        let log = EventLog()
        let gate = Gate()
        await #expect(throws: TimedOut.self) {
            try await withDeadline(.now - .seconds(1)) {
                try await gate.wait()
            } onDeadline: {
                log.record("deadline")
                gate.fail(TimedOut())
            }
        }
        log.record("returned")
        #expect(log.recorded == ["deadline", "returned"])
    }

    @Test("cancelling the caller reaches the operation's own cancellation handler; the deadline handler is not called")
    func callerCancelled() async {
        let log = EventLog()
        let (started, reportStart) = AsyncStream<Void>.makeStream()
        let task = Task {
            let gate = Gate()
            try await withTimeout(.seconds(3600)) {
                try await withTaskCancellationHandler {
                    reportStart.yield()
                    try await gate.wait()
                } onCancel: {
                    gate.fail(CancellationError())
                }
            } onTimeout: {
                log.record("deadline")
            }
        }
        var iterator = started.makeAsyncIterator()
        _ = await iterator.next()
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(log.recorded.isEmpty)
    }
}
