import Contracts
import Foundation
import HTTPClient

/// All four services on one scratch database, each connected as its own role (as a deployment
/// is: `ServiceDatabaseRoles`), wired to each other, with the provisioning saga's timings
/// shortened for tests. By default each runs inside the test process, built by its
/// library's `buildApplication` (`InProcessService`); `.processes` starts the real executables
/// instead, for tests whose point is the process boundary (SIGKILL, replicas).
public final class TestPlatform: @unchecked Sendable {  // used by one test at a time
    /// How the services run.
    public enum Runner: Sendable {
        case inProcess
        case processes
    }

    public let databaseURL: String
    public let storageRoot: URL
    public let runner: Runner
    /// The services started as executables (`.processes`).
    public private(set) var processes: [String: ServiceProcess] = [:]
    /// The services running in this process (`.inProcess`).
    private var inProcess: [String: InProcessService] = [:]
    private let ports: [String: Int]
    private let environment: [String: String]
    /// Each service's own database URL (its role on the scratch database).
    private let databaseURLs: [String: String]
    public let client: CurlHTTPClient
    /// Auth's wall clock when it runs in this process (`advanceClock`).
    private let clock = TestClock()

    public static let names = ["auth", "provisioning", "realtime", "storage"]

    public init(databaseURL: String, runner: Runner = .inProcess, provisioning extra: [String: String] = [:]) throws {
        self.databaseURL = databaseURL
        self.runner = runner
        storageRoot = FileManager.default.temporaryDirectory.appendingPathComponent(TestDatabase.uniqueName("storage"))
        var ports: [String: Int] = [:]
        for name in Self.names { ports[name] = try freePort() }
        self.ports = ports
        var environment = [
            "STORAGE_ROOT": storageRoot.path,
            "PROVISIONING_LEASE_SECONDS": "3",
            "PROVISIONING_STEP_MAX_ATTEMPTS": "4",
            "PROVISIONING_RETRY_BASE_MS": "50",
            "PROVISIONING_RETRY_MAX_MS": "300",
            "PROVISIONING_POLL_MS": "200",
            // Projects are also addressed as <slug>.platform.test (GoTrueTests sends such a Host).
            "PLATFORM_DOMAIN": "platform.test",
            // Many platforms run at once (test suites run in parallel), all on one PostgreSQL: a
            // few connections per service each keeps them well inside its max_connections.
            "DB_POOL_MAX": "5",
        ]
        for name in Self.names { environment[name.uppercased() + "_URL"] = "http://127.0.0.1:\(ports[name] ?? 0)" }
        // Provisioning's tenant migrations grant auth's and realtime's roles what they use.
        environment["AUTH_DATABASE_ROLE"] = ServiceDatabaseRoles.role("auth")
        environment["REALTIME_DATABASE_ROLE"] = ServiceDatabaseRoles.role("realtime")
        for (key, value) in extra { environment[key] = value }
        self.environment = environment
        var databaseURLs: [String: String] = [:]
        for name in Self.names { databaseURLs[name] = try ServiceDatabaseRoles.url(name, database: databaseURL) }
        self.databaseURLs = databaseURLs
        client = try TestServices.client()
    }

    public func url(_ name: String) -> String { "http://127.0.0.1:\(ports[name] ?? 0)" }

    /// The database URL the named service connects with: its own role.
    public func databaseURL(for name: String) -> String { databaseURLs[name] ?? databaseURL }

    /// The environment a service of this platform runs with, on `port`.
    public func environment(for name: String, port: Int) -> [String: String] {
        var environment = self.environment
        environment["PORT"] = String(port)
        environment["DATABASE_URL"] = environment["DATABASE_URL"] ?? databaseURL(for: name)
        return environment
    }

    /// Starts the named services (all by default) and waits until each is ready.
    /// `overrides` change the platform's environment for this start only (a restarted service
    /// with other settings).
    public func start(_ names: [String] = TestPlatform.names, overrides: [String: String] = [:]) async throws {
        for name in names {
            let port = ports[name] ?? 0
            let environment = self.environment(for: name, port: port).merging(overrides) { _, override in override }
            switch runner {
            case .inProcess: inProcess[name] = try InProcessService(name, port: port, environment: environment, now: clock.now)
            case .processes: processes[name] = try ServiceProcess(name, port: port, environment: environment)
            }
        }
        for name in names {
            try await inProcess[name]?.waitUntilReady()
            try await processes[name]?.waitUntil()
        }
    }

    /// Moves auth's wall clock forward (token, refresh-grace, invite and ban expiry), so a test
    /// steps past an expiry instead of sleeping. In-process auth only: a process keeps the
    /// system clock.
    public func advanceClock(by duration: Duration) throws {
        guard runner == .inProcess else { throw ServiceProcessError(description: "advanceClock needs an in-process platform") }
        clock.advance(by: duration)
    }

    /// Stops one service gracefully (SIGTERM, or its in-process equivalent).
    public func stop(_ name: String) async {
        await inProcess.removeValue(forKey: name)?.stop()
        await processes.removeValue(forKey: name)?.stop()
    }

    /// Kills one service's process with SIGKILL, as a crash would (`.processes` only: a crash
    /// cannot be had inside the test process).
    public func kill(_ name: String) async throws {
        guard runner == .processes else { throw ServiceProcessError(description: "kill needs a platform of processes") }
        guard let service = processes.removeValue(forKey: name) else { return }
        service.kill()
        _ = await service.waitForExit(timeout: .seconds(10))
    }

    /// The last lines a service process logged (in-process services log to the test's output).
    public func logTail(_ name: String) -> String {
        processes[name]?.logTail() ?? ""
    }

    /// Stops everything and removes the storage directory.
    public func shutdown() async {
        for name in Self.names { await stop(name) }
        await client.shutdown()
        try? FileManager.default.removeItem(at: storageRoot)
    }

    /// The service token header for internal and operator calls.
    public var tokenHeaders: HTTPClientHeaders {
        HTTPClientHeaders([(PlatformHeader.serviceToken, TestServices.internalToken)])
    }

    /// Creates a project the way auth does; returns the raw response.
    public func createProject(owner: UUID = UUID(), name: String, slug: String, idempotencyKey: String? = nil) async throws -> HTTPClientResponse {
        var headers = tokenHeaders
        headers.add(name: "Content-Type", value: "application/json")
        if let idempotencyKey { headers.add(name: PlatformHeader.idempotencyKey, value: idempotencyKey) }
        let body = try JSONEncoder().encode(CreateProjectRequest(ownerId: owner, name: name, slug: slug))
        return try await client.execute(HTTPClientRequest(method: .post, url: url("provisioning") + "/internal/v1/projects", headers: headers, body: Array(body)))
    }

    /// `GET /v1/projects/{id}`.
    public func project(_ id: UUID) async throws -> HTTPClientResponse {
        try await client.execute(HTTPClientRequest(url: url("provisioning") + "/v1/projects/" + id.uuidString.lowercased(), headers: tokenHeaders))
    }

    /// `GET /v1/projects/{id}/api-keys` as the operator (the first answer after ready reveals them).
    public func apiKeys(_ id: UUID) async throws -> HTTPClientResponse {
        try await client.execute(HTTPClientRequest(url: url("provisioning") + "/v1/projects/" + id.uuidString.lowercased() + "/api-keys",
                                                   headers: tokenHeaders))
    }

    /// Polls the project until its status is one of `states`; returns the last status read.
    public func waitForProject(_ id: UUID, in states: Set<ProjectState>, timeout: Duration = .seconds(60)) async throws -> ProjectStatus {
        let deadline = ContinuousClock.now + timeout
        var last: ProjectStatus?
        while ContinuousClock.now < deadline {
            let response = try await project(id)
            if response.status == 200 {
                let status = try response.decode(ProjectStatus.self)
                last = status
                if states.contains(status.status) { return status }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServiceProcessError(description: "project \(id) did not reach \(states) (last: \(String(describing: last?.status)), workflow: \(String(describing: last?.workflow)))\n\(logTail("provisioning"))")
    }
}

/// Runs `body` with all four services up (in this process by default) on a scratch database,
/// each as its own role, and stops them afterwards whatever happens. `body` gets the scratch
/// database's superuser URL: the test looks at everything as an operator would.
public func withTestPlatform(
    _ runner: TestPlatform.Runner = .inProcess,
    provisioning extra: [String: String] = [:],
    _ body: (TestPlatform, String) async throws -> Void
) async throws {
    try await withScratchDatabase { url in
        try await ServiceDatabaseRoles.prepare(database: url)
        let platform = try TestPlatform(databaseURL: url, runner: runner, provisioning: extra)
        do {
            try await platform.start()
            try await body(platform, try TestDatabase.adminURL(for: url))
        } catch {
            await platform.shutdown()
            throw error
        }
        await platform.shutdown()
    }
}

/// A project provisioned to `ready`, with its API keys (readable only in the first answer of
/// `GET /v1/projects/{id}/api-keys`).
public struct ProvisionedTenant: Sendable {
    public var id: UUID
    public var slug: String
    public var keys: TenantAPIKeys
}

/// A tenant's two readable API keys.
public struct TenantAPIKeys: Sendable, Equatable {
    public var publishable: String
    public var secret: String

    public init(publishable: String, secret: String) {
        self.publishable = publishable
        self.secret = secret
    }
}

extension TestPlatform {
    /// Creates a project and waits until it is a ready tenant; fails the test otherwise.
    public func provisionTenant(_ prefix: String = "tn") async throws -> ProvisionedTenant {
        let slug = TestDatabase.uniqueName(prefix)
        let response = try await createProject(name: "Tenant " + slug, slug: slug)
        guard response.status == 202 else { throw ServiceProcessError(description: "project not accepted: \(response)") }
        let accepted = try response.decode(ProjectAccepted.self)
        let ready = try await waitForProject(accepted.projectId, in: [.ready, .failed])
        let keys = try await apiKeys(accepted.projectId).decode(ProjectAPIKeys.self)
        guard ready.status == .ready, let publishable = keys.key(.publishable), let secret = keys.key(.secret) else {
            throw ServiceProcessError(description: "project \(slug) ended \(ready.status) without keys")
        }
        return ProvisionedTenant(id: accepted.projectId, slug: slug, keys: TenantAPIKeys(publishable: publishable, secret: secret))
    }

    /// A request to a tenant route of `service`, with an `apikey` and/or a bearer token and an
    /// optional JSON body.
    public func tenantCall(
        _ method: HTTPMethod = .get, _ service: String = "auth", _ path: String,
        apikey: String? = nil, bearer: String? = nil, json: (any Encodable & Sendable)? = nil
    ) async throws -> HTTPClientResponse {
        var headers = HTTPClientHeaders()
        if let apikey { headers.add(name: PlatformHeader.apiKey, value: apikey) }
        if let bearer { headers.add(name: "Authorization", value: "Bearer " + bearer) }
        var body: [UInt8]?
        if let json {
            headers.add(name: "Content-Type", value: "application/json")
            body = Array(try JSONEncoder().encode(json))
        }
        return try await client.execute(HTTPClientRequest(method: method, url: url(service) + path, headers: headers, body: body))
    }
}

/// A developer registered through auth (`POST /v1/register`) and signed in (`POST /v1/token`).
public struct SignedInDeveloper: Sendable {
    public var id: UUID
    public var email: String
    public var accessToken: String
    /// The project registration created.
    public var firstProject: UUID
}

extension TestPlatform {
    /// Registers a developer with a first project (`slug`) and signs them in.
    public func registerDeveloper(_ prefix: String = "dev", slug: String? = nil) async throws -> SignedInDeveloper {
        let email = TestDatabase.uniqueName(prefix) + "@example.test"
        let password = "correct horse battery staple"
        let register = try JSONEncoder().encode(RegisterRequest(email: email, password: password, projectName: "First " + prefix,
                                                                slug: slug ?? TestDatabase.uniqueName(prefix)))
        let json = HTTPClientHeaders([("Content-Type", "application/json")])
        let registered = try await client.execute(HTTPClientRequest(method: .post, url: url("auth") + "/v1/register", headers: json, body: Array(register)))
        guard registered.status == 202 else { throw ServiceProcessError(description: "registration refused: \(registered)") }
        let accepted = try registered.decode(ProjectAccepted.self)
        let grant = try JSONEncoder().encode(PasswordGrant(email: email, password: password))
        let signedIn = try await client.execute(HTTPClientRequest(method: .post, url: url("auth") + "/v1/token?grant_type=password",
                                                                  headers: json, body: Array(grant)))
        guard signedIn.status == 200 else { throw ServiceProcessError(description: "sign-in refused: \(signedIn)") }
        let tokens = try signedIn.decode(TokenResponse.self)
        return SignedInDeveloper(id: tokens.user.id, email: email, accessToken: tokens.accessToken, firstProject: accepted.projectId)
    }

    /// A call to provisioning's project API with a developer's access token (or none), and an
    /// optional JSON body and extra headers.
    public func projectsCall(
        _ method: HTTPMethod = .get, _ path: String, token: String?, json: (any Encodable & Sendable)? = nil,
        headers extra: [(String, String)] = [], timeout: Duration? = nil
    ) async throws -> HTTPClientResponse {
        var headers = HTTPClientHeaders(extra)
        if let token { headers.add(name: "Authorization", value: "Bearer " + token) }
        var body: [UInt8]?
        if let json {
            headers.add(name: "Content-Type", value: "application/json")
            body = Array(try JSONEncoder().encode(json))
        }
        return try await client.execute(HTTPClientRequest(method: method, url: url("provisioning") + path, headers: headers, body: body,
                                                          timeout: timeout))
    }
}

extension TestDatabase {
    /// A whole-database dump (`pg_dump`, as the superuser: every schema, every row) of the
    /// database `url` names, as text.
    public static func dump(_ url: String) throws -> String {
        let binary = ProcessInfo.processInfo.environment["PLATFORM_PG_BIN"].map { $0 + "/pg_dump" } ?? "/usr/bin/pg_dump"
        let (status, output) = try runCommand(URL(fileURLWithPath: binary), ["--no-owner", "--dbname", try adminURL(for: url)])
        guard status == 0 else { throw ServiceProcessError(description: "pg_dump exited \(status)") }
        return String(decoding: output, as: UTF8.self)
    }
}

/// Runs a command to its end; its exit status and standard output (standard error is dropped).
public func runCommand(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: Data) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if let environment { process.environment = environment }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, data)
}
