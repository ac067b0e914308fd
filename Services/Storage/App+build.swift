import Foundation
import Hummingbird
import ServiceKit

/// Builds the storage service: per-tenant buckets and objects, on local disk by default.
/// Tests call this same function, so what is tested is what runs.
func buildApplication(_ configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let runtime = ServiceRuntime(configuration: configuration, migrations: try ServiceRuntime.bundledMigrations(in: .module))
    let router = runtime.makeRouter()
    return runtime.makeApplication(router: router)
}
