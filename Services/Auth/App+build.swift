import Foundation
import HTTPClient
import Hummingbird
import Passwords
import Prometheus
import ServiceClients
import ServiceKit
import TenantKit

/// Builds the auth service: developer accounts, tokens, API-key checks and tenants' end users.
/// The executable and the tests call this same function, so what is tested is what runs.
///
/// `now` is auth's wall clock: it stamps access tokens and decides their expiry, sessions'
/// timebox and inactivity timeout, refresh tokens' expiry and grace window, invite expiry and
/// bans. Tests pass one they can move forward instead of sleeping; record-keeping timestamps
/// (`created_at`, `revoked_at`, …) stay the database's.
public func buildApplication(
    _ configuration: ServiceConfiguration,
    now: @escaping @Sendable () -> Date = { Date() }
) throws -> some ApplicationProtocol {
    let runtime = ServiceRuntime(configuration: configuration, migrations: try TenantRegistry.migrations(with: ServiceRuntime.bundledMigrations(in: .module)),
                                 apiDocument: try APIDocument.bundled(in: .module))
    let tokenSettings = try TokenSettings(configuration)
    // Loads of the signing keys from the database: a flood of tokens naming made-up key ids
    // must not move this faster than once a second per owner.
    let keyLoads = runtime.metrics.registry.makeCounter(descriptor: MetricNameDescriptor(
        namespace: "auth", metricName: "signing_key_loads", unitName: "total",
        helpText: "loads of the signing keys from the database"
    ))
    let keyring = SigningKeyring(pool: runtime.pool, accessTTL: tokenSettings.accessTokenTTL,
                                 cipher: try SigningKeyCipher(configuration: configuration), onLoad: { keyLoads.increment() })
    let registry = runtime.tenantRegistry()
    let apiKeys = APIKeyStore(pool: runtime.pool)

    // Every argon2id verification is counted, so an unknown email's sign-in can be seen to
    // cost what a wrong password's does (one each) without timing either.
    let verifications = runtime.metrics.registry.makeCounter(descriptor: MetricNameDescriptor(
        namespace: "auth", metricName: "password_verifications", unitName: "total",
        helpText: "argon2id password verifications run, against stored and dummy hashes alike"
    ))
    let threads = ProcessInfo.processInfo.activeProcessorCount
    let argon2 = PasswordHasher(threads: threads, verificationObserver: { _ in verifications.increment() })
    // Jobs refused by the bounded queue (503 busy), by lane.
    let refusedNewAccount = runtime.metrics.registry.makeCounter(descriptor: MetricNameDescriptor(
        namespace: "auth", metricName: "password_jobs_refused", unitName: "total", helpText: "argon2id jobs refused because the queue was full"
    ), labels: [("lane", "new_account")])
    let refusedAccount = runtime.metrics.registry.makeCounter(descriptor: MetricNameDescriptor(
        namespace: "auth", metricName: "password_jobs_refused", unitName: "total", helpText: "argon2id jobs refused because the queue was full"
    ), labels: [("lane", "account")])
    let hasher = try HashingQueue(hasher: argon2, threads: threads, configuration: configuration) { lane in
        (lane == .newAccount ? refusedNewAccount : refusedAccount).increment()
    }
    let passwords = try PasswordPolicy.bundled()
    runtime.logger.info("password policy loaded", metadata: ["passwords.common": "\(passwords.commonPasswords.count)"])
    // POSTs to provisioning carry an Idempotency-Key, so the client may retry them.
    let client = try CurlHTTPClient(
        configuration: HTTPClientConfiguration(connectTimeout: .seconds(2), requestTimeout: .seconds(10)),
        logger: runtime.logger
    )
    let sessions = SessionStore(pool: runtime.pool, limits: tokenSettings.sessionLimits)
    let mode = configuration.value("REGISTRATION_MODE") ?? "open"
    guard mode == "open" || mode == "invite_only" else {
        throw ConfigurationError(description: "REGISTRATION_MODE must be open or invite_only")
    }
    let tenantLimits = try TenantLimits(configuration)
    let parts = AuthParts(
        registry: registry,
        keyring: keyring,
        apiKeys: apiKeys,
        sessions: sessions,
        developers: DeveloperStore(pool: runtime.pool),
        users: TenantUserStore(pool: runtime.pool, budget: tenantLimits.connections),
        tenantLimits: tenantLimits,
        invites: InviteStore(pool: runtime.pool),
        hasher: hasher,
        registrationsPerAddress: RateLimiter(
            limit: try configuration.integer("REGISTRATION_RATE_LIMIT_PER_IP", default: 20, range: 1...1_000_000), per: .seconds(3600)),
        registrationsGlobal: RateLimiter(
            limit: try configuration.integer("REGISTRATION_RATE_LIMIT_GLOBAL", default: 60, range: 1...1_000_000), per: .seconds(60)),
        passwords: passwords,
        issuer: TokenIssuer(sessions: sessions, hasher: hasher, settings: tokenSettings,
                            limits: TokenRateLimits(tokenSettings, proxies: try TrustedProxies(configuration: configuration)), now: now),
        projects: ProjectsClient(http: client, provisioningURL: configuration.serviceURLs[.provisioning] ?? "", serviceToken: configuration.internalToken),
        inviteOnly: mode == "invite_only",
        inviteLifetime: .seconds(3600 * (try configuration.integer("INVITE_TTL_HOURS", default: 72, range: 1...8760))),
        now: now
    )
    let janitor = SessionJanitor(sessions: sessions, interval: tokenSettings.sessionPurgeInterval, readiness: runtime.readiness,
                                 now: now, logger: runtime.logger)
    return runtime.makeApplication(router: buildRouter(runtime, parts), services: [
        ShutdownAction { await client.shutdown() },
        ShutdownAction { await argon2.shutdown() },
        janitor,
    ])
}

/// What auth is made of: built once by `buildApplication`, wired into routes by `buildRouter`.
struct AuthParts: Sendable {
    var registry: TenantRegistry
    var keyring: SigningKeyring
    var apiKeys: APIKeyStore
    var sessions: SessionStore
    var developers: DeveloperStore
    var users: TenantUserStore
    var tenantLimits: TenantLimits
    var invites: InviteStore
    var hasher: HashingQueue
    /// `REGISTRATION_RATE_LIMIT_PER_IP` (per hour).
    var registrationsPerAddress: RateLimiter
    /// `REGISTRATION_RATE_LIMIT_GLOBAL` (per minute, from everyone).
    var registrationsGlobal: RateLimiter
    var passwords: PasswordPolicy
    var issuer: TokenIssuer
    var projects: ProjectsClient
    var inviteOnly: Bool
    var inviteLifetime: Duration
    var now: @Sendable () -> Date
}

/// The routes of auth, from the parts `buildApplication` made: the runtime's standard
/// middleware and operational routes, the internal tenant registry and key store, developers'
/// registration, tokens and invites, and tenants' end users.
func buildRouter(_ runtime: ServiceRuntime, _ parts: AuthParts) -> Router<PlatformRequestContext> {
    let router = runtime.makeRouter()
    let internalRoutes = runtime.internalRoutes(router)
    let keyring = parts.keyring
    // Deregistering a tenant removes its API keys, signing keys and users' sessions with it
    // (ON DELETE CASCADE); the tenant's users go with its schema.
    TenantRegistryController(registry: parts.registry, afterRemove: { id in keyring.forget(id) }).addRoutes(to: internalRoutes)
    APIKeysController(store: parts.apiKeys).addRoutes(to: internalRoutes)
    DevelopersController(developers: parts.developers).addRoutes(internal: internalRoutes)

    let bearer = BearerAuthenticator(keys: keyring.developers, sessions: parts.sessions, now: parts.now)
    RegistrationController(
        developers: parts.developers, hasher: parts.hasher, projects: parts.projects,
        invites: parts.invites, inviteOnly: parts.inviteOnly, passwords: parts.passwords, now: parts.now,
        perAddress: parts.registrationsPerAddress, global: parts.registrationsGlobal, proxies: parts.issuer.limits.proxies
    ).addRoutes(to: router)
    TokenController(issuer: parts.issuer, accounts: DeveloperAccounts(developers: parts.developers, keys: keyring.developers), authenticator: bearer)
        .addRoutes(to: router, internal: internalRoutes)
    InvitesController(store: parts.invites, authenticator: bearer, lifetime: parts.inviteLifetime, now: parts.now)
        .addRoutes(to: router, internal: internalRoutes)

    let credentials = LocalTenantCredentials(apiKeys: parts.apiKeys, registry: parts.registry, keyring: keyring,
                                             sessions: parts.sessions, now: parts.now)
    let access = TenantRouteAccess(authenticator: TenantAuthenticator(resolver: credentials), registry: parts.registry)
    TenantSessionsController(access: access, issuer: parts.issuer, users: parts.users, keyring: keyring, hasher: parts.hasher, passwords: parts.passwords)
        .addRoutes(to: router, internal: internalRoutes)
    TenantCurrentUserController(access: access, users: parts.users, hasher: parts.hasher, passwords: parts.passwords).addRoutes(to: router)
    TenantAdminController(access: access, users: parts.users, limits: parts.tenantLimits, hasher: parts.hasher, passwords: parts.passwords, now: parts.now).addRoutes(to: router)

    // The same users through GoTrue's protocol, for Supabase's clients: the project from the
    // apikey or the host, errors in GoTrue's shape — its routes' (added below), and an unknown
    // path's or an unrouted method's under /auth/v1/ (the router's not-found answer passes every
    // router middleware).
    router.add(middleware: ProtocolErrorMiddleware(GoTrueErrors(), prefix: "/auth/v1", routes: runtime.routeTable))
    let goTrue = router.group("/auth/v1")
    let goTrueAccess = GoTrueAccess(projects: ProjectResolver(credentials: credentials, configuration: runtime.configuration),
                                    registry: parts.registry, credentials: credentials, users: parts.users, now: parts.now)
    GoTrueSessionsController(access: goTrueAccess, issuer: parts.issuer, users: parts.users, keyring: keyring, hasher: parts.hasher,
                             passwords: parts.passwords).addRoutes(to: goTrue)
    GoTrueUserController(access: goTrueAccess, users: parts.users, hasher: parts.hasher, passwords: parts.passwords).addRoutes(to: goTrue)
    GoTrueAdminController(access: goTrueAccess, users: parts.users, hasher: parts.hasher, passwords: parts.passwords, now: parts.now)
        .addRoutes(to: goTrue)
    GoTrueDisabledController(access: goTrueAccess).addRoutes(to: goTrue)
    return router
}
