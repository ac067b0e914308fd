import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A plain TCP connection to a service on 127.0.0.1, for what an HTTP client will not do: cut a
/// body short, wait for `100 Continue`, hang up mid-request. Blocking: call it off Swift's
/// cooperative threads when it reads.
enum RawSocket {
    /// A connected socket; reads fail after `readTimeout` seconds rather than hang a test.
    static func connect(port: Int, readTimeout: Int = 60) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var timeout = timeval(tv_sec: readTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
        return fd
    }

    /// Writes every byte.
    static func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw POSIXError(.EPIPE) }
            offset += written
        }
    }
}

/// A blocking HTTP/1.1 exchange on a socket, off Swift's cooperative threads.
final class RawHTTPConnection: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = try RawSocket.connect(port: port)
    }

    deinit { close(fd) }

    func send(_ text: String) throws {
        try RawSocket.send(fd, Array(text.utf8))
    }

    /// The next response head (status line and headers), and the body when it has a
    /// `Content-Length`.
    func response() throws -> (head: String, body: String) {
        var buffer: [UInt8] = []
        func fill() throws {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else { throw POSIXError(count == 0 ? .ECONNRESET : .ETIMEDOUT) }
            buffer += chunk[..<count]
        }
        while buffer.count < 4 || !String(decoding: buffer, as: UTF8.self).contains("\r\n\r\n") { try fill() }
        let text = String(decoding: buffer, as: UTF8.self)
        let end = text.range(of: "\r\n\r\n")!
        let head = String(text[..<end.lowerBound])
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        var body = Array(text[end.upperBound...].utf8)
        while body.count < length {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else { throw POSIXError(.ETIMEDOUT) }
            body += chunk[..<count]
        }
        return (head, String(decoding: body, as: UTF8.self))
    }

    static func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }
}
