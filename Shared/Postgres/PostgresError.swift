/// A failure reported by the PostgreSQL kit.
///
/// Descriptions are deliberately generic: they carry the SQLSTATE, the server's primary message
/// and the constraint/table/column names the server reports, but never bound parameters, the
/// statement text or the connection string, so they are safe to log. What a client of a service
/// may see is decided by the service (see `ServiceKit`), never by this description.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, in the terms a caller branches on.
    public enum Kind: Sendable, Equatable {
        /// The connection could not be made or was lost mid-statement (SQLSTATE class 08, 57P01…).
        case connectionFailed
        /// No connection became free within the pool's acquire timeout.
        case acquireTimeout
        /// The pool was closed.
        case poolClosed
        /// The statement was cancelled: statement_timeout, or the calling task was cancelled (57014).
        case queryCanceled
        case uniqueViolation          // 23505
        case foreignKeyViolation      // 23503
        case checkViolation           // 23514
        case notNullViolation         // 23502
        case exclusionViolation       // 23P01
        case serializationFailure     // 40001
        case deadlockDetected         // 40P01
        case lockNotAvailable         // 55P03
        /// A value the server could not accept: bad text representation, out of range, division by
        /// zero (SQLSTATE class 22).
        case dataException
        /// Syntax errors, undefined objects, privilege errors: a bug in the caller, not bad input.
        case statementError
        /// A value did not decode into the Swift type asked for.
        case decoding
        /// A migration's file no longer matches what was applied, or a migration failed.
        case migration
        /// Anything else the server reported.
        case other
    }

    public var kind: Kind
    /// The five-character SQLSTATE, when the server sent one.
    public var sqlState: String?
    /// The server's primary message (no statement text, no parameters), or the kit's own.
    public var message: String
    public var constraint: String?
    public var table: String?
    public var column: String?
    /// Set by the kit when the statement provably took no effect and the connection was outside
    /// any transaction (see `LibPQConnection.collectResults`), so that a lease's first
    /// statement may run once more on a fresh connection (see `PostgresConnection`). Only ever
    /// set on a `.connectionFailed`.
    var notExecuted = false

    public init(
        _ kind: Kind,
        message: String,
        sqlState: String? = nil,
        constraint: String? = nil,
        table: String? = nil,
        column: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.constraint = constraint
        self.table = table
        self.column = column
    }

    /// True for failures that a fresh attempt may not hit: lost connections, serialization
    /// failures and deadlocks.
    public var isTransient: Bool {
        switch kind {
        case .connectionFailed, .serializationFailure, .deadlockDetected, .acquireTimeout: true
        default: false
        }
    }

    public var description: String {
        var parts = ["PostgresError.\(kind)"]
        if let sqlState { parts.append("sqlstate=\(sqlState)") }
        if let constraint { parts.append("constraint=\(constraint)") }
        if let table { parts.append("table=\(table)") }
        if let column { parts.append("column=\(column)") }
        return parts.joined(separator: " ") + ": " + message
    }

    /// Maps a SQLSTATE to the kind a caller branches on.
    static func kind(forSQLState state: String) -> Kind {
        switch state {
        case "23505": return .uniqueViolation
        case "23503": return .foreignKeyViolation
        case "23514": return .checkViolation
        case "23502": return .notNullViolation
        case "23P01": return .exclusionViolation
        case "40001": return .serializationFailure
        case "40P01": return .deadlockDetected
        case "55P03": return .lockNotAvailable
        case "57014": return .queryCanceled
        // admin_shutdown, crash_shutdown, cannot_connect_now: the server is going away;
        // idle_session_timeout: it ended an idle session.
        case "57P01", "57P02", "57P03", "57P05": return .connectionFailed
        default: break
        }
        switch state.prefix(2) {
        case "08": return .connectionFailed
        case "22": return .dataException
        case "42", "0A", "25", "2B", "2D", "3B", "3D", "3F", "26", "34": return .statementError
        default: return .other
        }
    }
}
