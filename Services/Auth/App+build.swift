import Foundation
import HTTPClient
import Hummingbird
import ServiceKit

/// Builds the auth service: developer accounts, tokens, API-key checks and tenants' end users.
/// Tests call this same function, so what is tested is what runs.
func buildApplication(_ configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let runtime = ServiceRuntime(configuration: configuration, migrations: try ServiceRuntime.bundledMigrations(in: .module))
    let router = runtime.makeRouter()
    let internalRoutes = runtime.internalRoutes(router)
    // Deregistering a tenant removes its API keys with it (ON DELETE CASCADE).
    TenantRegistryController(registry: runtime.tenantRegistry()).addRoutes(to: internalRoutes)
    APIKeysController(store: APIKeyStore(pool: runtime.pool)).addRoutes(to: internalRoutes)

    let hasher = PasswordHasher()
    // POSTs to provisioning carry an Idempotency-Key, so the client may retry them.
    let client = try CurlHTTPClient(
        configuration: HTTPClientConfiguration(connectTimeout: .seconds(2), requestTimeout: .seconds(10)),
        logger: runtime.logger
    )
    RegistrationController(
        pool: runtime.pool, hasher: hasher, client: client,
        provisioningURL: configuration.serviceURLs[.provisioning] ?? "", serviceToken: configuration.internalToken
    ).addRoutes(to: router)
    let tokenSettings = try TokenSettings(configuration)
    TokenController(
        sessions: SessionStore(pool: runtime.pool, reuseGrace: tokenSettings.refreshReuseGrace),
        keys: SigningKeys(pool: runtime.pool, accessTTL: tokenSettings.accessTokenTTL),
        hasher: hasher, settings: tokenSettings
    ).addRoutes(to: router, internal: internalRoutes)
    return runtime.makeApplication(router: router, services: [
        ShutdownAction { await client.shutdown() },
        ShutdownAction { await hasher.shutdown() },
    ])
}
