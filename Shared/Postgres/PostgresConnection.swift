import CLibPQ
import NIOPosix

/// A leased connection, valid only inside the `withConnection` / `withTransaction` closure
/// that received it.
///
/// Each call hops to the pool's thread pool for the blocking libpq work. Cancelling the calling
/// task sends PostgreSQL a cancel request; the statement then fails with `.queryCanceled`.
///
/// Deliberately not `Sendable`: a libpq connection runs one statement at a time, and two tasks
/// interleaving statements on it would corrupt each other's results and transaction. Without
/// `Sendable`, the compiler refuses to hand a connection to a child task, an `async let` or a
/// `Task` while the lease holder may still use it, so concurrent use cannot happen unnoticed.
/// The statement methods inherit the caller's isolation (`#isolation`) so that a lease held
/// inside an actor can be used there without being sent anywhere.
///
/// A lease's first statement that finds its connection dead, without having taken effect
/// (`PostgresError.notExecuted`: never sent, or answered only by the server ending the
/// session, outside any transaction), runs once more on a freshly opened connection, which
/// the lease keeps. No later statement is ever repeated: by then the caller may have a
/// transaction or session state on the connection, which went with it.
public struct PostgresConnection {
    let lease: ConnectionLease
    let pool: PostgresPool

    /// The connection the lease's statements run on now.
    var raw: LibPQConnection { lease.connection }

    /// The server process serving this connection (`pg_backend_pid()`).
    public var backendPID: Int32 { raw.backendPID }

    /// Runs one statement with its bound parameters.
    @discardableResult
    public func query(
        _ query: PostgresQuery,
        isolation: isolated (any Actor)? = #isolation
    ) async throws -> PostgresResult {
        try await run { raw in try raw.execute(query) }
    }

    /// Runs SQL text that may hold several statements and takes no parameters (migration
    /// files, DDL). Never pass input through here: use `query` with bound parameters.
    @discardableResult
    public func execute(
        simple sql: String,
        isolation: isolated (any Actor)? = #isolation
    ) async throws -> PostgresResult {
        try await run { raw in try raw.executeSimple(sql) }
    }

    private func run(
        isolation: isolated (any Actor)? = #isolation,
        _ work: @escaping @Sendable (LibPQConnection) throws -> PostgresResult
    ) async throws -> PostgresResult {
        try Task.checkCancellation()
        let first = lease.startStatement()
        do {
            return try await attempt(work, on: raw)
        } catch let error as PostgresError where first && error.notExecuted {
            pool.logger.info("the connection was found dead by the lease's first statement, which never took effect; running it once more on a fresh connection", metadata: [
                "db.backend_pid": "\(raw.backendPID)", "error": "\(error)",
            ])
            let fresh = try await pool.reopen(replacing: raw)
            lease.replace(with: fresh)
            return try await attempt(work, on: fresh)
        }
    }

    /// Runs `work` once on `raw`, on the pool's threads.
    private func attempt(
        isolation: isolated (any Actor)? = #isolation,
        _ work: @escaping @Sendable (LibPQConnection) throws -> PostgresResult,
        on raw: LibPQConnection
    ) async throws -> PostgresResult {
        let pool = self.pool
        return try await withTaskCancellationHandler {
            do {
                return try await pool.threadPool.runIfActive { try work(raw) }
            } catch let error as PostgresError {
                throw error
            } catch let error as CancellationError {
                // Cancelled before the thread pool ran the work: nothing reached the server.
                throw error
            } catch {
                // runIfActive only fails on its own when the pool's threads are gone.
                throw PostgresError(.poolClosed, message: "the connection pool is closed")
            }
        } onCancel: {
            pool.cancel(raw)
        }
    }

    // MARK: Transactions

    /// Runs `body` inside `BEGIN … COMMIT` on this connection (see `PostgresPool.withTransaction`).
    @discardableResult
    public func transaction<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await execute(simple: "BEGIN")
        raw.savepointCounter = 0
        // The body gets its own copy of the handle: built from Sendable parts, the copy is in no
        // isolation region yet, so the compiler lets it go to `body` (whose isolation is the
        // caller's); `self` belongs to this function's region and could not be sent.
        let lent = PostgresConnection(lease: lease, pool: pool)
        let result: Result
        do {
            result = try await body(lent)
            if raw.transactionStatus == PQTRANS_INERROR {
                throw PostgresError(.other, message: "the transaction failed inside its body and was rolled back")
            }
            // A COMMIT that is not sent (the task was cancelled first) or fails leaves the
            // transaction to the ROLLBACK below, like any other error.
            try await execute(simple: "COMMIT")
        } catch {
            await rollbackQuietly("ROLLBACK")
            throw error
        }
        return result
    }

    /// Runs `body` inside a savepoint of the current transaction: an error thrown by `body`
    /// rolls back to the savepoint (keeping the outer transaction's earlier work) and is
    /// rethrown.
    @discardableResult
    public func withSavepoint<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        raw.savepointCounter += 1
        let name = "platform_sp_\(raw.savepointCounter)"
        try await execute(simple: "SAVEPOINT \(name)")
        let lent = PostgresConnection(lease: lease, pool: pool)  // a fresh copy, as in `transaction`
        let result: Result
        do {
            result = try await body(lent)
        } catch {
            await rollbackQuietly("ROLLBACK TO SAVEPOINT \(name)")
            throw error
        }
        try await execute(simple: "RELEASE SAVEPOINT \(name)")
        return result
    }

    /// Rolls back, also when the calling task was cancelled: that is when a rollback matters
    /// most, and `NIOThreadPool.runIfActive` would skip the work of a cancelled task, so the
    /// statement goes through `PostgresPool.runEvenIfCancelled`. When the rollback itself fails
    /// (a lost connection, the pool's threads gone, a cancel request overtaking it), the
    /// connection is still inside its transaction, or has sent a cancel: either way it is not
    /// idle, so `PostgresPool.release` closes it instead of pooling it, and closing ends the
    /// transaction on the server. No connection ever goes back to the pool inside a transaction.
    private func rollbackQuietly(_ statement: String, isolation: isolated (any Actor)? = #isolation) async {
        let raw = self.raw
        _ = try? await pool.runEvenIfCancelled { try raw.executeSimple(statement) }
    }
}
