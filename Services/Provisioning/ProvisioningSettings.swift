import Resilience
import ServiceKit

/// The orchestrator's own settings, from the environment (documented in the README).
struct ProvisioningSettings: Sendable {
    /// `PROVISIONING_WORKERS`: executions run at once by this instance.
    var workers: Int
    /// `PROVISIONING_LEASE_SECONDS`: how long a claimed execution stays claimed without a
    /// heartbeat; after a crash, another instance resumes it once this has passed.
    var lease: Duration
    /// `PROVISIONING_STEP_MAX_ATTEMPTS`: attempts per step (and per compensation) within one run
    /// before a transient failure counts as permanent.
    var maxAttempts: Int
    /// `PROVISIONING_RETRY_BASE_MS` / `PROVISIONING_RETRY_MAX_MS`: capped exponential backoff
    /// (full jitter) between attempts.
    var retryBase: Duration
    var retryMax: Duration
    /// `PROVISIONING_POLL_MS`: how often idle workers look for work they were not told about.
    var pollInterval: Duration
    /// `PROVISIONING_PUBLIC_URL`: the base of the status URLs handed to developers.
    var publicURL: String
    /// `PROVISIONING_CALL_TIMEOUT_MS`: the longest one call to another service may take (the
    /// HTTP client's request timeout); a call that takes longer counts as a transient failure
    /// that may have acted.
    var callTimeout: Duration
    /// `PROVISIONING_FAILPOINT`: a test-only crash point (see ``Failpoint``); nil when unset.
    var failpoint: Failpoint?
    /// `PROVISIONING_PROJECTS_PER_DEVELOPER`: projects one developer may have (deleted ones do
    /// not count); the next creation answers 403 `project_limit_reached`.
    var projectsPerDeveloper: Int
    /// `PROVISIONING_KEY_REVEAL_SECONDS`: how long a project's readable API keys wait for their
    /// one reveal before they are deleted unshown (default 24 hours).
    var keyRevealTTL: Duration
    /// `PROVISIONING_KEY_GRACE_SECONDS`: how long a rotation keeps the old keys working beside
    /// the new ones (default 24 hours; a rotation may ask for another, up to 30 days).
    var keyGrace: Duration
    /// `JWKS_CACHE_SECONDS` / `SESSION_CACHE_SECONDS`: how long auth's developer JWKS and a
    /// session check's answer are reused (`DeveloperAuthenticator`).
    var jwksTTL: Duration
    var sessionCacheTTL: Duration
    /// `PROVISIONING_ORPHAN_GRACE_SECONDS` (default 600): how old a registration's project must
    /// be before the orphan reconciler asks auth whether its owner exists;
    /// `PROVISIONING_ORPHAN_CHECK_SECONDS` (default 60): how often it looks.
    var orphanGrace: Duration
    var orphanCheckInterval: Duration
    /// `AUTH_DATABASE_ROLE` / `REALTIME_DATABASE_ROLE`: whom tenants' schemas grant to.
    var tenantGrantees: TenantGrantees

    init(_ configuration: ServiceConfiguration) throws {
        workers = try configuration.integer("PROVISIONING_WORKERS", default: 4, range: 1...64)
        lease = .seconds(try configuration.integer("PROVISIONING_LEASE_SECONDS", default: 15, range: 2...3600))
        maxAttempts = try configuration.integer("PROVISIONING_STEP_MAX_ATTEMPTS", default: 6, range: 1...100)
        retryBase = .milliseconds(try configuration.integer("PROVISIONING_RETRY_BASE_MS", default: 200, range: 1...60_000))
        retryMax = .milliseconds(try configuration.integer("PROVISIONING_RETRY_MAX_MS", default: 5000, range: 1...600_000))
        pollInterval = .milliseconds(try configuration.integer("PROVISIONING_POLL_MS", default: 1000, range: 10...60_000))
        let publicURL = configuration.value("PROVISIONING_PUBLIC_URL")
            ?? configuration.serviceURLs[.provisioning] ?? "http://127.0.0.1:\(ServiceName.provisioning.defaultPort)"
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        callTimeout = .milliseconds(try configuration.integer("PROVISIONING_CALL_TIMEOUT_MS", default: 10_000, range: 100...600_000))
        failpoint = try configuration.value("PROVISIONING_FAILPOINT").map(Failpoint.init(parsing:))
        projectsPerDeveloper = try configuration.integer("PROVISIONING_PROJECTS_PER_DEVELOPER", default: 10, range: 1...10_000)
        keyRevealTTL = .seconds(try configuration.integer("PROVISIONING_KEY_REVEAL_SECONDS", default: 86_400, range: 1...2_592_000))
        keyGrace = .seconds(try configuration.integer("PROVISIONING_KEY_GRACE_SECONDS", default: 86_400, range: 0...2_592_000))
        jwksTTL = .seconds(try configuration.integer("JWKS_CACHE_SECONDS", default: 300, range: 0...86_400))
        sessionCacheTTL = .seconds(try configuration.integer("SESSION_CACHE_SECONDS", default: 5, range: 0...300))
        orphanGrace = .seconds(try configuration.integer("PROVISIONING_ORPHAN_GRACE_SECONDS", default: 600, range: 1...604_800))
        orphanCheckInterval = .seconds(try configuration.integer("PROVISIONING_ORPHAN_CHECK_SECONDS", default: 60, range: 1...3600))
        tenantGrantees = try TenantGrantees(configuration)
    }

    /// The delays between attempts: the platform's one backoff rule, from `retryBase` to `retryMax`.
    var backoff: Backoff { Backoff(base: retryBase, cap: retryMax) }
}
