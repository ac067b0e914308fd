import Foundation
import HTTPClient
import Hummingbird
import Prometheus
import ServiceClients
import Passwords
import ServiceKit
import TenantKit

/// Builds the auth service: developer accounts, tokens, API-key checks and tenants' end users.
/// Tests call this same function, so what is tested is what runs.
///
/// `now` is auth's wall clock: it stamps access tokens and decides their expiry, the refresh
/// grace window, invite expiry and bans. Tests pass one they can move forward instead of
/// sleeping; record-keeping timestamps (`created_at`, `revoked_at`, …) stay the database's.
public func buildApplication(
    _ configuration: ServiceConfiguration,
    now: @escaping @Sendable () -> Date = { Date() }
) throws -> some ApplicationProtocol {
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

    // Every argon2id verification is counted, so an unknown email's sign-in can be seen to
    // cost what a wrong password's does (one each) without timing either.
    let verifications = runtime.metrics.registry.makeCounter(descriptor: MetricNameDescriptor(
        namespace: "auth", metricName: "password_verifications", unitName: "total",
        helpText: "argon2id password verifications run, against stored and dummy hashes alike"
    ))
    let hasher = PasswordHasher(verificationObserver: { _ in verifications.increment() })
    let passwords = try PasswordPolicy.bundled()
    runtime.logger.info("password policy loaded", metadata: ["passwords.common": "\(passwords.commonPasswords.count)"])
    // POSTs to provisioning carry an Idempotency-Key, so the client may retry them.
    let client = try CurlHTTPClient(
        configuration: HTTPClientConfiguration(connectTimeout: .seconds(2), requestTimeout: .seconds(10)),
        logger: runtime.logger
    )
    let sessions = SessionStore(pool: runtime.pool, reuseGrace: tokenSettings.refreshReuseGrace)
    let developers = DeveloperStore(pool: runtime.pool)
    let issuer = TokenIssuer(sessions: sessions, hasher: hasher, settings: tokenSettings,
                             limits: TokenRateLimits(tokenSettings, proxies: try TrustedProxies(configuration: configuration)), now: now)
    let bearer = BearerAuthenticator(keys: keyring.developers, sessions: sessions, now: now)
    let invites = InviteStore(pool: runtime.pool)
    let mode = configuration.value("REGISTRATION_MODE") ?? "open"
    guard mode == "open" || mode == "invite_only" else {
        throw ConfigurationError(description: "REGISTRATION_MODE must be open or invite_only")
    }
    RegistrationController(
        developers: developers, hasher: hasher,
        projects: ProjectsClient(http: client, provisioningURL: configuration.serviceURLs[.provisioning] ?? "", serviceToken: configuration.internalToken),
        invites: invites, inviteOnly: mode == "invite_only", passwords: passwords, now: now
    ).addRoutes(to: router)
    TokenController(issuer: issuer, accounts: DeveloperAccounts(developers: developers, keys: keyring.developers), authenticator: bearer)
        .addRoutes(to: router, internal: internalRoutes)

    let access = TenantRouteAccess(
        authenticator: TenantAuthenticator(resolver: LocalTenantCredentials(apiKeys: apiKeys, registry: registry, keyring: keyring,
                                                                            sessions: sessions, now: now)),
        registry: registry
    )
    let users = TenantUserStore(pool: runtime.pool)
    TenantSessionsController(access: access, issuer: issuer, users: users, keyring: keyring, hasher: hasher, passwords: passwords)
        .addRoutes(to: router, internal: internalRoutes)
    TenantCurrentUserController(access: access, users: users, hasher: hasher, passwords: passwords).addRoutes(to: router)
    TenantAdminController(access: access, users: users, hasher: hasher, passwords: passwords, now: now).addRoutes(to: router)

    let inviteLifetime = Duration.seconds(3600 * (try configuration.integer("INVITE_TTL_HOURS", default: 72, range: 1...8760)))
    InvitesController(store: invites, authenticator: bearer, lifetime: inviteLifetime, now: now)
        .addRoutes(to: router, internal: internalRoutes)
    return runtime.makeApplication(router: router, services: [
        ShutdownAction { await client.shutdown() },
        ShutdownAction { await hasher.shutdown() },
    ])
}
