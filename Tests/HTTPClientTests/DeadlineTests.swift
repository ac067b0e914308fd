import Resilience
import Synchronization
import Testing

/// The platform's one way of waiting with a time limit (Shared/Resilience), tested here with
/// its first users' kits. Every test asserts outcomes and the order of events, never how long
/// anything took: an operation either returns at once or waits until it is cancelled.
@Suite("withDeadline / withTimeout")
struct DeadlineTests {
    struct Boom: Error {}

    /// Events in the order they happened, from any task.
    final class EventLog: Sendable {
        private let events = Mutex<[String]>([])
        func record(_ event: String) { events.withLock { $0.append(event) } }
        var recorded: [String] { events.withLock { $0 } }
    }

    /// Suspends until the calling task is cancelled: a stream nobody yields to ends then.
    static func parkUntilCancelled() async {
        let (never, keep) = AsyncStream<Never>.makeStream()
        for await _ in never {}
        keep.finish()
    }

    @Test("an operation that finishes first returns its value (and the timer is cancelled, or this would not return)")
    func operationFirst() async throws {
        #expect(try await withTimeout(.seconds(3600)) { 42 } == 42)
    }

    @Test("an operation's own error is rethrown as is")
    func operationError() async {
        await #expect(throws: Boom.self) {
            try await withTimeout(.seconds(3600)) { () async throws -> Int in throw Boom() }
        }
    }

    @Test("at the deadline the operation is cancelled and awaited, then DeadlineExceeded is thrown")
    func deadlineFirst() async {
        let log = EventLog()
        await #expect(throws: DeadlineExceeded.self) {
            try await withTimeout(.milliseconds(1)) {
                await Self.parkUntilCancelled()
                log.record("operation cancelled")
                try Task.checkCancellation()
            }
            log.record("returned")
        }
        log.record("thrown")
        #expect(log.recorded == ["operation cancelled", "thrown"])
    }

    @Test("a value the operation still produces after the deadline is returned, never thrown away")
    func lateValueKept() async throws {
        let value = try await withTimeout(.milliseconds(1)) { () async -> Int in
            await Self.parkUntilCancelled()
            return 7  // e.g. a pooled connection handed over in the same instant
        }
        #expect(value == 7)
    }

    @Test("a deadline already past still returns an operation's immediate result")
    func pastDeadline() async throws {
        #expect(try await withDeadline(.now - .seconds(1)) { 5 } == 5)
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.now - .seconds(1)) {
                await Self.parkUntilCancelled()
                try Task.checkCancellation()
            }
        }
    }

    @Test("cancelling the caller cancels the operation and reports CancellationError, not DeadlineExceeded")
    func callerCancelled() async {
        let (started, reportStart) = AsyncStream<Void>.makeStream()
        let task = Task {
            try await withTimeout(.seconds(3600)) {
                reportStart.yield()
                await Self.parkUntilCancelled()
                try Task.checkCancellation()
            }
        }
        var iterator = started.makeAsyncIterator()
        _ = await iterator.next()
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}
