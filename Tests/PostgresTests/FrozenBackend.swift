import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL backend process the test holds stopped (SIGSTOP), so that nothing it would
/// send — a terminated backend's FATAL message and end of stream — reaches the client until
/// the test lets it go on (SIGCONT): how a test makes "the backend died after the pool's
/// check" happen every time instead of by luck.
///
/// The server must run on this machine as a user the test may signal, as the throwaway
/// cluster of `deploy/scripts/with-postgres.sh` does (root runs the tests, or the same user
/// runs both).
final class FrozenBackend {
    let pid: Int32
    /// The TCP ports of the backend's connection: the server's and the client's
    /// (`inet_server_port()`, `inet_client_port()`), to find its socket in `/proc/net/tcp`.
    private let serverPort: Int
    private let clientPort: Int
    private var thawed = false

    struct CannotSignal: Error, CustomStringConvertible {
        var description: String
    }

    /// Stops the backend and returns once the kernel reports it stopped.
    init(pid: Int32, serverPort: Int, clientPort: Int) async throws {
        self.pid = pid
        self.serverPort = serverPort
        self.clientPort = clientPort
        guard kill(pid, SIGSTOP) == 0 else {
            throw CannotSignal(description: "cannot stop backend \(pid) (errno \(errno)): the tests must run on the database's machine, as root or as its user")
        }
        let stopped = await eventually { Self.state(of: pid) == "T" }
        try #require(stopped, "backend \(pid) did not stop")
    }

    /// Lets the backend go on (once; later calls do nothing).
    func thaw() {
        guard !thawed else { return }
        thawed = true
        kill(pid, SIGCONT)
    }

    /// Bytes the client sent on the backend's connection that the stopped backend has not
    /// read: the receive queue of the server's end of the socket.
    func unreadBytes() -> Int {
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            for line in Self.contents(of: table).split(separator: "\n").dropFirst() {
                // sl local_address rem_address st tx_queue:rx_queue …, addresses as HEXADDR:HEXPORT
                let fields = line.split(separator: " ")
                guard fields.count > 4, Self.port(fields[1]) == serverPort, Self.port(fields[2]) == clientPort,
                      let queue = fields[4].split(separator: ":").last, let unread = Int(queue, radix: 16)
                else { continue }
                return unread
            }
        }
        return 0
    }

    private static func port(_ address: Substring) -> Int? {
        address.split(separator: ":").last.flatMap { Int($0, radix: 16) }
    }

    /// The process state letter in `/proc/<pid>/stat` ("T" when stopped).
    private static func state(of pid: Int32) -> Character? {
        let stat = contents(of: "/proc/\(pid)/stat")
        guard let end = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: end)...].first { $0 != " " }
    }

    /// A `/proc` file's text, read to its end: they report a size of 0, and
    /// `String(contentsOfFile:)` stops after the first page of a longer one.
    private static func contents(of path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }

    deinit {
        thaw()
    }
}
