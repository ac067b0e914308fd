import ServiceKit

/// Auth's token settings, from the environment (documented in deploy/.env.example).
struct TokenSettings: Sendable {
    /// `ACCESS_TOKEN_TTL_SECONDS`: lifetime of an access token (default 900, 15 minutes).
    var accessTokenTTL: Duration
    /// `REFRESH_REUSE_GRACE_SECONDS`: a refresh token used again within this window (two tabs
    /// refreshing at once) gets the child it got the first time instead of revoking its family
    /// (default 10).
    var refreshReuseGrace: Duration

    /// `TOKEN_RATE_LIMIT_PER_IP` / `TOKEN_RATE_LIMIT_PER_ACCOUNT`: attempts on `/v1/token` per
    /// minute from one client address / for one email (defaults 60 and 10).
    var perAddressPerMinute: Int
    var perAccountPerMinute: Int

    init(_ configuration: ServiceConfiguration) throws {
        accessTokenTTL = .seconds(try configuration.integer("ACCESS_TOKEN_TTL_SECONDS", default: 900, range: 1...86_400))
        refreshReuseGrace = .seconds(try configuration.integer("REFRESH_REUSE_GRACE_SECONDS", default: 10, range: 0...300))
        perAddressPerMinute = try configuration.integer("TOKEN_RATE_LIMIT_PER_IP", default: 60, range: 1...100_000)
        perAccountPerMinute = try configuration.integer("TOKEN_RATE_LIMIT_PER_ACCOUNT", default: 10, range: 1...100_000)
    }
}
