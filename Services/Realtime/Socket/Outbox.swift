import NIOCore
import Synchronization

/// The frames waiting to be written to one socket, bounded in count and bytes.
///
/// Producers (fan-out from any replica, replies) never wait: `send` queues and returns. The
/// socket's writer takes frames one at a time (`next`) and waits on the socket's own
/// backpressure. A client that cannot keep up makes the queue reach its bound; then the queue
/// is dropped and `onOverflow` runs once (the socket closes it with a reason), so memory per
/// socket stays bounded whatever the client does.
final class Outbox: Sendable {
    enum Frame: Sendable, Equatable {
        case text(String)
        /// Close the socket after the frames queued before it.
        case close(code: UInt16, reason: String)
    }

    private struct State {
        var queue = CircularBuffer<Frame>()
        var bytes = 0
        var waiter: CheckedContinuation<Frame?, Never>?
        var finished = false
        var overflowed = false
    }

    let maxFrames: Int
    let maxBytes: Int
    private let state = Mutex(State())
    private let onOverflow: @Sendable (_ frames: Int, _ bytes: Int) -> Void

    init(maxFrames: Int, maxBytes: Int, onOverflow: @escaping @Sendable (_ frames: Int, _ bytes: Int) -> Void) {
        self.maxFrames = maxFrames
        self.maxBytes = maxBytes
        self.onOverflow = onOverflow
    }

    /// Queues a text frame. False when the socket is closing or was over its bound.
    @discardableResult
    func send(_ text: String) -> Bool {
        enqueue(.text(text), size: text.utf8.count)
    }

    /// Closes the socket once the frames already queued are written.
    func close(code: UInt16, reason: String) {
        _ = enqueue(.close(code: code, reason: reason), size: 0, finishing: true)
    }

    /// Treats the socket as over its bound now (traffic held for it elsewhere outgrew the bound).
    func overflow() {
        let tripped: (Int, Int, CheckedContinuation<Frame?, Never>?)? = state.withLock { state in
            guard !state.finished else { return nil }
            return Self.trip(&state)
        }
        if let (frames, bytes, waiter) = tripped {
            waiter?.resume(returning: nil)
            onOverflow(frames, bytes)
        }
    }

    private static func trip(_ state: inout State) -> (Int, Int, CheckedContinuation<Frame?, Never>?) {
        let figures = (state.queue.count, state.bytes, state.waiter)
        state.queue.removeAll()
        state.bytes = 0
        state.finished = true
        state.overflowed = true
        state.waiter = nil
        return figures
    }

    /// Whether the queue overflowed (the socket is being closed for it).
    var overflowed: Bool { state.withLock { $0.overflowed } }

    private func enqueue(_ frame: Frame, size: Int, finishing: Bool = false) -> Bool {
        enum Outcome { case queued, refused, overflow(Int, Int) }
        let (outcome, waiter): (Outcome, CheckedContinuation<Frame?, Never>?) = state.withLock { state in
            guard !state.finished else { return (.refused, nil) }
            if !finishing, state.queue.count >= maxFrames || state.bytes + size > maxBytes {
                let (frames, bytes, waiter) = Self.trip(&state)
                return (.overflow(frames, bytes), waiter)
            }
            if finishing { state.finished = true }
            if let waiter = state.waiter {
                state.waiter = nil
                return (.queued, waiter)
            }
            state.queue.append(frame)
            state.bytes += size
            return (.queued, nil)
        }
        switch outcome {
        case .queued:
            waiter?.resume(returning: frame)
            return true
        case .refused:
            return false
        case .overflow(let frames, let bytes):
            waiter?.resume(returning: nil)
            onOverflow(frames, bytes)
            return false
        }
    }

    /// The next frame to write; nil once the outbox is finished and empty (or overflowed).
    func next() async -> Frame? {
        await withCheckedContinuation { continuation in
            let ready: Frame?? = state.withLock { state in
                if let frame = state.queue.popFirst() {
                    if case .text(let text) = frame { state.bytes -= text.utf8.count }
                    return .some(frame)
                }
                if state.finished { return .some(nil) }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Stops the writer: nothing more is written (the socket ended from the other side).
    func finish() {
        let waiter: CheckedContinuation<Frame?, Never>? = state.withLock { state in
            state.finished = true
            state.queue.removeAll()
            state.bytes = 0
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }
}
