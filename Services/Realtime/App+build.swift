import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// Builds the realtime service: per-tenant websockets for broadcast, presence and database changes.
/// Tests call this same function, so what is tested is what runs.
public func buildApplication(_ configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let runtime = ServiceRuntime(configuration: configuration, migrations: try TenantRegistry.migrations(with: ServiceRuntime.bundledMigrations(in: .module)),
                                 apiDocument: try APIDocument.bundled(in: .module))
    let router = runtime.makeRouter()
    // Tenants get the table's default limits when registered; the limits are realtime's own.
    let registry = runtime.tenantRegistry()
    TenantRegistryController(registry: registry).addRoutes(to: runtime.internalRoutes(router))
    // Tenant credentials are checked against auth's answers, cached (ServiceKit).
    let (authenticator, closeClient) = try runtime.remoteTenantAuthenticator()
    TenantLimitsController(registry: registry, authenticator: authenticator, columns: [
        "max_concurrent_users", "max_events_per_second", "max_channels_per_client", "max_joins_per_second",
    ]).addRoutes(to: router)
    return runtime.makeApplication(router: router, services: [closeClient])
}
