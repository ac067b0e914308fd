import ServiceKit

/// Auth's token settings, from the environment (documented in deploy/.env.example).
struct TokenSettings: Sendable {
    /// `ACCESS_TOKEN_TTL_SECONDS`: lifetime of an access token (default 900, 15 minutes).
    var accessTokenTTL: Duration
    /// `REFRESH_REUSE_GRACE_SECONDS`: a refresh token used again within this window (two tabs
    /// refreshing at once) gets the child it got the first time instead of revoking its family
    /// (default 10).
    var refreshReuseGrace: Duration
    /// `SESSION_TIMEBOX_SECONDS`: a session's absolute lifetime from its sign-in (GoTrue's
    /// `GOTRUE_SESSIONS_TIMEBOX`; default 2,592,000, 30 days). Unlike GoTrue's, never off.
    var sessionTimebox: Duration
    /// `SESSION_INACTIVITY_TIMEOUT_SECONDS`: a session not refreshed this long ends (GoTrue's
    /// `GOTRUE_SESSIONS_INACTIVITY_TIMEOUT`; default 604,800, 7 days). Never off.
    var sessionInactivityTimeout: Duration
    /// `REFRESH_TOKEN_TTL_SECONDS`: a refresh token must be used this soon after it was issued
    /// (default 604,800, 7 days). Never off.
    var refreshTokenTTL: Duration
    /// `SESSION_PURGE_INTERVAL_SECONDS`: how often each replica deletes sessions that ended over
    /// a day ago, with their refresh tokens (`SessionJanitor`; default 600).
    var sessionPurgeInterval: Duration

    /// `TOKEN_RATE_LIMIT_PER_IP` / `TOKEN_RATE_LIMIT_PER_ACCOUNT`: attempts on `/v1/token` per
    /// minute from one client address / for one email (defaults 60 and 10).
    var perAddressPerMinute: Int
    var perAccountPerMinute: Int

    init(_ configuration: ServiceConfiguration) throws {
        accessTokenTTL = .seconds(try configuration.integer("ACCESS_TOKEN_TTL_SECONDS", default: 900, range: 1...86_400))
        refreshReuseGrace = .seconds(try configuration.integer("REFRESH_REUSE_GRACE_SECONDS", default: 10, range: 0...300))
        // At least a minute each, at most ten years: sessions always end, and 0 means nothing.
        let lifetimes = 60...315_360_000
        sessionTimebox = .seconds(try configuration.integer("SESSION_TIMEBOX_SECONDS", default: 2_592_000, range: lifetimes))
        sessionInactivityTimeout = .seconds(try configuration.integer("SESSION_INACTIVITY_TIMEOUT_SECONDS", default: 604_800, range: lifetimes))
        refreshTokenTTL = .seconds(try configuration.integer("REFRESH_TOKEN_TTL_SECONDS", default: 604_800, range: lifetimes))
        sessionPurgeInterval = .seconds(try configuration.integer("SESSION_PURGE_INTERVAL_SECONDS", default: 600, range: 1...86_400))
        perAddressPerMinute = try configuration.integer("TOKEN_RATE_LIMIT_PER_IP", default: 60, range: 1...100_000)
        perAccountPerMinute = try configuration.integer("TOKEN_RATE_LIMIT_PER_ACCOUNT", default: 10, range: 1...100_000)
    }

    /// The limits `SessionStore` applies.
    var sessionLimits: SessionStore.Limits {
        SessionStore.Limits(timebox: sessionTimebox, inactivityTimeout: sessionInactivityTimeout,
                            refreshTokenTTL: refreshTokenTTL, reuseGrace: refreshReuseGrace)
    }
}
