import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// Builds the realtime service: per-tenant websockets for broadcast, presence and database
/// changes (today: the tenant registry and each tenant's limits). The executable and the tests
/// call this same function, so what is tested is what runs.
public func buildApplication(_ configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let runtime = ServiceRuntime(configuration: configuration, migrations: try TenantRegistry.migrations(with: ServiceRuntime.bundledMigrations(in: .module)),
                                 apiDocument: try APIDocument.bundled(in: .module))
    // Tenants get the table's default limits when registered; the limits are realtime's own.
    let registry = runtime.tenantRegistry()
    // Tenant credentials are checked against auth's answers, cached (TenantKit).
    let (authenticator, closeClient) = try runtime.remoteTenantAuthenticator()
    let router = buildRouter(runtime, registry: registry, authenticator: authenticator)
    return runtime.makeApplication(router: router, services: [closeClient])
}

/// The routes of realtime, from the parts `buildApplication` made: the runtime's standard
/// middleware and operational routes, the internal tenant registry, and the tenant routes.
func buildRouter(_ runtime: ServiceRuntime, registry: TenantRegistry, authenticator: TenantAuthenticator) -> Router<PlatformRequestContext> {
    let router = runtime.makeRouter()
    TenantRegistryController(registry: registry).addRoutes(to: runtime.internalRoutes(router))
    TenantLimitsController(registry: registry, authenticator: authenticator, columns: [
        "max_concurrent_users", "max_events_per_second", "max_channels_per_client", "max_joins_per_second",
    ]).addRoutes(to: router)
    return router
}
