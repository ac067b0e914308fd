import Synchronization

/// What one `withConnection` lease holds: the connection its statements run on, and whether
/// its first statement has been sent. The pool may swap the connection once, for the lease's
/// first statement only (see `PostgresConnection`); before that statement nothing of the
/// caller's lives on the connection, so the swap is invisible.
///
/// `Sendable` (a `Mutex`), so that `PostgresConnection` stays built from `Sendable` parts; it is
/// still used by one task at a time, the lease holder.
final class ConnectionLease: Sendable {
    private struct State {
        var connection: LibPQConnection
        var firstStatementSent = false
    }

    private let state: Mutex<State>

    init(_ connection: LibPQConnection) {
        state = Mutex(State(connection: connection))
    }

    /// The connection the lease's statements run on now.
    var connection: LibPQConnection { state.withLock { $0.connection } }

    /// True for the lease's first statement, false for every later one.
    func startStatement() -> Bool {
        state.withLock { state in
            defer { state.firstStatementSent = true }
            return !state.firstStatementSent
        }
    }

    /// Puts `connection` in place of the one the first statement found dead.
    func replace(with connection: LibPQConnection) {
        state.withLock { $0.connection = connection }
    }
}
