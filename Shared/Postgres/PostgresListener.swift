import Logging
import NIOPosix
import Resilience
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Receives `NOTIFY`s on a dedicated connection that survives reconnection.
///
/// `run()` owns one connection and one thread: it waits on the socket, drains notifications
/// and hands them to subscribers. When the connection is lost (server restart,
/// `pg_terminate_backend`), it reconnects with capped backoff and issues `LISTEN` again for
/// every channel that has subscribers. Notifications sent while no connection existed are
/// lost (PostgreSQL does not queue them for absent listeners); `reconnections` lets a consumer
/// notice the gap and re-read what it missed.
public final class PostgresListener: Sendable {
    private let configuration: PostgresConfiguration
    private let logger: Logger
    private let threadPool = NIOThreadPool(numberOfThreads: 1)
    private let state = Mutex(State())
    private let stopRequested = Atomic<Bool>(false)
    private let droppedCount = Atomic<Int>(0)

    private struct State {
        var subscribers: [String: [UInt64: AsyncStream<PostgresNotification>.Continuation]] = [:]
        var nextSubscriberID: UInt64 = 0
        /// Channels the current connection is listening on.
        var listening: Set<String> = []
        var backendPID: Int32?
        var connections = 0
    }

    public init(configuration: PostgresConfiguration, logger: Logger) {
        var configuration = configuration
        configuration.applicationName += "-listener"
        // A listening connection sits idle for hours: no statement timeout applies to it.
        configuration.statementTimeout = nil
        self.configuration = configuration
        self.logger = logger
    }

    /// The backend pid of the live listening connection, if there is one.
    public var backendPID: Int32? { state.withLock { $0.backendPID } }

    /// How many times a connection was made (1 after the first; more after reconnections).
    public var connections: Int { state.withLock { $0.connections } }

    /// True when the live connection has issued `LISTEN` for `channel`.
    public func isListening(on channel: String) -> Bool {
        state.withLock { $0.backendPID != nil && $0.listening.contains(channel) }
    }

    /// Notifications on `channel`, for as long as the stream is iterated.
    public func notifications(on channel: String) -> AsyncStream<PostgresNotification> {
        let (stream, continuation) = AsyncStream<PostgresNotification>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let id = state.withLock { state in
            state.nextSubscriberID += 1
            state.subscribers[channel, default: [:]][state.nextSubscriberID] = continuation
            return state.nextSubscriberID
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { state in
                state.subscribers[channel]?[id] = nil
                if state.subscribers[channel]?.isEmpty == true { state.subscribers[channel] = nil }
            }
        }
        return stream
    }

    /// Listens until the calling task is cancelled.
    public func run() async throws {
        threadPool.start()
        stopRequested.store(false, ordering: .relaxed)
        await withTaskCancellationHandler {
            _ = try? await threadPool.runIfActive { [self] in self.loop() }
        } onCancel: {
            stopRequested.store(true, ordering: .relaxed)
        }
        // Finish outside the lock: a stream's termination handler takes the lock itself.
        let subscribers = state.withLock { state in
            defer { state.subscribers = [:] }
            return state.subscribers.values.flatMap(\.values)
        }
        for continuation in subscribers { continuation.finish() }
        try? await threadPool.shutdownGracefully()
    }

    /// Delays between failed attempts to (re)connect.
    private static let reconnectBackoff = Backoff(base: .milliseconds(50), cap: .seconds(2))

    /// The blocking loop, on the listener's own thread.
    private func loop() {
        var failures = 0
        while !stopRequested.load(ordering: .relaxed) {
            let connection: LibPQConnection
            do {
                connection = try LibPQConnection.connect(configuration)
            } catch {
                failures += 1
                let delay = Self.reconnectBackoff.delay(beforeRetry: failures)
                logger.warning("listener could not connect; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                sleep(for: delay)
                continue
            }
            failures = 0
            state.withLock { state in
                state.backendPID = connection.backendPID
                state.listening = []
                state.connections += 1
            }
            serve(connection)
            connection.close()
            state.withLock { state in
                state.backendPID = nil
                state.listening = []
            }
        }
    }

    /// Serves one connection until it breaks or a stop is requested.
    private func serve(_ connection: LibPQConnection) {
        while !stopRequested.load(ordering: .relaxed) {
            do {
                try synchroniseChannels(connection)
                var descriptor = pollfd(fd: connection.socket, events: Int16(POLLIN), revents: 0)
                let ready = poll(&descriptor, 1, 100)
                if ready < 0, errno != EINTR { throw PostgresError(.connectionFailed, message: "poll failed") }
                guard ready > 0 else { continue }
                for notification in try connection.drainNotifications() {
                    deliver(notification)
                }
            } catch {
                if !stopRequested.load(ordering: .relaxed) {
                    logger.warning("listener connection lost; reconnecting", metadata: ["error": "\(error)"])
                }
                return
            }
        }
    }

    /// Issues LISTEN / UNLISTEN so the connection listens on exactly the subscribed channels.
    private func synchroniseChannels(_ connection: LibPQConnection) throws(PostgresError) {
        let (wanted, current) = state.withLock { (Set($0.subscribers.keys), $0.listening) }
        guard wanted != current else { return }
        for channel in wanted.subtracting(current) {
            try connection.executeSimple("LISTEN \(PostgresQuery.quoteIdentifier(channel))")
        }
        for channel in current.subtracting(wanted) {
            try connection.executeSimple("UNLISTEN \(PostgresQuery.quoteIdentifier(channel))")
        }
        state.withLock { $0.listening = wanted }
        // LISTEN's round trip may have buffered notifications already: hand them out now.
        for notification in try connection.drainNotifications() {
            deliver(notification)
        }
    }

    private func deliver(_ notification: PostgresNotification) {
        let continuations = state.withLock { Array(($0.subscribers[notification.channel] ?? [:]).values) }
        for continuation in continuations {
            if case .dropped = continuation.yield(notification) {
                // A subscriber 10,000 notifications behind loses the oldest: say so, sparingly.
                let dropped = droppedCount.add(1, ordering: .relaxed).newValue
                if dropped == 1 || dropped % 10_000 == 0 {
                    logger.warning("a listener's subscriber is too far behind: notifications dropped", metadata: [
                        "channel": "\(notification.channel)", "notifications.dropped": "\(dropped)",
                    ])
                }
            }
        }
    }

    private func sleep(for duration: Duration) {
        // Sleeps in short steps so a stop request is honoured promptly.
        var remaining = duration.milliseconds
        while remaining > 0, !stopRequested.load(ordering: .relaxed) {
            let step = min(remaining, 50)
            usleep(useconds_t(step * 1000))
            remaining -= step
        }
    }
}

/// Sends a notification through a pooled connection (`pg_notify`, so the channel and the
/// payload are bound parameters).
extension PostgresConnection {
    public func notify(channel: String, payload: String) async throws {
        try await query("SELECT pg_notify(\(channel), \(payload))")
    }
}
