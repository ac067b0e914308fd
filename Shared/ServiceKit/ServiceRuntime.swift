import Contracts
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Postgres
import Resilience
import ServiceLifecycle
import Synchronization

/// The request context every service's routes receive.
public struct PlatformRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address (the direct peer: no proxy header is trusted).
    public let clientAddress: String

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.clientAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// 1 MiB of JSON is plenty for every control-plane body; storage's object uploads stream.
    public var maxUploadSize: Int { 1024 * 1024 }
}

/// What `/ready` reports on.
public final class Readiness: Sendable {
    private let migrated = Atomic<Bool>(false)

    public init() {}

    public var migrationsApplied: Bool { migrated.load(ordering: .acquiring) }
    func markMigrated() { migrated.store(true, ordering: .releasing) }
}

/// What every service is built from: configuration, logger, database pool, metrics and
/// readiness, the standard middleware and operational routes, and the background services
/// (pool, migrations) added to the application so they start before the server and stop
/// after it.
public struct ServiceRuntime: Sendable {
    public let configuration: ServiceConfiguration
    public let logger: Logger
    public let pool: PostgresPool
    public let metrics: PlatformMetrics
    public let readiness: Readiness
    public let migrations: MigrationRunner
    /// The service's OpenAPI document, served at `GET /openapi.json` (nil in tests that build a
    /// bare runtime: the route then answers 404).
    public let apiDocument: APIDocument?
    /// The router's routes, recorded by `makeApplication`, listed at `GET /internal/v1/routes`.
    public let routeTable = RouteTable()

    public init(configuration: ServiceConfiguration, migrations: [Migration], apiDocument: APIDocument? = nil) {
        var logger = Logger(label: "platform.\(configuration.service.rawValue)")
        logger.logLevel = configuration.logLevel
        self.configuration = configuration
        self.logger = logger
        self.pool = PostgresPool(
            configuration: PostgresConfiguration(
                connectionString: configuration.databaseURL,
                applicationName: configuration.service.rawValue,
                maximumConnections: configuration.poolSize,
                acquireTimeout: configuration.acquireTimeout,
                statementTimeout: configuration.statementTimeout,
                connectTimeout: .seconds(2),
                maximumUses: configuration.connectionMaxUses
            ),
            logger: logger
        )
        self.metrics = PlatformMetrics()
        self.readiness = Readiness()
        self.migrations = MigrationRunner(schema: configuration.service.rawValue, migrations: migrations)
        self.apiDocument = apiDocument
    }

    /// Loads a service's bundled `Migrations/NNNN_name.sql` files.
    public static func bundledMigrations(in bundle: Bundle) throws -> [Migration] {
        guard let directory = bundle.url(forResource: "Migrations", withExtension: nil) else {
            throw ConfigurationError(description: "the service's Migrations resource folder is missing from its bundle")
        }
        return try Migration.load(from: directory)
    }

    /// A router with the platform's middleware (request id and access log → metrics → error
    /// shape) and the operational routes `/health`, `/ready`, `/metrics`, `/openapi.json` and
    /// `/internal/v1/routes`.
    public func makeRouter() -> Router<PlatformRequestContext> {
        let router = Router(context: PlatformRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        router.add(middleware: ErrorMiddleware(routes: routeTable))
        addOperationalRoutes(to: router)
        return router
    }

    /// A route group whose routes require the internal service token.
    public func internalRoutes(_ router: Router<PlatformRequestContext>) -> RouterGroup<PlatformRequestContext> {
        router.group("internal").add(middleware: InternalAuthMiddleware(token: configuration.internalToken))
    }

    private func addOperationalRoutes(to router: Router<PlatformRequestContext>) {
        let service = configuration.service.rawValue
        router.get("/health") { _, _ in
            try jsonResponse(HealthStatus(status: "ok", service: service))
        }
        router.get("/ready") { [self] _, context in
            guard readiness.migrationsApplied else {
                throw APIError.serviceUnavailable(code: "not_ready", "Database migrations have not been applied yet.")
            }
            do {
                try await pool.query("SELECT 1")
            } catch {
                context.logger.warning("readiness check: database unreachable", metadata: ["error": "\(error)"])
                throw APIError.serviceUnavailable(code: "not_ready", "The database is unreachable.")
            }
            return try jsonResponse(HealthStatus(status: "ready", service: service, checks: ["database": "ok", "migrations": "applied"]))
        }
        router.get("/metrics") { [self] _, _ in
            let text = metrics.render(pool: pool)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text))
            )
        }
        router.get("/openapi.json") { [self] _, _ in
            guard let apiDocument else { throw APIError.notFound("API document") }
            return Response(
                status: .ok,
                headers: [.contentType: "application/json", .cacheControl: "public, max-age=300"],
                body: .init(byteBuffer: ByteBuffer(bytes: apiDocument.bytes))
            )
        }
        internalRoutes(router).get("/v1/routes") { [self] _, _ in
            try jsonResponse(ServiceRoutes(service: service, routes: routeTable.all))
        }
    }

    /// The application: the server plus the pool and migration services, then `services`
    /// (started after the pool and migrations; stopped after the server, before the pool).
    /// The HTTP/1 channel every service's server uses (a websocket server wraps it), with the
    /// idle (and header-read) timeout `HTTP_IDLE_TIMEOUT_SECONDS`.
    public var http1Configuration: HTTP1Channel.Configuration {
        .init(additionalChannelHandlers: [ExpectContinueHandler()], idleTimeout: TimeAmount(configuration.idleTimeout))
    }

    /// `server`: a server other than plain HTTP/1 (realtime's, which upgrades websockets),
    /// built on `http1Configuration`.
    public func makeApplication(
        router: Router<PlatformRequestContext>,
        server: HTTPServerBuilder? = nil,
        services: [any Service] = [],
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let logger = self.logger
        let configuration = self.configuration
        routeTable.record(router)
        if let apiDocument {
            let (undocumented, unrouted) = apiDocument.differences(from: routeTable.all)
            if !undocumented.isEmpty || !unrouted.isEmpty {
                logger.error("the OpenAPI document and the router disagree", metadata: [
                    "openapi.undocumented_routes": "\(undocumented.map(\.description).joined(separator: ", "))",
                    "openapi.unrouted_operations": "\(unrouted.map(\.description).joined(separator: ", "))",
                ])
            }
        }
        var app = Application(
            router: router,
            server: server ?? .http1(configuration: http1Configuration),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "platform-\(configuration.service.rawValue)",
                // A burst of connections queues in the kernel (up to net.core.somaxconn) instead
                // of being dropped at Hummingbird's default of 256.
                backlog: 2048,
                availableConnectionsDelegate: ConnectionBudget(limit: configuration.maxConnections, metrics: metrics, logger: logger)
            ),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                logger.info("server listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
                await onServerRunning(port)
            },
            logger: logger
        )
        app.addServices(
            PoolService(pool: pool),
            MigrationService(runner: migrations, pool: pool, readiness: readiness, logger: logger)
        )
        app.addServices(services)
        return app
    }
}

/// Runs a clean-up (shut an HTTP client's engine, a hasher's threads, …) once the service
/// stops: started after the pool, stopped after the server.
public struct ShutdownAction: Service {
    let action: @Sendable () async -> Void

    public init(_ action: @escaping @Sendable () async -> Void) {
        self.action = action
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await action()
    }
}

/// Keeps the pool open while the service runs and closes it after the server has stopped.
struct PoolService: Service {
    let pool: PostgresPool

    func run() async throws {
        try? await gracefulShutdown()
        await pool.close()
    }
}

/// Applies the service's migrations at start-up. While the database is unreachable it retries
/// with capped backoff (the server is up meanwhile, and `/ready` answers 503); a migration
/// that fails or whose file changed after it was applied stops the service with the reason.
struct MigrationService: Service {
    let runner: MigrationRunner
    let pool: PostgresPool
    let readiness: Readiness
    let logger: Logger

    func run() async throws {
        do {
            try await migrateUntilDone()
        } catch is CancellationError {
            return  // shut down before the database came back: nothing to report
        }
        try? await gracefulShutdown()
    }

    private func migrateUntilDone() async throws {
        try await cancelWhenGracefulShutdown {
            let backoff = Backoff(base: .milliseconds(200), cap: .seconds(5))
            var failures = 0
            while true {
                do {
                    let report = try await runner.run(on: pool, logger: logger)
                    readiness.markMigrated()
                    logger.info("migrations up to date", metadata: [
                        "db.schema": "\(report.schema)", "migrations.applied": "\(report.applied.count)",
                        "migrations.already_applied": "\(report.alreadyApplied.count)",
                    ])
                    return
                } catch let error as PostgresError where error.kind == .migration {
                    logger.critical("refusing to start: \(error.message)", metadata: ["db.schema": "\(runner.schema)"])
                    throw error
                } catch is CancellationError {
                    return
                } catch {
                    failures += 1
                    let delay = backoff.delay(beforeRetry: failures)
                    logger.warning("database not reachable for migrations; retrying", metadata: [
                        "error": "\(error)", "retry_in": "\(delay)",
                    ])
                    try await Task.sleep(for: delay)
                }
            }
        }
    }
}

/// The entry point every service's `main` calls: reads the configuration (exit 2 with the
/// reason when it is invalid), sets up logging, builds the application and runs it until
/// SIGTERM or SIGINT, then shuts down gracefully within `SHUTDOWN_GRACE_SECONDS`.
public enum ServiceMain {
    public static func run<App: ApplicationProtocol>(
        _ service: ServiceName,
        build: @Sendable (ServiceConfiguration) async throws -> App
    ) async {
        let configuration: ServiceConfiguration
        do {
            configuration = try ServiceConfiguration(service: service)
        } catch {
            StandardErrorWriter.write("\(service.rawValue): invalid configuration: \(error)\n")
            exit(2)
        }
        PlatformLogging.bootstrap(configuration)
        var logger = Logger(label: "platform.\(service.rawValue)")
        logger.logLevel = configuration.logLevel
        do {
            let app = try await build(configuration)
            var groupConfiguration = ServiceGroupConfiguration(
                services: [app],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
            groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGracePeriod
            try await ServiceGroup(configuration: groupConfiguration).run()
            logger.info("stopped")
        } catch {
            logger.critical("service stopped with an error", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
