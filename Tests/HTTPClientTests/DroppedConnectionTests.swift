import Foundation
import HTTPClient
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A request sent on a kept-alive connection that then dies unanswered may have been processed,
/// even when libcurl's own retry on a fresh connection finds nobody listening: that is a dropped
/// connection, never "cannot connect" (which promises nothing was sent). Found by the saga's
/// fault campaign: a service killed after committing a registration, before answering, was
/// taken for one the registration never reached, and the saga left it behind.
@Suite("Dropped connections")
struct DroppedConnectionTests {
    @Test("a kept-alive connection closed under a request, with nothing listening any more, is a dropped connection that may have acted")
    func closedUnderRequest() async throws {
        let server = try OneShotServer()
        let thread = Thread { server.serve() }
        thread.start()
        let client = try CurlHTTPClient(configuration: .init(requestTimeout: .seconds(10), retry: .none))
        do {
            let first = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/first"))
            #expect(first.status == 200)
            await #expect {
                _ = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/second"))
            } throws: { error in
                guard let error = error as? HTTPClientError else { return false }
                return !error.requestNeverSent && error.isTransient
            }
            #expect(server.requestsReceived == 2, "the second request reached the server")
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
    }
}

/// A raw HTTP/1.1 server for one connection: it answers the first request (keeping the
/// connection alive), then, on the second, stops listening and closes the connection without
/// an answer, as a process killed mid-request would.
private final class OneShotServer: Sendable {
    let port: Int
    private let listener: Int32
    private let received = Atomic<Int>(0)

    var requestsReceived: Int { received.load(ordering: .acquiring) }

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 1) == 0 else {
            close(listener)
            throw HTTPClientError.invalidURL(reason: "the test server could not listen")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func serve() {
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { return }
        readRequest(connection)
        received.add(1, ordering: .releasing)
        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
        _ = answer.withCString { send(connection, $0, strlen($0), 0) }
        readRequest(connection)
        received.add(1, ordering: .releasing)
        close(listener)  // nobody to reconnect to …
        close(connection)  // … and no answer on this one
    }

    /// Reads until the end of a request's head (the requests here have no body).
    private func readRequest(_ connection: Int32) {
        var seen: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while !seen.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
            let count = recv(connection, &buffer, buffer.count, 0)
            guard count > 0 else { return }
            seen += buffer[0..<count]
        }
    }
}
