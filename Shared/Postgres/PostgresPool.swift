import Logging
import NIOPosix
import Resilience
import Synchronization

/// A bounded pool of libpq connections.
///
/// - Every blocking libpq call runs on the pool's own `NIOThreadPool` (one thread per
///   connection, plus one for cancels and closes), never on an event loop or on Swift's
///   cooperative threads.
/// - `withConnection` / `withTransaction` lease a connection for the length of a closure, so
///   nothing leaks; a lease that finds no free connection waits up to `acquireTimeout`.
/// - A connection that broke (server restart, `pg_terminate_backend`, a lost socket), that was
///   left inside a transaction, or whose statement was cancelled is closed instead of being
///   pooled again, and a waiting lease gets its slot to open a fresh one.
/// - A lease's first statement that finds its connection dead without having taken effect
///   runs once more on a fresh connection (see `PostgresConnection`); nothing else is retried.
public final class PostgresPool: Sendable {
    public let configuration: PostgresConfiguration
    let logger: Logger
    let threadPool: NIOThreadPool
    private let state = Mutex(State())

    /// A snapshot of the pool's occupancy, for metrics.
    public struct Statistics: Sendable, Equatable {
        public var open: Int
        public var idle: Int
        public var inUse: Int
        public var waiting: Int
    }

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Grant, any Error>
    }

    /// What a waiting lease receives: a pooled connection, or the right to open one.
    private enum Grant: @unchecked Sendable {  // LibPQConnection is handed over exclusively.
        case connection(LibPQConnection)
        case slot
    }

    private struct State {
        var idle: [LibPQConnection] = []
        /// Connections that exist or are being opened (idle + leased + connecting).
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
    }

    public init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.threadPool = NIOThreadPool(numberOfThreads: configuration.maximumConnections + 1)
        self.threadPool.start()
    }

    public var statistics: Statistics {
        state.withLock { state in
            Statistics(
                open: state.open,
                idle: state.idle.count,
                inUse: state.open - state.idle.count,
                waiting: state.waiters.count
            )
        }
    }

    // MARK: Leasing

    /// Leases a connection for the duration of `body`.
    @discardableResult
    public func withConnection<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        let lease = ConnectionLease(try await acquire())
        let connection = PostgresConnection(lease: lease, pool: self)
        do {
            let result = try await body(connection)
            release(lease.connection)
            return result
        } catch {
            release(lease.connection)
            throw error
        }
    }

    /// Runs `body` inside `BEGIN … COMMIT`; any error thrown rolls the transaction back and is
    /// rethrown. A transaction that failed inside `body` without throwing (an error that the
    /// body caught) is rolled back and reported, never silently committed.
    @discardableResult
    public func withTransaction<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withConnection { connection in
            try await connection.transaction(body)
        }
    }

    /// Runs one statement on a leased connection.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresResult {
        try await withConnection { try await $0.query(query) }
    }

    // MARK: Acquire / release

    func acquire() async throws -> LibPQConnection {
        let deadline = ContinuousClock.now + configuration.acquireTimeout
        while true {
            try Task.checkCancellation()
            enum Decision { case reuse(LibPQConnection), connect, wait, closed }
            let decision: Decision = state.withLock { state in
                if state.closed { return .closed }
                if let connection = state.idle.popLast() { return .reuse(connection) }
                if state.open < configuration.maximumConnections {
                    state.open += 1
                    return .connect
                }
                return .wait
            }
            let grant: Grant
            switch decision {
            case .closed:
                throw PostgresError(.poolClosed, message: "the connection pool is closed")
            case .reuse(let connection):
                grant = .connection(connection)
            case .connect:
                grant = .slot
            case .wait:
                grant = try await waitForGrant(until: deadline)
            }
            switch grant {
            case .connection(let connection):
                if connection.isReusable() { return connection }
                logger.debug("discarding a broken pooled connection", metadata: ["db.backend_pid": "\(connection.backendPID)"])
                discard(connection)
            case .slot:
                return try await openConnection()
            }
        }
    }

    /// Opens a connection into a slot already counted in `open`; gives the slot back on failure.
    private func openConnection() async throws -> LibPQConnection {
        do {
            return try await connect()
        } catch {
            giveBackSlot()
            throw error
        }
    }

    /// Closes a leased connection found dead and opens a fresh one in its slot, which the lease
    /// keeps: when the open fails, the lease still holds the closed connection, and releasing
    /// it frees the slot.
    func reopen(replacing dead: LibPQConnection) async throws -> LibPQConnection {
        try await connect { dead.close() }
    }

    /// Opens a connection on the pool's threads, after `first` (on the same thread).
    private func connect(after first: @escaping @Sendable () -> Void = {}) async throws -> LibPQConnection {
        let configuration = self.configuration
        do {
            return try await threadPool.runIfActive {
                first()
                return try LibPQConnection.connect(configuration)
            }
        } catch let error as PostgresError {
            throw error
        } catch {
            throw PostgresError(.poolClosed, message: "the connection pool is closed")
        }
    }

    /// Waits in line for what `release`, `discard` or a failed open hands over, until `deadline`
    /// (then `.acquireTimeout`) or until the task is cancelled.
    private func waitForGrant(until deadline: ContinuousClock.Instant) async throws -> Grant {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timedOut = PostgresError(
            .acquireTimeout,
            message: "no database connection became free within \(configuration.acquireTimeout)"
        )
        return try await withDeadline(deadline) {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                    enum Now { case grant(Grant), fail(any Error), wait }
                    let now: Now = state.withLock { state in
                        if state.closed { return .fail(PostgresError(.poolClosed, message: "the connection pool is closed")) }
                        if Task.isCancelled { return .fail(CancellationError()) }
                        // Something may have been released between the decision and this lock.
                        if let connection = state.idle.popLast() { return .grant(.connection(connection)) }
                        if state.open < configuration.maximumConnections {
                            state.open += 1
                            return .grant(.slot)
                        }
                        // The deadline may have passed (and its handler found no waiter) already.
                        if ContinuousClock.now >= deadline { return .fail(timedOut) }
                        state.waiters.append(Waiter(id: id, continuation: continuation))
                        return .wait
                    }
                    switch now {
                    case .grant(let grant): continuation.resume(returning: grant)
                    case .fail(let error): continuation.resume(throwing: error)
                    case .wait: break
                    }
                }
            } onCancel: {
                failWaiter(id, with: CancellationError())
            }
        } onDeadline: { [weak self] in
            self?.failWaiter(id, with: timedOut)
        }
    }

    private func failWaiter(_ id: UInt64, with error: any Error) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: error)
    }

    /// Returns a leased connection: back to a waiter or the idle list when it is healthy and
    /// not worn out (`maximumUses`), closed (and its slot passed on) when not.
    func release(_ connection: LibPQConnection) {
        connection.uses += 1
        let wornOut = configuration.maximumUses.map { connection.uses >= $0 } ?? false
        let reusable = connection.isIdle && !wornOut
        enum Next { case handOver(Waiter), pooled, discard }
        let next: Next = state.withLock { state in
            guard reusable, !state.closed else { return .discard }
            if !state.waiters.isEmpty { return .handOver(state.waiters.removeFirst()) }
            state.idle.append(connection)
            return .pooled
        }
        switch next {
        case .handOver(let waiter): waiter.continuation.resume(returning: .connection(connection))
        case .pooled: break
        case .discard: discard(connection)
        }
    }

    /// Closes a connection off-thread and passes its slot to the first waiter, if any.
    private func discard(_ connection: LibPQConnection) {
        closeInBackground(connection)
        giveBackSlot()
    }

    private func giveBackSlot() {
        let waiter = state.withLock { state -> Waiter? in
            if !state.closed, !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .slot)
    }

    private func closeInBackground(_ connection: LibPQConnection) {
        threadPool.submit { _ in connection.close() }
    }

    /// Sends a cancel request for the statement running on `connection`, off the caller's thread.
    func cancel(_ connection: LibPQConnection) {
        threadPool.submit { _ in connection.requestCancel() }
    }

    /// Runs blocking `work` on the pool's threads whether or not the calling task is cancelled
    /// (unlike `NIOThreadPool.runIfActive`, which skips the work of a cancelled task): for the
    /// clean-up that must follow a cancellation, such as a ROLLBACK. Fails only when the pool's
    /// threads are gone.
    func runEvenIfCancelled<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            threadPool.submit { state in
                guard case .active = state else {
                    continuation.resume(throwing: PostgresError(.poolClosed, message: "the connection pool is closed"))
                    return
                }
                continuation.resume(with: Result(catching: work))
            }
        }
    }

    // MARK: Shutdown

    /// Refuses new leases, fails waiting ones, closes idle connections, waits (up to
    /// `gracePeriod`) for leased ones to come back, then stops the threads.
    public func close(gracePeriod: Duration = .seconds(10)) async {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            let idle = state.idle
            let waiters = state.waiters
            state.idle = []
            state.waiters = []
            state.open -= idle.count
            return (idle, waiters)
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: PostgresError(.poolClosed, message: "the connection pool is closed"))
        }
        for connection in idle {
            _ = try? await threadPool.runIfActive { connection.close() }
        }
        // Leased connections close as they come back. A cancelled caller does not wait for them
        // (Task.sleep would return at once, and the loop would spin).
        let deadline = ContinuousClock.now + gracePeriod
        while state.withLock({ $0.open }) > 0, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(10))
        }
        try? await threadPool.shutdownGracefully()
    }
}
