import ServiceKit

/// Auth's token settings, from the environment (documented in deploy/.env.example).
struct TokenSettings: Sendable {
    /// `ACCESS_TOKEN_TTL_SECONDS`: lifetime of an access token (default 900, 15 minutes).
    var accessTokenTTL: Duration
    /// `REFRESH_REUSE_GRACE_SECONDS`: a refresh token used again within this window (two tabs
    /// refreshing at once) gets a fresh child instead of revoking its family (default 10).
    var refreshReuseGrace: Duration

    static let issuer = "platform-auth"
    static let audience = "platform"

    init(_ configuration: ServiceConfiguration) throws {
        accessTokenTTL = .seconds(try configuration.integer("ACCESS_TOKEN_TTL_SECONDS", default: 900, range: 1...86_400))
        refreshReuseGrace = .seconds(try configuration.integer("REFRESH_REUSE_GRACE_SECONDS", default: 10, range: 0...300))
    }
}
