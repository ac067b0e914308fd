import CCurl
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `curl_global_init` must run exactly once per process before any other libcurl call, and is not
/// thread-safe with respect to other libcurl calls. A global `let` initialiser runs exactly once,
/// atomically, on first access (`swift_once`), and every ``CurlEngine`` reads this before touching
/// libcurl. (`curl_global_cleanup` is deliberately never called: the state lives as long as the
/// process.)
private let curlGlobalInitResult: UInt32 = ccurl_global_init_all().rawValue

/// Drives libcurl's multi interface on one dedicated thread.
///
/// Callers hand ``Transfer``s over through a lock-protected queue and wake the thread with
/// `curl_multi_wakeup`. The thread (see ``EngineLoop``) adds them to the multi handle, runs
/// `curl_multi_perform`, collects finished transfers with `curl_multi_info_read`, resumes their
/// callers, and sleeps in `curl_multi_poll`. libcurl's multi handle owns the connection cache, so
/// connections are kept alive and reused across requests.
final class CurlEngine: Sendable {
    /// The parts of the engine that callers and the engine thread share.
    fileprivate struct SharedState: Sendable {
        enum Lifecycle: Sendable {
            /// Accepting transfers.
            case running
            /// Shutdown requested; the engine thread has not noticed yet.
            case stopping
            /// The engine thread is failing outstanding transfers and freeing libcurl state; the
            /// multi handle must not be touched any more (not even `curl_multi_wakeup`).
            case tearingDown
            /// Everything is released.
            case terminated
        }

        var lifecycle = Lifecycle.running
        /// Transfers handed over but not yet added to the multi handle.
        var submissions: [Transfer] = []
        /// Transfers whose callers were cancelled; the engine removes them from the multi handle.
        var aborts: [Transfer] = []
        /// `shutdown()` callers waiting for `.terminated`.
        var shutdownWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// ``SharedState`` behind its lock, in a class so that callers and the engine thread (which
    /// must not keep the engine itself alive) hold the same lock.
    fileprivate final class Shared: Sendable {
        let state = Mutex(SharedState())
    }

    private let multi: MultiHandle
    private let shared: Shared

    init(maxConnectionsPerHost: Int, logger: Logger) throws(HTTPClientError) {
        guard curlGlobalInitResult == CURLE_OK.rawValue else {
            throw .transport(code: Int(curlGlobalInitResult), message: "curl_global_init failed")
        }
        guard let multi = curl_multi_init() else {
            throw .transport(code: Int(CURLE_FAILED_INIT.rawValue), message: "curl_multi_init failed")
        }
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, max(1, maxConnectionsPerHost))
        // Keep enough idle connections cached to serve a full burst to a handful of hosts.
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(1, maxConnectionsPerHost) * 4)

        self.multi = MultiHandle(raw: multi)
        self.shared = Shared()

        let (handle, shared) = (self.multi, self.shared)
        do {
            try spawnThread(named: "curl-engine") {
                EngineLoop(multi: handle, shared: shared, logger: logger).run()
            }
        } catch {
            curl_multi_cleanup(multi)
            throw error
        }
    }

    deinit {
        // No `execute` can be running (each holds a reference), so this only stops an idle
        // thread whose owner forgot `shutdown()`; it does not wait for it.
        self.requestShutdown()
    }

    /// Runs one attempt. Throws ``HTTPClientError`` or, when the calling task is cancelled,
    /// `CancellationError` (immediately; the engine removes the transfer asynchronously).
    func execute(_ request: PreparedRequest) async throws -> HTTPClientResponse {
        let transfer = Transfer(request)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if transfer.attach(continuation) {
                    self.submit(transfer)
                }
            }
        } onCancel: {
            if transfer.cancel() {
                self.abort(transfer)
            }
        }
    }

    private func submit(_ transfer: Transfer) {
        let accepted = self.shared.state.withLock { state in
            guard case .running = state.lifecycle else { return false }
            self.appendAndWake(&state) { $0.submissions.append(transfer) }
            return true
        }
        if !accepted {
            transfer.finish(.failure(HTTPClientError.shutdown))
        }
    }

    private func abort(_ transfer: Transfer) {
        self.shared.state.withLock { state in
            guard case .running = state.lifecycle else { return }  // teardown removes everything anyway
            self.appendAndWake(&state) { $0.aborts.append(transfer) }
        }
    }

    /// Appends work and wakes the engine thread, unless work was already pending: the engine takes
    /// both queues in one critical section, so a non-empty queue means a wake-up is already on
    /// its way. Must be called with the lock held and the lifecycle `.running`.
    private func appendAndWake(_ state: inout SharedState, _ append: (inout SharedState) -> Void) {
        let idle = state.submissions.isEmpty && state.aborts.isEmpty
        append(&state)
        if idle {
            // Thread-safe by contract; the multi handle is alive: it is only freed after the
            // lifecycle left `.running`/`.stopping` under this same lock.
            _ = curl_multi_wakeup(self.multi.raw)
        }
    }

    /// Asks the engine thread to stop, without waiting.
    func requestShutdown() {
        self.shared.state.withLock { state in
            guard case .running = state.lifecycle else { return }
            state.lifecycle = .stopping
            _ = curl_multi_wakeup(self.multi.raw)
        }
    }

    /// Stops the engine thread, fails every queued and in-flight transfer with
    /// ``HTTPClientError/shutdown``, frees all libcurl state, and returns once that is done.
    /// Idempotent; later `execute` calls fail with ``HTTPClientError/shutdown``.
    func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = self.shared.state.withLock { state in
                switch state.lifecycle {
                case .terminated:
                    return true
                case .running:
                    state.lifecycle = .stopping
                    _ = curl_multi_wakeup(self.multi.raw)
                case .stopping, .tearingDown:
                    break
                }
                state.shutdownWaiters.append(continuation)
                return false
            }
            if done {
                continuation.resume()
            }
        }
    }
}

/// A libcurl multi handle (`CURLM *`).
///
/// `@unchecked Sendable` is safe because the only function called on it from arbitrary threads is
/// `curl_multi_wakeup`, which libcurl documents as callable from any thread (and which
/// ``CurlEngine`` only calls under its lock while the handle is alive). Every other use happens on
/// the engine thread.
struct MultiHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
}

/// One attempt of one request, from hand-off to the resumption of its caller.
///
/// Resumption happens exactly once, by whichever comes first: the engine finishing the transfer,
/// the caller's task being cancelled, or shutdown.
final class Transfer: Sendable {
    private enum State: Sendable {
        /// Created; the caller's continuation is not attached yet.
        case idle
        /// The caller is suspended on `continuation`.
        case waiting(CheckedContinuation<HTTPClientResponse, any Error>)
        /// Cancelled before the continuation was attached.
        case cancelledEarly
        /// The caller has been resumed.
        case finished
    }

    let request: PreparedRequest
    private let state = Mutex(State.idle)

    init(_ request: PreparedRequest) {
        self.request = request
    }

    /// Attaches the caller's continuation. Returns false, having resumed it with
    /// `CancellationError`, when the task was cancelled before.
    func attach(_ continuation: CheckedContinuation<HTTPClientResponse, any Error>) -> Bool {
        let cancelled = self.state.withLock { state in
            switch state {
            case .idle:
                state = .waiting(continuation)
                return false
            case .cancelledEarly:
                state = .finished
                return true
            case .waiting, .finished:
                preconditionFailure("continuation attached twice")
            }
        }
        if cancelled {
            continuation.resume(throwing: CancellationError())
        }
        return !cancelled
    }

    /// Resumes the caller with `CancellationError` if it is waiting. Returns true when the
    /// transfer may be in the engine and must be removed there.
    func cancel() -> Bool {
        let continuation: CheckedContinuation<HTTPClientResponse, any Error>? = self.state.withLock { state in
            switch state {
            case .idle:
                state = .cancelledEarly
                return nil
            case .waiting(let continuation):
                state = .finished
                return continuation
            case .cancelledEarly, .finished:
                return nil
            }
        }
        continuation?.resume(throwing: CancellationError())
        return continuation != nil
    }

    /// Resumes the caller with `result` unless it was resumed already.
    func finish(_ result: Result<HTTPClientResponse, any Error>) {
        let continuation: CheckedContinuation<HTTPClientResponse, any Error>? = self.state.withLock { state in
            guard case .waiting(let continuation) = state else { return nil }
            state = .finished
            return continuation
        }
        continuation?.resume(with: result)
    }

    /// Whether the caller no longer waits (cancelled while queued): the engine skips such transfers.
    var isFinished: Bool {
        self.state.withLock { state in
            if case .waiting = state { return false }
            return true
        }
    }
}

/// The engine thread's state and loop. Not `Sendable`: created on, and used only by, the engine
/// thread.
private final class EngineLoop {
    private struct InFlight {
        let transfer: Transfer
        let easy: EasyHandle
    }

    private let multi: UnsafeMutableRawPointer
    private let shared: CurlEngine.Shared
    private let logger: Logger
    /// In-flight transfers by easy handle (what CURLMSG_DONE reports).
    private var inFlight: [UnsafeMutableRawPointer: InFlight] = [:]
    /// Easy handles by transfer, for aborts.
    private var handleByTransfer: [ObjectIdentifier: UnsafeMutableRawPointer] = [:]
    /// Reset handles ready for reuse.
    private var idleHandles: [EasyHandle] = []
    private static let maxIdleHandles = 32
    /// How long `curl_multi_poll` may sleep. libcurl shortens it to its own next timeout, and
    /// `curl_multi_wakeup` interrupts it, so this only bounds an idle engine's sleep.
    private static let pollTimeoutMilliseconds: Int32 = 10_000

    init(multi: MultiHandle, shared: CurlEngine.Shared, logger: Logger) {
        self.multi = multi.raw
        self.shared = shared
        self.logger = logger
    }

    func run() {
        while true {
            // Take all pending work in one critical section (see `CurlEngine.appendAndWake`).
            let (submissions, aborts, stopping) = self.shared.state.withLock { state in
                let work = (state.submissions, state.aborts)
                state.submissions = []
                state.aborts = []
                guard case .stopping = state.lifecycle else { return (work.0, work.1, false) }
                state.lifecycle = .tearingDown
                return (work.0, work.1, true)
            }
            if stopping {
                self.tearDown(queued: submissions)
                return
            }
            for transfer in submissions {
                self.start(transfer)
            }
            for transfer in aborts {
                self.abort(transfer)
            }

            var running: Int32 = 0
            let performCode = curl_multi_perform(self.multi, &running)
            if performCode != CURLM_OK {
                self.logger.error("curl_multi_perform failed", metadata: ["curl.multi_code": "\(performCode.rawValue)"])
            }
            self.collectFinishedTransfers()

            let pollCode = curl_multi_poll(self.multi, nil, 0, Self.pollTimeoutMilliseconds, nil)
            if pollCode != CURLM_OK {
                self.logger.error("curl_multi_poll failed", metadata: ["curl.multi_code": "\(pollCode.rawValue)"])
                usleep(10_000)  // do not spin if polling keeps failing; this thread is ours to block
            }
        }
    }

    private func start(_ transfer: Transfer) {
        guard !transfer.isFinished else { return }  // cancelled while queued
        guard let easy = self.idleHandles.popLast() ?? EasyHandle() else {
            transfer.finish(.failure(HTTPClientError.transport(code: Int(CURLE_FAILED_INIT.rawValue), message: "curl_easy_init failed")))
            return
        }
        do {
            try easy.configure(for: transfer.request)
        } catch {
            self.recycle(easy)
            transfer.finish(.failure(error))
            return
        }
        let code = curl_multi_add_handle(self.multi, easy.raw)
        guard code == CURLM_OK else {
            self.recycle(easy)
            let message = String(cString: curl_multi_strerror(code))
            transfer.finish(.failure(HTTPClientError.transport(code: Int(code.rawValue), message: message)))
            return
        }
        self.inFlight[easy.raw] = InFlight(transfer: transfer, easy: easy)
        self.handleByTransfer[ObjectIdentifier(transfer)] = easy.raw
    }

    /// Removes a cancelled transfer (its caller was already resumed) if it is still in flight.
    private func abort(_ transfer: Transfer) {
        guard let raw = self.handleByTransfer[ObjectIdentifier(transfer)],
            let entry = self.retire(raw)
        else { return }
        self.recycle(entry.easy)
    }

    private func collectFinishedTransfers() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(self.multi, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE, let raw = message.pointee.easy_handle else { continue }
            // Read everything from the message now: it is invalidated by curl_multi_remove_handle.
            let code = ccurl_msg_result(message)
            guard let entry = self.retire(raw) else { continue }
            let result = entry.easy.result(for: code, url: entry.transfer.request.url)
            self.recycle(entry.easy)
            entry.transfer.finish(result.mapError { $0 as any Error })
        }
    }

    /// Takes an in-flight transfer out of the bookkeeping and the multi handle.
    private func retire(_ raw: UnsafeMutableRawPointer) -> InFlight? {
        guard let entry = self.inFlight.removeValue(forKey: raw) else { return nil }
        self.handleByTransfer[ObjectIdentifier(entry.transfer)] = nil
        curl_multi_remove_handle(self.multi, raw)
        return entry
    }

    /// Resets a handle that is in no multi handle and keeps it for reuse (or lets it be freed).
    private func recycle(_ easy: EasyHandle) {
        guard self.idleHandles.count < Self.maxIdleHandles else { return }  // deinit frees it
        easy.reset()
        self.idleHandles.append(easy)
    }

    private func tearDown(queued: [Transfer]) {
        for transfer in queued {
            transfer.finish(.failure(HTTPClientError.shutdown))
        }
        for raw in Array(self.inFlight.keys) {
            if let entry = self.retire(raw) {
                entry.transfer.finish(.failure(HTTPClientError.shutdown))
            }
        }
        // Easy handles first (they are all out of the multi handle now), then the multi handle,
        // which closes the cached connections.
        self.idleHandles.removeAll()
        curl_multi_cleanup(self.multi)

        let waiters = self.shared.state.withLock { state in
            state.lifecycle = .terminated
            defer { state.shutdownWaiters.removeAll() }
            // Anything submitted between `.tearingDown` and now was refused by `submit`.
            return state.shutdownWaiters
        }
        for waiter in waiters {
            waiter.resume()
        }
    }
}

/// Starts a detached pthread running `body`. A plain pthread rather than a Swift concurrency or
/// NIO thread: the engine blocks in `curl_multi_poll`, which must never happen on a shared pool.
private func spawnThread(named name: String, _ body: @escaping @Sendable () -> Void) throws(HTTPClientError) {
    final class Box: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
    let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()

    #if canImport(Darwin)
    var thread: pthread_t?
    #else
    var thread = pthread_t()
    #endif
    let rc = pthread_create(
        &thread,
        nil,
        { argument in
            #if canImport(Darwin)
            let box = Unmanaged<Box>.fromOpaque(argument).takeRetainedValue()
            #else
            guard let argument else { return nil }
            let box = Unmanaged<Box>.fromOpaque(argument).takeRetainedValue()
            #endif
            _ = ccurl_set_current_thread_name(box.name)
            box.body()
            return nil
        },
        box
    )
    guard rc == 0 else {
        Unmanaged<Box>.fromOpaque(box).release()
        throw .transport(code: Int(CURLE_FAILED_INIT.rawValue), message: "cannot start engine thread (pthread_create: \(rc))")
    }
    #if canImport(Darwin)
    if let thread { pthread_detach(thread) }
    #else
    pthread_detach(thread)
    #endif
}
