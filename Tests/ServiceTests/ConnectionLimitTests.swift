import Foundation
import HTTPClient
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Slow clients cannot hold a service: a connection that does not finish a request head within
/// `HTTP_IDLE_TIMEOUT_SECONDS` is closed, and past `HTTP_MAX_CONNECTIONS` the server stops
/// accepting until one closes. Driven over raw sockets that send half a request head and stop
/// (the slowloris pattern).
@Suite("Slow clients cannot hold the server", .serialized)
struct ConnectionLimitTests {
    /// Half a request head: the server waits for the rest.
    static let partialHead = Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n".utf8)

    @Test("1,000 sockets that never finish a request are closed after the idle timeout; /health answers while the server holds them")
    func idleSocketsClosed() async throws {
        try Self.allowOpenFiles(8_192)
        try await withScratchDatabase { url in
            let port = try freePort()
            let auth = try InProcessService("auth", port: port, environment: ["DATABASE_URL": url, "DB_POOL_MAX": "2", "HTTP_IDLE_TIMEOUT_SECONDS": "15"])
            let client = try TestServices.client()
            do {
                try await auth.waitUntilReady()
                // The held sockets time out together; should they all have gone before /health and
                // the gauge were read (a very slow machine), the round proves nothing and is run
                // again, with fresh sockets.
                var provenWhileHeld = false
                for _ in 0..<3 where !provenWhileHeld {
                    let held = try await RawHTTPConnection.offCooperativePool {
                        try (0..<1_000).map { _ in
                            let fd = try RawSocket.connect(port: port)
                            try RawSocket.send(fd, Self.partialHead)
                            return fd
                        }
                    }
                    defer { held.forEach { close($0) } }
                    let health = try await client.execute(HTTPClientRequest(url: auth.baseURL + "/health"))
                    #expect(health.status == 200)
                    let metrics = try PrometheusText(parsing: String(decoding: try await client.execute(HTTPClientRequest(url: auth.baseURL + "/metrics")).body, as: UTF8.self))
                    let open = metrics.value("http_connections", ["state": "open"]) ?? 0
                    // The gauge only falls while no one else connects: at least the 1,000 held
                    // (less the two of ours it also counts) were open when /health answered.
                    provenWhileHeld = open >= 1_000
                    print("connections open when /health had answered: \(open)")
                    try await waitUntil("the server closed all 1,000 idle sockets") {
                        held.allSatisfy { !Self.isOpen($0) }
                    }
                }
                #expect(provenWhileHeld, "/health was never answered while the 1,000 sockets were held")
                #expect(try await client.execute(HTTPClientRequest(url: auth.baseURL + "/health")).status == 200)
            } catch {
                await client.shutdown()
                await auth.stop()
                throw error
            }
            await client.shutdown()
            await auth.stop()
        }
    }

    @Test("past HTTP_MAX_CONNECTIONS a new connection is served only once a held one has closed")
    func connectionLimit() async throws {
        try await withScratchDatabase { url in
            let port = try freePort()
            let auth = try InProcessService("auth", port: port, environment: [
                "DATABASE_URL": url, "DB_POOL_MAX": "2", "HTTP_IDLE_TIMEOUT_SECONDS": "2", "HTTP_MAX_CONNECTIONS": "10",
            ])
            do {
                try await auth.waitUntilReady()
                let (answer, closedFirst) = try await RawHTTPConnection.offCooperativePool { () throws -> (String, Int) in
                    // More than one accept batch over the limit (the server stops reading its
                    // listening socket once it holds the limit, having accepted a few more at most).
                    let held = try (0..<30).map { _ in
                        let fd = try RawSocket.connect(port: port)
                        try RawSocket.send(fd, Self.partialHead)
                        return fd
                    }
                    defer { held.forEach { close($0) } }
                    // The next one waits in the backlog: accepted only when a slot frees, which
                    // only the idle timeout of a held one can do.
                    let eleventh = try RawHTTPConnection(port: port)
                    try eleventh.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    let answer = try eleventh.response().head
                    return (answer, held.filter { !Self.isOpen($0) }.count)
                }
                #expect(answer.hasPrefix("HTTP/1.1 200"))
                #expect(closedFirst >= 1, "a connection past the limit was served while every held one was open")
            } catch {
                await auth.stop()
                throw error
            }
            await auth.stop()
        }
    }

    @Test("realtime closes a connection that never sends a request head (before any websocket upgrade)")
    func realtimeHeadDeadline() async throws {
        try await withScratchDatabase { url in
            let port = try freePort()
            let realtime = try InProcessService("realtime", port: port, environment: ["DATABASE_URL": url, "DB_POOL_MAX": "2", "HTTP_IDLE_TIMEOUT_SECONDS": "1"])
            do {
                try await realtime.waitUntilReady()
                let silent = try RawSocket.connect(port: port)
                let trickling = try RawSocket.connect(port: port)
                defer { close(silent); close(trickling) }
                try RawSocket.send(trickling, Self.partialHead)
                try await waitUntil("realtime closed both sockets") { !Self.isOpen(silent) && !Self.isOpen(trickling) }
            } catch {
                await realtime.stop()
                throw error
            }
            await realtime.stop()
        }
    }

    /// False once the server has closed the socket (or answered on it); never blocks.
    static func isOpen(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
        return count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
    }

    /// Raises this process's open-file limit to `wanted` (within the hard limit): the test holds
    /// both ends of every socket.
    static func allowOpenFiles(_ wanted: Int) throws {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { throw POSIXError(.EPERM) }
        if limit.rlim_cur < rlim_t(wanted) {
            limit.rlim_cur = min(rlim_t(wanted), limit.rlim_max)
            guard setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { throw POSIXError(.EPERM) }
        }
        guard limit.rlim_cur >= rlim_t(wanted) else {
            throw ServiceProcessError(description: "the open-file limit is \(limit.rlim_cur); the test needs \(wanted)")
        }
    }
}
