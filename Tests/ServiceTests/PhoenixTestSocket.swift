import Foundation
import NIOCore
import HummingbirdWSClient
import Logging
import Synchronization

/// A Phoenix-channels client for the realtime tests: a real websocket to the service, V1 JSON
/// objects (supabase-py's form) or V2 arrays (realtime-js's) out, every frame in kept in order
/// and read as a V1 object; `next` waits (with a generous ceiling, never timed as a result) for
/// the next frame that matches.
final class PhoenixTestSocket: Sendable {
    let vsn: String
    /// Every frame received as it came (V2 arrays stay arrays here).
    private let raw = Mutex<[String]>([])

    private init(vsn: String) {
        self.vsn = vsn
    }

    private let writer = Mutex<WebSocketOutboundWriter?>(nil)
    private let frames = Mutex<(received: [String], waiter: CheckedContinuation<Void, Never>?, closed: Bool)>(([], nil, false))
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let refs = Mutex(0)
    private let heartbeats = Mutex<Task<Void, Never>?>(nil)
    /// The ref of each topic's last join, sent as `join_ref` with the topic's frames.
    private let joinRefs = Mutex<[String: String]>([:])

    struct Closed: Error {}

    /// Connects to `<base>/realtime/v1/websocket?apikey=<key>&vsn=1.0.0`; with `heartbeat` it
    /// sends Phoenix heartbeats twice a second, as clients do (the server closes silent sockets).
    static func connect(_ base: String, key: String, heartbeat: Bool = true, vsn: String = "1.0.0") async throws -> PhoenixTestSocket {
        let socket = PhoenixTestSocket(vsn: vsn)
        let url = base.replacingOccurrences(of: "http://", with: "ws://") + "/realtime/v1/websocket?apikey=\(key)&vsn=\(vsn)"
        let ready = AsyncStream<Bool>.makeStream()
        socket.task.withLock {
            $0 = Task {
                do {
                    try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 4 << 20), logger: Logger(label: "test-socket")) { inbound, outbound, _ in
                        socket.writer.withLock { $0 = outbound }
                        ready.continuation.yield(true)
                        for try await message in inbound.messages(maxSize: 4 << 20) {
                            guard case .text(let text) = message else { continue }
                            socket.append(text)
                        }
                    }
                } catch {}
                ready.continuation.yield(false)
                socket.markClosed()
            }
        }
        for await connected in ready.stream {
            guard connected else { throw Closed() }
            break
        }
        if heartbeat {
            socket.heartbeats.withLock {
                $0 = Task {
                    while !Task.isCancelled, !socket.isClosed {
                        _ = try? await socket.send("phoenix", "heartbeat", [:])
                        try? await Task.sleep(for: .milliseconds(500))
                    }
                }
            }
        }
        return socket
    }

    private func append(_ frame: String) {
        raw.withLock { $0.append(frame) }
        let waiter = frames.withLock { state in
            state.received.append(frame)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    private func markClosed() {
        let waiter = frames.withLock { state in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    var isClosed: Bool { frames.withLock { $0.closed } }

    /// Every frame received so far.
    var received: [[String: Any]] { Self.parse(frames.withLock { $0.received }) }

    /// The frames as received, text.
    var receivedText: [String] { raw.withLock { $0 } }

    /// V1 objects as they are; V2 arrays `[join_ref, ref, topic, event, payload]` as the object
    /// V1 would carry (with `join_ref`).
    private static func parse(_ texts: [String]) -> [[String: Any]] {
        texts.compactMap { text in
            let value = try? JSONSerialization.jsonObject(with: Data(text.utf8))
            if let object = value as? [String: Any] { return object }
            guard let array = value as? [Any], array.count == 5 else { return nil }
            return ["join_ref": array[0], "ref": array[1], "topic": array[2], "event": array[3], "payload": array[4]]
        }
    }

    func send(_ topic: String, _ event: String, _ payload: [String: Any]) async throws -> String {
        let ref = refs.withLock { $0 += 1; return String($0) }
        let joinRef: String? = event == "phx_join" ? ref : joinRefs.withLock { $0[topic] }
        if event == "phx_join" { joinRefs.withLock { $0[topic] = ref } }
        let frame: Any = vsn == "2.0.0" ? [joinRef ?? NSNull(), ref, topic, event, payload] as [Any]
            : ["topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": joinRef ?? NSNull()] as [String: Any]
        let text = String(decoding: try JSONSerialization.data(withJSONObject: frame), as: UTF8.self)
        guard let writer = writer.withLock({ $0 }) else { throw Closed() }
        try await writer.write(.text(text))
        return ref
    }

    /// A broadcast as realtime-js sends it: a binary "user broadcast push" (V2 kind 3) with a
    /// JSON payload.
    func sendBinaryBroadcast(_ topic: String, event: String, _ payload: [String: Any]) async throws {
        let ref = refs.withLock { $0 += 1; return String($0) }
        let joinRef = joinRefs.withLock { $0[topic] } ?? ""
        let body = Array(try JSONSerialization.data(withJSONObject: payload))
        var bytes: [UInt8] = [3, UInt8(joinRef.utf8.count), UInt8(ref.utf8.count), UInt8(topic.utf8.count), UInt8(event.utf8.count), 0, 1]
        bytes += Array(joinRef.utf8) + Array(ref.utf8) + Array(topic.utf8) + Array(event.utf8) + body
        guard let writer = writer.withLock({ $0 }) else { throw Closed() }
        try await writer.write(.binary(ByteBuffer(bytes: bytes)))
    }

    /// Joins `realtime:<name>` with `config` and returns the reply's payload.
    @discardableResult
    func join(_ name: String, config: [String: Any] = [:], token: String? = nil) async throws -> [String: Any] {
        var payload: [String: Any] = ["config": config]
        if let token { payload["access_token"] = token }
        let ref = try await send("realtime:" + name, "phx_join", payload)
        let reply = try await next { $0["event"] as? String == "phx_reply" && $0["ref"] as? String == ref }
        return reply["payload"] as? [String: Any] ?? [:]
    }

    /// Waits for the first frame (from `from` on) that matches, and returns it; throws `Closed`
    /// when the socket closes first.
    func next(from start: Int = 0, ceiling: Duration = .seconds(30), _ matches: @escaping ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + ceiling
        while true {
            let (texts, closed) = frames.withLock { state in (Array(state.received.dropFirst(start)), state.closed) }
            if let found = Self.parse(texts).first(where: matches) { return found }
            if closed || ContinuousClock.now > deadline { throw Closed() }
            await withCheckedContinuation { continuation in
                let seen = texts.count
                let resumeNow = frames.withLock { state -> Bool in
                    if state.closed || state.received.count - start > seen { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
                Task {
                    try? await Task.sleep(for: .milliseconds(200))
                    let waiter = frames.withLock { state in
                        defer { state.waiter = nil }
                        return state.waiter
                    }
                    waiter?.resume()
                }
            }
        }
    }

    /// Broadcasts received on `realtime:<name>`, in order.
    func broadcasts(_ name: String) -> [[String: Any]] {
        received.filter { $0["topic"] as? String == "realtime:" + name && $0["event"] as? String == "broadcast" }
            .compactMap { $0["payload"] as? [String: Any] }
    }

    /// Waits until the socket closed (the server closed it); false if it did not within the ceiling.
    func waitUntilClosed(ceiling: Duration = .seconds(30)) async -> Bool {
        do {
            _ = try await next(ceiling: ceiling) { _ in false }
        } catch {}
        return isClosed
    }

    func close() async {
        heartbeats.withLock { $0?.cancel() }
        if let writer = writer.withLock({ $0 }) { try? await writer.close(.normalClosure, reason: nil) }
        let task = task.withLock { $0 }
        await task?.value
    }
}
