import Auth
import Foundation
import HTTPClient
import Hummingbird
import Logging
import Provisioning
import Realtime
import ServiceKit
import ServiceLifecycle
import Storage
import Synchronization

/// One of the platform's services built by its library's own `buildApplication` and run inside
/// the test process on a real port: what runs is what ships, without an executable's start-up.
/// Tests whose point is the process boundary (signals, crashes, replicas, start-up) use
/// `ServiceProcess` instead.
public final class InProcessService: @unchecked Sendable {  // `task` is only touched by the owning test.
    public let name: String
    public let port: Int
    private let group: ServiceGroup
    private var task: Task<Void, Never>?
    /// How the service ended (its error, or that it stopped), once it has.
    private let ending = Mutex<String?>(nil)

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Builds `name` (auth, provisioning, realtime, storage) from `environment` (on top of this
    /// process's) and starts it on `port`; auth reads its wall clock from `now`.
    public init(_ name: String, port: Int, environment extra: [String: String],
                now: @escaping @Sendable () -> Date = { Date() }) throws {
        self.name = name
        self.port = port
        var environment = ProcessInfo.processInfo.environment
        environment["PORT"] = String(port)
        environment["HOST"] = "127.0.0.1"
        environment["LOG_LEVEL"] = environment["TEST_SERVICE_LOG_LEVEL"] ?? "warning"
        environment["INTERNAL_SERVICE_TOKEN"] = TestServices.internalToken
        environment["SIGNING_KEY_ENCRYPTION_KEY"] = TestServices.signingKeyEncryptionKey
        for (key, value) in extra { environment[key] = value }
        guard let service = ServiceName(rawValue: name) else {
            throw ServiceProcessError(description: "no service named \(name)")
        }
        let configuration = try ServiceConfiguration(service: service, environment: environment)
        let app: any Service
        switch service {
        case .auth: app = try Auth.buildApplication(configuration, now: now)
        case .provisioning: app = try Provisioning.buildApplication(configuration)
        case .realtime: app = try Realtime.buildApplication(configuration)
        case .storage: app = try Storage.buildApplication(configuration)
        }
        var logger = Logger(label: "test.\(name)")
        logger.logLevel = configuration.logLevel
        group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        task = Task { [group, self] in
            do {
                try await group.run()
                ending.withLock { $0 = "stopped" }
            } catch {
                ending.withLock { $0 = "\(error)" }
            }
        }
    }

    /// Waits until `/ready` answers 200; fails if the service stopped or did not get there.
    public func waitUntilReady(timeout: Duration = .seconds(30)) async throws {
        let client = try TestServices.client()
        defer { Task { await client.shutdown() } }
        let deadline = ContinuousClock.now + timeout
        var last = "no answer"
        while ContinuousClock.now < deadline, !Task.isCancelled {
            if let ending = ending.withLock({ $0 }) {
                throw ServiceProcessError(description: "\(name) stopped: \(ending)")
            }
            do {
                let response = try await client.execute(HTTPClientRequest(url: baseURL + "/ready", timeout: .seconds(3)))
                if response.status == 200 { return }
                last = "status \(response.status)"
            } catch {
                last = "\(error)"
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        throw ServiceProcessError(description: "\(name) did not become ready in time (last: \(last))")
    }

    /// Shuts the service down gracefully (as SIGTERM would) and waits until it has stopped.
    public func stop() async {
        guard let task else { return }
        self.task = nil
        await group.triggerGracefulShutdown()
        await task.value
    }
}
