import Foundation
import Hummingbird
import HummingbirdCore
import Postgres
import ServiceKit
import TenantKit

/// Builds the realtime service: the Phoenix-channels websocket of every project (broadcast with
/// replay, presence), broadcasting over HTTP, the tenant registry and each tenant's limits. The
/// executable and the tests call this same function, so what is tested is what runs.
public func buildApplication(_ configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let runtime = ServiceRuntime(configuration: configuration, migrations: try TenantRegistry.migrations(with: ServiceRuntime.bundledMigrations(in: .module)),
                                 apiDocument: try APIDocument.bundled(in: .module))
    let settings = try RealtimeSettings(configuration)
    // Tenants get the table's default limits when registered; the limits are realtime's own.
    let registry = runtime.tenantRegistry()
    // Tenant credentials are checked against auth's answers, cached (TenantKit).
    let (authenticator, closeClient) = try runtime.remoteTenantAuthenticator()
    let broadcasts = BroadcastStore(pool: runtime.pool, retainedMessages: settings.replayMessages, minimumSeconds: settings.replayMinimumSeconds)
    let presence = PresenceStore(pool: runtime.pool)
    let services = RealtimeServices(
        replica: UUID(), settings: settings, hub: ChannelHub(), broadcasts: broadcasts, presence: presence, limiter: RealtimeLimiter(),
        tenants: RealtimeTenants(registry: registry), projects: ProjectResolver(credentials: authenticator.resolver, configuration: configuration),
        credentials: authenticator.resolver, counter: SubscriptionCounter(), metrics: RealtimeMetrics(registry: runtime.metrics.registry),
        logger: runtime.logger
    )
    let relay = RealtimeRelay(
        listener: PostgresListener(configuration: PostgresConfiguration(connectionString: configuration.databaseURL, applicationName: "realtime"),
                                   logger: runtime.logger),
        hub: services.hub, broadcasts: broadcasts, presence: presence,
        changes: ChangeDispatcher(hub: services.hub, tenants: services.tenants, store: ChangeStore(pool: runtime.pool), rowSecurity: RowSecurityCache(),
                                  logger: runtime.logger),
        tenants: services.tenants, logger: runtime.logger
    )
    let sockets = RealtimeSocketController(services: services)
    let router = buildRouter(runtime, registry: registry, authenticator: authenticator, services: services, sockets: sockets)
    let server = WebSocketUpgradeChannel.server(http1: runtime.http1Configuration, maxFrameSize: settings.maxFrameBytes,
                                                shouldUpgrade: sockets.shouldUpgrade)
    return runtime.makeApplication(router: router, server: server, services: [closeClient, relay, RealtimeMaintenance(services: services, census: SocketCensus(pool: runtime.pool), readiness: runtime.readiness)])
}

/// The routes of realtime, from the parts `buildApplication` made: the runtime's standard
/// middleware and operational routes, the internal tenant registry, tenant limits, and the
/// Supabase-protocol routes under `/realtime/v1`.
func buildRouter(_ runtime: ServiceRuntime, registry: TenantRegistry, authenticator: TenantAuthenticator, services: RealtimeServices,
                 sockets: RealtimeSocketController) -> Router<PlatformRequestContext> {
    let router = runtime.makeRouter()
    router.add(middleware: ProtocolErrorMiddleware(RealtimeErrors(), prefix: "/realtime/v1", routes: runtime.routeTable))
    // A removed tenant's sockets end on every replica (its rows go with it, by cascade).
    let pool = runtime.pool
    TenantRegistryController(registry: registry, afterRemove: { id in
        try await pool.withConnection { try await $0.notify(channel: BroadcastStore.notifyChannel, payload: RealtimeNotice.tenantRemoved(id)) }
    }).addRoutes(to: runtime.internalRoutes(router))
    TenantLimitsController(registry: registry, authenticator: authenticator, columns: RealtimeLimits.columns).addRoutes(to: router)
    ChangeTablesController(registry: registry, authenticator: authenticator, store: ChangeStore(pool: runtime.pool)).addRoutes(to: router)
    sockets.addRefusalRoute(to: router)
    BroadcastController(services: services).addRoutes(to: router)
    return router
}
