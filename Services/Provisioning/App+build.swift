import Foundation
import HTTPClient
import Hummingbird
import Postgres
import ServiceClients
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
    let tenants = TenantDatabase(pool: runtime.pool, migrations: try TenantDatabase.bundledMigrations(),
                                 grantees: settings.tenantGrantees, logger: runtime.logger)
    let runner = SagaRunner(
        ledger: ledger,
        vault: vault,
        tenants: tenants,
        registrar: ServiceRegistrar(client: client, urls: configuration.serviceURLs, token: configuration.internalToken),
        settings: settings,
        logger: runtime.logger
    )
    // One LISTEN connection: new work for the orchestrator, project events for their watchers.
    let listener = PostgresListener(
        configuration: PostgresConfiguration(connectionString: configuration.databaseURL, applicationName: "provisioning"),
        logger: runtime.logger
    )
    let orchestrator = Orchestrator(
        ledger: ledger,
        runner: runner,
        settings: settings,
        listener: listener,
        doorbell: doorbell,
        readiness: runtime.readiness,
        logger: runtime.logger
    )
    let signals = ProjectSignals(listener: listener)
    // Auth's answers about developers' tokens (JWKS, sessions): short calls of their own.
    let authClient = try CurlHTTPClient(
        configuration: HTTPClientConfiguration(connectTimeout: .seconds(1), requestTimeout: .seconds(3)),
        logger: runtime.logger
    )
    let developers = DeveloperCredentialsClient(http: authClient, authURL: configuration.serviceURLs[.auth] ?? "", serviceToken: configuration.internalToken)
    let authenticator = DeveloperAuthenticator(
        serviceToken: configuration.internalToken, auth: developers,
        jwksTTL: settings.jwksTTL, sessionTTL: settings.sessionCacheTTL, logger: runtime.logger
    )

    // Webhooks: their own client (no retries underneath the dispatcher's own, small answers).
    let webhookSettings = try WebhookSettings(configuration)
    let webhookClient = try CurlHTTPClient(
        configuration: HTTPClientConfiguration(connectTimeout: .seconds(5), requestTimeout: webhookSettings.timeout, retry: .none,
                                               maxResponseBodySize: 64 * 1024),
        logger: runtime.logger
    )
    let webhooks = WebhookStore(pool: runtime.pool)
    let target = WebhookTarget(allowPrivate: webhookSettings.allowPrivateTargets)
    let dispatcher = WebhookDispatcher(store: webhooks, client: webhookClient, target: target, settings: webhookSettings,
                                       pollInterval: settings.pollInterval, listener: listener, readiness: runtime.readiness,
                                       logger: runtime.logger)

    let projects = ProjectStore(pool: runtime.pool, vault: vault)
    let router = buildRouter(runtime, ProvisioningParts(
        projects: projects,
        events: ProjectEventStore(pool: runtime.pool),
        webhooks: webhooks, target: target,
        idempotency: IdempotencyStore(pool: runtime.pool, schema: "provisioning"),
        doorbell: doorbell, signals: signals, authenticator: authenticator, settings: settings
    ))
    // Stopped in reverse: the tenant upgrade ends its tenant in hand and the orchestrator hands
    // its executions back before the clients and the pool go away; open event streams end first.
    let upgrader = TenantUpgrader(store: TenantUpgradeStore(pool: runtime.pool), tenants: tenants, readiness: runtime.readiness,
                                  backoff: settings.backoff, logger: runtime.logger)
    let janitor = KeyRevealJanitor(vault: vault, ttl: settings.keyRevealTTL, readiness: runtime.readiness, logger: runtime.logger)
    let orphans = OrphanReconciler(pool: runtime.pool, store: projects, auth: developers, doorbell: doorbell, grace: settings.orphanGrace,
                                   interval: settings.orphanCheckInterval, readiness: runtime.readiness, logger: runtime.logger)
    return runtime.makeApplication(router: router, services: [
        ShutdownAction { await client.shutdown() }, ShutdownAction { await authClient.shutdown() },
        ShutdownAction { await webhookClient.shutdown() },
        orchestrator, upgrader, janitor, orphans, dispatcher, signals,
    ])
}

/// What provisioning's routes are made of: built once by `buildApplication`.
struct ProvisioningParts: Sendable {
    var projects: ProjectStore
    var events: ProjectEventStore
    var webhooks: WebhookStore
    var target: WebhookTarget
    var idempotency: IdempotencyStore
    var doorbell: Doorbell
    var signals: ProjectSignals
    var authenticator: DeveloperAuthenticator
    var settings: ProvisioningSettings
}

/// The routes of provisioning, from the parts `buildApplication` made: the runtime's standard
/// middleware and operational routes, auth's internal project creation, and the project API
/// for owners (developer tokens) and the operator (service token), which rings the
/// orchestrator's doorbell when there is new work.
func buildRouter(_ runtime: ServiceRuntime, _ parts: ProvisioningParts) -> Router<PlatformRequestContext> {
    let router = runtime.makeRouter()
    let projects = router.group("v1/projects")
    ProjectsController(store: parts.projects, idempotency: parts.idempotency, doorbell: parts.doorbell,
                       authenticator: parts.authenticator, signals: parts.signals, settings: parts.settings)
        .addRoutes(internal: runtime.internalRoutes(router), projects: projects)
    ProjectKeysController(store: parts.projects, idempotency: parts.idempotency, doorbell: parts.doorbell,
                          authenticator: parts.authenticator, settings: parts.settings)
        .addRoutes(to: projects)
    ProjectEventsController(events: parts.events, signals: parts.signals, authenticator: parts.authenticator).addRoutes(to: projects)
    WebhooksController(store: parts.webhooks, authenticator: parts.authenticator, target: parts.target)
        .addRoutes(to: router.group("v1/webhooks"))
    return router
}
