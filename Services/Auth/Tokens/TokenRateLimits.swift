import Foundation
import Hummingbird
import ServiceKit

/// The limits on every token endpoint (developers' and tenants' users'): per client address
/// around the whole request, and per account for password sign-ins, both checked before any
/// hashing. Past a limit: 429 `rate_limited` with `Retry-After`; `X-RateLimit-*` on every answer.
struct TokenRateLimits: Sendable {
    let perAddress: RateLimiter
    let perAccount: RateLimiter
    /// Whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    let proxies: TrustedProxies

    init(_ settings: TokenSettings, proxies: TrustedProxies) {
        perAddress = RateLimiter(limit: settings.perAddressPerMinute, per: .seconds(60))
        perAccount = RateLimiter(limit: settings.perAccountPerMinute, per: .seconds(60))
        self.proxies = proxies
    }

    /// Runs `grant` if the client's address is within its limit, adding the limit's headers to
    /// the answer (error answers included).
    func limited(_ request: Request, _ context: PlatformRequestContext, _ grant: () async throws -> Response) async throws -> Response {
        let decision = perAddress.check("ip:" + proxies.clientAddress(request, context: context))
        try decision.enforce()
        do {
            var response = try await grant()
            response.headers.append(contentsOf: decision.headers)
            return response
        } catch var error as APIError where error.status != .tooManyRequests {
            error.headers.append(contentsOf: decision.headers)
            throw error
        }
    }

    /// Counts a password attempt for `account` (a normalised email, prefixed by its realm).
    func checkAccount(_ account: String) throws {
        try perAccount.check(account).enforce()
    }
}
