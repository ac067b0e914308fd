import CLibPQ
import Foundation
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One libpq connection. Every method that talks to the server blocks, so the pool only calls
/// them from its own thread pool, never from an event loop or Swift's cooperative pool.
///
/// `@unchecked Sendable`: the `PGconn` is used by one lease holder at a time (the pool hands it
/// out exclusively), and the only call that may come from another thread, `requestCancel`,
/// goes through libpq's thread-safe `PGcancel` object under `cancelLock`.
final class LibPQConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    /// Guards the `PGcancel` object against `close()` freeing it while a cancel is sent.
    private let cancelLock: Mutex<CancelHandle>

    /// libpq's `PGcancel*`; `@unchecked Sendable` because libpq documents `PQcancel` as safe to
    /// call from any thread, and every access goes through `cancelLock`.
    private struct CancelHandle: @unchecked Sendable {
        var pointer: OpaquePointer?
    }
    private let cancelRequested = Atomic<Bool>(false)
    let backendPID: Int32
    /// Names savepoints uniquely within the connection's current transaction.
    var savepointCounter = 0
    /// Leases this connection has served (the pool retires it at `maximumUses`).
    var uses = 0

    private init(handle: OpaquePointer) {
        self.handle = handle
        self.backendPID = PQbackendPID(handle)
        self.cancelLock = Mutex(CancelHandle(pointer: PQgetCancel(handle)))
        // libpq prints NOTICEs ("relation already exists, skipping") to stderr by default; they
        // are expected noise for idempotent DDL, and stderr is the services' log stream.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
    }

    deinit {
        close()
    }

    /// Opens a connection (blocking). The connection string goes to libpq as is.
    static func connect(_ configuration: PostgresConfiguration) throws(PostgresError) -> LibPQConnection {
        assertNotOnEventLoop()
        let connectTimeout = max(2, configuration.connectTimeout.milliseconds / 1000)
        let pairs: [(String, String)] = [
            ("dbname", configuration.connectionString),
            ("application_name", configuration.applicationName),
            ("client_encoding", "UTF8"),
            ("connect_timeout", String(connectTimeout)),
            ("options", configuration.sessionOptions),
        ]
        let keywords = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let keywordPointers = keywords.map { UnsafePointer($0) } + [nil]
        let valuePointers = values.map { UnsafePointer($0) } + [nil]
        guard let handle = PQconnectdbParams(keywordPointers, valuePointers, 1) else {
            throw PostgresError(.connectionFailed, message: "could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = Self.connectionMessage(handle)
            PQfinish(handle)
            throw PostgresError(.connectionFailed, message: message)
        }
        return LibPQConnection(handle: handle)
    }

    /// libpq's error text, without the "connection to server at …" preamble that names the host.
    private static func connectionMessage(_ handle: OpaquePointer) -> String {
        guard let raw = PQerrorMessage(handle) else { return "could not connect to the database" }
        var text = String(cString: raw).trimmingCharacters(in: .whitespacesAndNewlines)
        if let range = text.range(of: "failed: ", options: .backwards) {
            text = String(text[range.upperBound...])
        }
        text = text.split(separator: "\n").first.map(String.init) ?? text
        return "could not connect to the database: " + (text.isEmpty ? "unknown error" : text)
    }

    var isOpen: Bool { handle != nil }

    /// Non-blocking check made before a pooled connection is handed out again: the connection
    /// must be idle, and anything the server sent while it sat in the pool (the FATAL message
    /// and EOF of `pg_terminate_backend` or a server restart) is read first.
    func isReusable() -> Bool {
        guard isIdle, let handle else { return false }
        // Nothing legitimate arrives on an idle pooled connection (it never LISTENs). Anything
        // readable is a terminated backend's FATAL message, its end of stream, or a server
        // going away: the message may arrive before the stream closes, so reading it and
        // checking the status could still pass a dead connection. Any input disqualifies it.
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 0
    }

    /// Connected, outside any transaction, and never sent a cancel: fit to go back to the pool.
    /// (The socket is checked when the connection is handed out again, by `isReusable`.)
    var isIdle: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK && PQtransactionStatus(handle) == PQTRANS_IDLE
            && !cancelRequested.load(ordering: .relaxed)
    }

    /// True while the connection sits inside a transaction block (ok or failed).
    var transactionStatus: PGTransactionStatusType {
        guard let handle else { return PQTRANS_UNKNOWN }
        return PQtransactionStatus(handle)
    }

    /// Runs one statement with bound parameters (blocking). Results come in text format.
    func execute(_ query: PostgresQuery) throws(PostgresError) -> PostgresResult {
        assertNotOnEventLoop()
        guard let handle else { throw PostgresError(.connectionFailed, message: "connection is closed") }
        let count = query.binds.count
        var types = [Oid](repeating: 0, count: count)
        var lengths = [Int32](repeating: 0, count: count)
        var formats = [Int32](repeating: 0, count: count)
        var values = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
        defer { values.forEach { free($0) } }
        for (index, bind) in query.binds.enumerated() {
            types[index] = bind.type.rawValue
            switch bind.storage {
            case .null:
                values[index] = nil
            case .text(let text):
                // A C string ends at the first NUL: binding it would silently cut the value
                // short. PostgreSQL's text cannot hold U+0000 anyway.
                guard !text.utf8.contains(0) else {
                    throw PostgresError(.dataException, message: "parameter $\(index + 1) contains a NUL character, which PostgreSQL text cannot hold")
                }
                values[index] = strdup(text)
            case .binary(let bytes):
                guard let raw = malloc(max(1, bytes.count)) else {
                    throw PostgresError(.other, message: "out of memory binding a parameter")
                }
                let buffer = raw.assumingMemoryBound(to: CChar.self)
                bytes.withUnsafeBytes { source in
                    if let base = source.baseAddress { memcpy(buffer, base, bytes.count) }
                }
                values[index] = buffer
                lengths[index] = Int32(bytes.count)
                formats[index] = 1
            }
        }
        let outsideTransaction = PQtransactionStatus(handle) == PQTRANS_IDLE
        let sent = values.withUnsafeBufferPointer { valuePointers in
            valuePointers.withMemoryRebound(to: UnsafePointer<CChar>?.self) { constValues in
                PQsendQueryParams(handle, query.sql, Int32(count), types, constValues.baseAddress, lengths, formats, 0)
            }
        }
        return try collectResults(handle, sent: sent == 1, outsideTransaction: outsideTransaction)
    }

    /// Runs one or more statements without parameters through the simple query protocol
    /// (migration files, `BEGIN`, `LISTEN`). Only the last statement's result is returned.
    @discardableResult
    func executeSimple(_ sql: String) throws(PostgresError) -> PostgresResult {
        assertNotOnEventLoop()
        guard let handle else { throw PostgresError(.connectionFailed, message: "connection is closed") }
        let outsideTransaction = PQtransactionStatus(handle) == PQTRANS_IDLE
        return try collectResults(handle, sent: PQsendQuery(handle, sql) == 1, outsideTransaction: outsideTransaction)
    }

    /// Reads every result of the statement just sent (blocking) and returns the last one, or
    /// throws the first error.
    ///
    /// The error is marked `notExecuted` when the connection was outside any transaction and
    /// the statement provably took no effect: libpq could not send it, or the first thing the
    /// server answered was that it was ending the session (`sessionEnded`), and the connection
    /// is gone. The server reports a session's end only after whatever the statement produced
    /// (a statement that completed sends its command tag first), and a backend that ends
    /// mid-statement aborts the statement's implicit transaction.
    private func collectResults(
        _ handle: OpaquePointer, sent: Bool, outsideTransaction: Bool
    ) throws(PostgresError) -> PostgresResult {
        guard sent else {
            var error = PostgresError(.connectionFailed, message: "the statement could not be sent: the connection to the database was lost")
            error.notExecuted = outsideTransaction
            throw error
        }
        var last: PostgresResult?
        var firstError: PostgresError?
        var answeredBeforeError = false
        // PQgetResult returns NULL once the statement is done; in COPY mode it would keep
        // returning the COPY state, which no caller of the kit starts.
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            guard firstError == nil else { continue }
            switch PQresultStatus(result) {
            case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                last = PostgresResult(layout: Self.emptyLayout, values: [], affectedRows: Self.affectedRows(result))
                answeredBeforeError = true
            case PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
                last = Self.rows(of: result)
                answeredBeforeError = true
            case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
                throw PostgresError(.statementError, message: "COPY is not supported by the kit")
            default:
                firstError = error(from: result)
            }
        }
        if var error = firstError {
            error.notExecuted = outsideTransaction && !answeredBeforeError
                && Self.sessionEnded(error.sqlState) && PQstatus(handle) == CONNECTION_BAD
            throw error
        }
        guard let last else {
            throw PostgresError(.connectionFailed, message: "the connection to the database was lost")
        }
        return last
    }

    /// The SQLSTATEs of a session the server ended: admin_shutdown (`pg_terminate_backend`, a
    /// server shutdown), crash_shutdown, idle_session_timeout.
    private static func sessionEnded(_ sqlState: String?) -> Bool {
        ["57P01", "57P02", "57P05"].contains(sqlState)
    }

    private static let emptyLayout = PostgresResult.Layout(columns: [])

    private static func affectedRows(_ result: OpaquePointer) -> Int {
        guard let text = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: text)) ?? 0
    }

    private static func rows(of result: OpaquePointer) -> PostgresResult {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        var columns: [PostgresResult.Column] = []
        columns.reserveCapacity(columnCount)
        for column in 0..<columnCount {
            let name = PQfname(result, Int32(column)).map { String(cString: $0) } ?? "?column?"
            columns.append(.init(name: name, type: PostgresType(PQftype(result, Int32(column)))))
        }
        var values: [[String?]] = []
        values.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var rowValues: [String?] = []
            rowValues.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    rowValues.append(nil)
                } else {
                    let length = Int(PQgetlength(result, Int32(row), Int32(column)))
                    guard let pointer = PQgetvalue(result, Int32(row), Int32(column)) else {
                        rowValues.append(nil)
                        continue
                    }
                    rowValues.append(pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
                        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
                    })
                }
            }
            values.append(rowValues)
        }
        let affected = affectedRows(result)
        return PostgresResult(
            layout: PostgresResult.Layout(columns: columns),
            values: values,
            affectedRows: affected > 0 ? affected : rowCount
        )
    }

    private func error(from result: OpaquePointer) -> PostgresError {
        func field(_ code: Int32) -> String? {
            PQresultErrorField(result, code).map { String(cString: $0) }
        }
        let sqlState = field(Int32(UInt8(ascii: "C")))          // PG_DIAG_SQLSTATE
        let lost = handle.map { PQstatus($0) == CONNECTION_BAD } ?? true
        let primary = field(Int32(UInt8(ascii: "M")))  // PG_DIAG_MESSAGE_PRIMARY
            ?? (lost ? "the connection to the database was lost" : "statement failed")
        let kind: PostgresError.Kind
        if let sqlState {
            kind = PostgresError.kind(forSQLState: sqlState)
        } else {
            kind = lost ? .connectionFailed : .other
        }
        return PostgresError(
            kind == .other && lost ? .connectionFailed : kind,
            message: primary,
            sqlState: sqlState,
            constraint: field(Int32(UInt8(ascii: "n"))),  // PG_DIAG_CONSTRAINT_NAME
            table: field(Int32(UInt8(ascii: "t"))),       // PG_DIAG_TABLE_NAME
            column: field(Int32(UInt8(ascii: "c")))       // PG_DIAG_COLUMN_NAME
        )
    }

    /// Asks the server to cancel the statement in progress (thread-safe; opens a short-lived
    /// connection of its own, so callers run it off the cooperative pool). The connection is
    /// not reused afterwards: a late cancel must never hit the next lease's statement.
    func requestCancel() {
        cancelRequested.store(true, ordering: .relaxed)
        cancelLock.withLock { cancel in
            guard let cancel = cancel.pointer else { return }
            var buffer = [CChar](repeating: 0, count: 256)
            _ = PQcancel(cancel, &buffer, Int32(buffer.count))
        }
    }

    // MARK: LISTEN / NOTIFY support

    var socket: Int32 { handle.map { PQsocket($0) } ?? -1 }

    /// Reads whatever arrived (non-blocking) and returns the notifications it held; throws when
    /// the connection is gone.
    func drainNotifications() throws(PostgresError) -> [PostgresNotification] {
        guard let handle, PQconsumeInput(handle) == 1, PQstatus(handle) == CONNECTION_OK else {
            throw PostgresError(.connectionFailed, message: "the listening connection was lost")
        }
        var notifications: [PostgresNotification] = []
        while let notify = PQnotifies(handle) {
            let channel = String(cString: notify.pointee.relname)
            let payload = String(cString: notify.pointee.extra)
            notifications.append(PostgresNotification(channel: channel, payload: payload, backendPID: notify.pointee.be_pid))
            PQfreemem(notify)
        }
        return notifications
    }

    /// Closes the connection and frees everything libpq allocated for it. Safe to call twice.
    func close() {
        cancelLock.withLock { cancel in
            if let pointer = cancel.pointer { PQfreeCancel(pointer) }
            cancel.pointer = nil
        }
        if let handle {
            PQfinish(handle)
            self.handle = nil
        }
    }
}

/// Debug builds (and so every test run) trap when a blocking libpq call is made on a SwiftNIO
/// event loop thread.
@inline(__always)
private func assertNotOnEventLoop() {
    assert(MultiThreadedEventLoopGroup.currentEventLoop == nil, "a blocking libpq call ran on a SwiftNIO event loop thread")
}

/// One `NOTIFY` delivered to a listener.
public struct PostgresNotification: Sendable, Equatable {
    public var channel: String
    public var payload: String
    /// The process id of the backend that sent it.
    public var backendPID: Int32
}
