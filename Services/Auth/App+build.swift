import Foundation
import HTTPClient
import Hummingbird
import ServiceClients
import Passwords
import ServiceKit
import TenantKit

/// Builds the auth service: developer accounts, tokens, API-key checks and tenants' end users.
/// Tests call this same function, so what is tested is what runs.
public func buildApplication(_ configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let runtime = ServiceRuntime(configuration: configuration, migrations: try TenantRegistry.migrations(with: ServiceRuntime.bundledMigrations(in: .module)),
                                 apiDocument: try APIDocument.bundled(in: .module))
    let router = runtime.makeRouter()
    let internalRoutes = runtime.internalRoutes(router)
    let tokenSettings = try TokenSettings(configuration)
    let keyring = SigningKeyring(pool: runtime.pool, accessTTL: tokenSettings.accessTokenTTL)
    // Deregistering a tenant removes its API keys, signing keys and users' sessions with it
    // (ON DELETE CASCADE); the tenant's users go with its schema.
    let registry = runtime.tenantRegistry()
    TenantRegistryController(registry: registry, afterRemove: { id in keyring.forget(id) }).addRoutes(to: internalRoutes)
    let apiKeys = APIKeyStore(pool: runtime.pool)
    APIKeysController(store: apiKeys).addRoutes(to: internalRoutes)

    let hasher = PasswordHasher()
    let passwords = try PasswordPolicy.bundled()
    runtime.logger.info("password policy loaded", metadata: ["passwords.common": "\(passwords.commonPasswords.count)"])
    // POSTs to provisioning carry an Idempotency-Key, so the client may retry them.
    let client = try CurlHTTPClient(
        configuration: HTTPClientConfiguration(connectTimeout: .seconds(2), requestTimeout: .seconds(10)),
        logger: runtime.logger
    )
    let sessions = SessionStore(pool: runtime.pool, reuseGrace: tokenSettings.refreshReuseGrace)
    let keys = keyring.developers
    let limits = TokenRateLimits(tokenSettings, proxies: try TrustedProxies(configuration: configuration))
    let developers = DeveloperStore(pool: runtime.pool)
    let invites = InviteStore(pool: runtime.pool)
    let mode = configuration.value("REGISTRATION_MODE") ?? "open"
    guard mode == "open" || mode == "invite_only" else {
        throw ConfigurationError(description: "REGISTRATION_MODE must be open or invite_only")
    }
    RegistrationController(
        developers: developers, hasher: hasher,
        projects: ProjectsClient(http: client, provisioningURL: configuration.serviceURLs[.provisioning] ?? "", serviceToken: configuration.internalToken),
        invites: invites, inviteOnly: mode == "invite_only", passwords: passwords
    ).addRoutes(to: router)
    TokenController(developers: developers, sessions: sessions, keys: keys, hasher: hasher, settings: tokenSettings, limits: limits)
        .addRoutes(to: router, internal: internalRoutes)
    TenantUsersController(
        users: TenantUserStore(pool: runtime.pool), registry: registry,
        authenticator: TenantAuthenticator(resolver: LocalTenantCredentials(apiKeys: apiKeys, registry: registry, keyring: keyring, sessions: sessions)),
        keyring: keyring, sessions: sessions, hasher: hasher, passwords: passwords, settings: tokenSettings, limits: limits
    ).addRoutes(to: router, internal: internalRoutes)
    let inviteLifetime = Duration.seconds(3600 * (try configuration.integer("INVITE_TTL_HOURS", default: 72, range: 1...8760)))
    InvitesController(store: invites, authenticator: BearerAuthenticator(keys: keys, sessions: sessions), lifetime: inviteLifetime)
        .addRoutes(to: router, internal: internalRoutes)
    return runtime.makeApplication(router: router, services: [
        ShutdownAction { await client.shutdown() },
        ShutdownAction { await hasher.shutdown() },
    ])
}
