import Foundation
import HTTPClient
import Hummingbird
import Postgres
import ServiceKit

/// Builds the provisioning service: projects and the durable saga that provisions them.
/// The executable and the tests call this same function, so what is tested is what runs.
public func buildApplication(_ configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let runtime = ServiceRuntime(configuration: configuration, migrations: try ServiceRuntime.bundledMigrations(in: .module),
                                 apiDocument: try APIDocument.bundled(in: .module))
    let settings = try ProvisioningSettings(configuration)
    // The saga does its own recorded retries, so the client does not retry underneath it.
    let client = try CurlHTTPClient(
        configuration: HTTPClientConfiguration(connectTimeout: .seconds(2), requestTimeout: settings.callTimeout, retry: .none),
        logger: runtime.logger
    )
    let vault = KeyVault(pool: runtime.pool)
    let ledger = ExecutionLedger(pool: runtime.pool)
    let doorbell = Doorbell()
    let tenants = TenantDatabase(pool: runtime.pool, migrations: try TenantDatabase.bundledMigrations(), logger: runtime.logger)
    let runner = SagaRunner(
        ledger: ledger,
        vault: vault,
        tenants: tenants,
        registrar: ServiceRegistrar(client: client, urls: configuration.serviceURLs, token: configuration.internalToken),
        settings: settings,
        logger: runtime.logger
    )
    let orchestrator = Orchestrator(
        ledger: ledger,
        runner: runner,
        settings: settings,
        listener: PostgresListener(
            configuration: PostgresConfiguration(connectionString: configuration.databaseURL, applicationName: "provisioning"),
            logger: runtime.logger
        ),
        doorbell: doorbell,
        readiness: runtime.readiness,
        logger: runtime.logger
    )

    let router = buildRouter(
        runtime,
        projects: ProjectStore(pool: runtime.pool, vault: vault),
        idempotency: IdempotencyStore(pool: runtime.pool, schema: "provisioning"),
        doorbell: doorbell, settings: settings
    )
    // Stopped in reverse: the tenant upgrade ends its tenant in hand and the orchestrator hands
    // its executions back before the client and the pool go away.
    let upgrader = TenantUpgrader(store: TenantUpgradeStore(pool: runtime.pool), tenants: tenants, readiness: runtime.readiness,
                                  backoff: settings.backoff, logger: runtime.logger)
    return runtime.makeApplication(router: router, services: [ShutdownAction { await client.shutdown() }, orchestrator, upgrader])
}

/// The routes of provisioning, from the parts `buildApplication` made: the runtime's standard
/// middleware and operational routes, the internal project creation and the operator API
/// (service token), which rings the orchestrator's doorbell when there is new work.
func buildRouter(
    _ runtime: ServiceRuntime, projects: ProjectStore, idempotency: IdempotencyStore, doorbell: Doorbell, settings: ProvisioningSettings
) -> Router<PlatformRequestContext> {
    let router = runtime.makeRouter()
    let operatorRoutes = router.group("v1/projects").add(middleware: InternalAuthMiddleware(token: runtime.configuration.internalToken))
    ProjectsController(store: projects, idempotency: idempotency, doorbell: doorbell, publicURL: settings.publicURL)
        .addRoutes(internal: runtime.internalRoutes(router), operator: operatorRoutes)
    return router
}
