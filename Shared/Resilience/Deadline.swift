/// Thrown by ``withDeadline(_:operation:)`` and ``withTimeout(_:operation:)`` when the time ran
/// out before the operation finished (and the operation gave up when cancelled).
public struct DeadlineExceeded: Error, Sendable, Equatable, CustomStringConvertible {
    public init() {}

    public var description: String { "the deadline passed before the operation finished" }
}

/// Runs `operation` for at most `timeout`: ``withDeadline(_:operation:)`` with the deadline
/// `timeout` from now.
public func withTimeout<Success: Sendable>(
    _ timeout: Duration,
    operation: @escaping @Sendable () async throws -> Success
) async throws -> Success {
    try await withDeadline(.now + timeout, operation: operation)
}

/// Runs `operation` until `deadline`: the one way the platform waits with a time limit (a
/// pool lease waiting for a free connection, an idle worker waiting for its doorbell), so that
/// each waiter only has to handle cancellation, and the timer, its cancellation and its races
/// live in one place.
///
/// The operation runs in a child task that races a sleep until `deadline`; whichever ends
/// first cancels the other, and both have ended when this returns (structured concurrency: no
/// timer outlives the wait). Then:
/// - the operation finished first: its result or error, as is;
/// - the deadline passed first: the operation is cancelled and awaited. If it throws
///   `CancellationError`, ``DeadlineExceeded`` is thrown instead. If it still returns a value
///   (it completed in the same instant, or does not react to cancellation), that value is
///   returned: a result is never thrown away, which matters when it owns a resource such as a
///   pooled connection. Any other error is rethrown;
/// - the calling task is cancelled: the operation is cancelled, and its outcome (usually
///   `CancellationError`) is returned as is.
///
/// An operation that ignores cancellation therefore delays the return past `deadline`: the
/// deadline bounds how long the operation is left alone, not how long it takes to stop.
public func withDeadline<Success: Sendable>(
    _ deadline: ContinuousClock.Instant,
    operation: @escaping @Sendable () async throws -> Success
) async throws -> Success {
    try await withThrowingTaskGroup(of: Racer<Success>.self) { group in
        group.addTask {
            do {
                return .finished(.success(try await operation()))
            } catch {
                return .finished(.failure(error))
            }
        }
        group.addTask {
            do {
                try await Task.sleep(until: deadline, clock: .continuous)
                return .deadlinePassed
            } catch {
                return .timerCancelled
            }
        }
        var deadlinePassed = false
        while let racer = try await group.next() {
            switch racer {
            case .finished(.failure(let error)) where deadlinePassed && error is CancellationError:
                throw DeadlineExceeded()
            case .finished(let result):
                group.cancelAll()
                return try result.get()
            case .deadlinePassed:
                deadlinePassed = true
                group.cancelAll()
            case .timerCancelled:
                continue
            }
        }
        // Not reached: the operation's child always reports. Treated as a cancelled wait.
        throw CancellationError()
    }
}

/// What a child of ``withDeadline(_:operation:)`` reports when it ends.
private enum Racer<Success: Sendable>: Sendable {
    case finished(Result<Success, any Error>)
    case deadlinePassed
    /// The timer was cancelled: the operation finished first, or the caller was cancelled.
    case timerCancelled
}
