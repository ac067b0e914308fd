import Foundation
import Hummingbird
import ServiceKit

/// Builds the realtime service: per-tenant websockets for broadcast, presence and database changes.
/// Tests call this same function, so what is tested is what runs.
func buildApplication(_ configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let runtime = ServiceRuntime(configuration: configuration, migrations: try ServiceRuntime.bundledMigrations(in: .module))
    let router = runtime.makeRouter()
    return runtime.makeApplication(router: router)
}
