import Foundation
import Hummingbird
import ServiceKit

/// Builds the realtime service: per-tenant websockets for broadcast, presence and database changes.
/// Tests call this same function, so what is tested is what runs.
func buildApplication(_ configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let runtime = ServiceRuntime(configuration: configuration, migrations: try ServiceRuntime.bundledMigrations(in: .module))
    let router = runtime.makeRouter()
    // Tenants get the table's default limits when registered; the limits are realtime's own.
    TenantRegistryController(registry: runtime.tenantRegistry()).addRoutes(to: runtime.internalRoutes(router))
    return runtime.makeApplication(router: router)
}
