import Foundation
import Synchronization
import HTTPClient
import ServiceKit
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One of the platform's real executables, started as a child process on a free port.
///
/// Its output goes to a log file (printed when a test fails through `logTail`); `stop()` sends
/// SIGTERM and waits for the exit status, escalating to SIGKILL only after a deadline.
public final class ServiceProcess: @unchecked Sendable {  // `process` is only touched from the owning test.
    public let name: String
    public let port: Int
    public let logFile: URL
    private let process = Process()

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The folder holding the built executables: `PLATFORM_BIN_DIR`, or the test bundle's own.
    public static var binaryDirectory: URL {
        if let directory = ProcessInfo.processInfo.environment["PLATFORM_BIN_DIR"], !directory.isEmpty {
            return URL(fileURLWithPath: directory)
        }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        // Inside `…/debug/X.xctest/…` on some layouts: climb to the folder holding the .xctest.
        while url.path.contains(".xctest") { url.deleteLastPathComponent() }
        return url
    }

    /// Starts `name` (auth, provisioning, realtime, storage) with the test database and the
    /// given extra environment.
    public init(_ name: String, port: Int? = nil, environment extra: [String: String] = [:]) throws {
        self.name = name
        self.port = try port ?? freePort()
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent("platform-test-logs", isDirectory: true)
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        self.logFile = logs.appendingPathComponent("\(name)-\(self.port)-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)

        var environment = ProcessInfo.processInfo.environment
        environment["PORT"] = String(self.port)
        environment["HOST"] = "127.0.0.1"
        environment["LOG_LEVEL"] = environment["TEST_SERVICE_LOG_LEVEL"] ?? "info"
        environment["INTERNAL_SERVICE_TOKEN"] = TestServices.internalToken
        environment["SIGNING_KEY_ENCRYPTION_KEY"] = TestServices.signingKeyEncryptionKey
        for (key, value) in extra { environment[key] = value }

        let executable = Self.binaryDirectory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw ServiceProcessError(description: "no executable at \(executable.path): run `swift build` first")
        }
        process.executableURL = executable
        process.environment = environment
        let handle = try FileHandle(forWritingTo: logFile)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    deinit {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
    }

    public var isRunning: Bool { process.isRunning }

    /// SIGKILL, as a crash would.
    public func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
    }
    public var pid: Int32 { process.processIdentifier }

    /// Waits until `path` answers `status` (default: `/ready` answers 200).
    public func waitUntil(path: String = "/ready", status: Int = 200, timeout: Duration = .seconds(30)) async throws {
        let client = try TestServices.client()
        let deadline = ContinuousClock.now + timeout
        var last = "no answer"
        while ContinuousClock.now < deadline, !Task.isCancelled {
            guard process.isRunning else {
                await client.shutdown()
                throw ServiceProcessError(description: "\(name) exited with status \(process.terminationStatus):\n\(logTail())")
            }
            do {
                let response = try await client.execute(HTTPClientRequest(url: baseURL + path, timeout: .seconds(3)))
                if response.status == status {
                    await client.shutdown()
                    return
                }
                last = "status \(response.status)"
            } catch {
                last = "\(error)"
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        await client.shutdown()
        throw ServiceProcessError(description: "\(name) did not answer \(status) on \(path) in time (last: \(last)):\n\(logTail())")
    }

    /// Sends SIGTERM and returns at once, as an orchestrator's stop does; `waitForExit` reads
    /// the status.
    public func terminate() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGTERM) }
    }

    /// Sends SIGTERM and returns the exit status (SIGKILL after `timeout`).
    @discardableResult
    public func stop(timeout: Duration = .seconds(30)) async -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        Glibc.kill(process.processIdentifier, SIGTERM)
        return await waitForExit(timeout: timeout)
    }

    /// Waits for the process to exit by itself; SIGKILL after `timeout`.
    public func waitForExit(timeout: Duration) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        return process.terminationStatus
    }

    /// The last lines the service logged.
    public func logTail(lines: Int = 40) -> String {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }
}

public struct ServiceProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

public enum TestServices {
    /// This test run's service token: generated, as every deployment's must be (a service
    /// refuses to start without one).
    public static let internalToken = "test-" + SecureToken.random()
    /// This test run's `SIGNING_KEY_ENCRYPTION_KEY` (auth's signing keys are sealed with it).
    public static let signingKeyEncryptionKey = "test-sealing-" + SecureToken.random()

    /// What every service configuration needs (its secrets), for tests that build one from
    /// scratch; the database is never reached by those.
    public static let requiredEnvironment = [
        "INTERNAL_SERVICE_TOKEN": internalToken,
        "SIGNING_KEY_ENCRYPTION_KEY": signingKeyEncryptionKey,
        "DATABASE_URL": "postgresql://unused@127.0.0.1:1/unused",
    ]

    /// A client for tests: no retries (tests assert exact behaviour), short timeouts.
    public static func client() throws -> CurlHTTPClient {
        try CurlHTTPClient(
            configuration: HTTPClientConfiguration(connectTimeout: .seconds(2), requestTimeout: .seconds(10), retry: .none),
            logger: TestDatabase.logger
        )
    }
}

/// A TCP port nothing listens on right now (bound to port 0, read back, released).
/// A port for a service under test: below the kernel's ephemeral range (32768 and up), so no
/// outgoing connection of the many clients a test run opens can take it between this call and
/// the service's bind; never handed out twice in one run; and free when checked.
public func freePort() throws -> Int {
    for _ in 0..<500 {
        let port = Int.random(in: 10_000..<32_000)
        guard handedOutPorts.withLock({ $0.insert(port).inserted }) else { continue }
        if try canBind(port) { return port }
    }
    throw ServiceProcessError(description: "no free port found")
}

private let handedOutPorts = Mutex<Set<Int>>([])

private func canBind(_ port: Int) throws -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ServiceProcessError(description: "socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return bound == 0
}
