import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Passwords
import ServiceKit

/// The one sign-in flow behind developers' `POST /v1/token` and a tenant's users'
/// `POST /v1/tenants/{slug}/token` and `/signup`; which accounts it signs in is a
/// `TokenAccounts`.
///
/// - `grant_type=password`: the per-account limit is counted before any hashing; an unknown
///   email (or an account without a password) costs one argon2id verify against a dummy hash,
///   as a wrong password costs one against the real hash, and both answer the same 400
///   `invalid_grant`, so the endpoint does not tell which emails have accounts. Every sign-in
///   opens its own session.
/// - `grant_type=refresh_token`: the refresh token rotates; reuse of a rotated one outside the
///   grace window ends its whole session (400 `refresh_token_reused`).
///
/// `now` is auth's clock (the system's, or a test's): tokens' `iat`/`exp`, the refresh grace
/// window and bans are all decided by it.
struct TokenIssuer: Sendable {
    let sessions: SessionStore
    let hasher: PasswordHasher
    let settings: TokenSettings
    let limits: TokenRateLimits
    let now: @Sendable () -> Date

    /// Answers a token request for `accounts`, inside the per-address rate limit (`accounts` is
    /// resolved inside it too, so a tenant's credential check counts as an attempt).
    func grant<Accounts: TokenAccounts>(_ request: Request, _ context: PlatformRequestContext,
                                        for accounts: () async throws -> Accounts) async throws -> Response {
        try await limits.limited(request, context) {
            let accounts = try await accounts()
            switch request.uri.queryParameters.get("grant_type") {
            case "password": return try await passwordGrant(request, context, accounts)
            case "refresh_token": return try await refreshGrant(request, context, accounts)
            default: throw APIError.validation(field: "grant_type", "grant_type must be password or refresh_token.")
            }
        }
    }

    /// Answers tokens for `account`: in `existing` when refreshing, else in a new session.
    func issue<Accounts: TokenAccounts>(_ account: Accounts.Account, of accounts: Accounts, status: HTTPResponse.Status = .ok,
                                        session existing: (session: UUID, refreshToken: String)? = nil) async throws -> Response {
        let opened = if let existing { existing } else { try await sessions.open(accounts.subject(of: account)) }
        let lifetime = settings.accessTokenTTL
        let access = try await accounts.accessToken(for: account, session: opened.session, issuedAt: now(), lifetime: lifetime)
        return try jsonResponse(SessionTokens(accessToken: access, expiresIn: Int(lifetime.components.seconds),
                                              refreshToken: opened.refreshToken, user: accounts.profile(of: account)),
                                status: status, headers: [.cacheControl: "no-store"])
    }

    private func passwordGrant(_ request: Request, _ context: PlatformRequestContext, _ accounts: some TokenAccounts) async throws -> Response {
        let grant = try await request.decodeJSON(as: PasswordGrant.self, context: context)
        let email = grant.email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        try limits.checkAccount(accounts.rateLimitRealm + email)
        guard let found = try await accounts.account(email: email), let hash = found.passwordHash else {
            await hasher.verifyDummy(grant.password)
            throw Self.invalidCredentials
        }
        guard await hasher.verify(grant.password, against: hash) else { throw Self.invalidCredentials }
        return try await issue(try await accounts.signedIn(found.account, at: now()), of: accounts)
    }

    private func refreshGrant(_ request: Request, _ context: PlatformRequestContext, _ accounts: some TokenAccounts) async throws -> Response {
        let grant = try await request.decodeJSON(as: RefreshGrant.self, context: context)
        let now = now()
        switch try await sessions.refresh(grant.refreshToken, tenant: accounts.sessionTenant, at: now) {
        case .rotated(let session, let subject, let refreshToken):
            guard let account = try await accounts.account(refreshing: subject, at: now) else { throw Self.invalidRefresh }
            return try await issue(account, of: accounts, session: (session, refreshToken))
        case .rejected(let reused):
            if reused { context.logger.warning("refresh token reused; its session was revoked") }
            throw reused ? Self.refreshReused : Self.invalidRefresh
        }
    }

    static let invalidCredentials = APIError(.badRequest, code: "invalid_grant", message: "Invalid login credentials.")
    static let invalidRefresh = APIError(.badRequest, code: "invalid_grant", message: "The refresh token is invalid or has been revoked.")
    static let refreshReused = APIError(.badRequest, code: "refresh_token_reused", message: "This refresh token was already used; the session has been ended.")
}
