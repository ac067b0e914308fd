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
/// - `grant_type=refresh_token`: the refresh token rotates; reuse of a rotated one inside the
///   grace window answers the same child again, outside it ends its whole session (400
///   `refresh_token_reused`). A session past its timebox or inactivity timeout, or a refresh
///   token past its lifetime, is refused (400 `invalid_grant`).
///
/// `now` is auth's clock (the system's, or a test's): tokens' `iat`/`exp`, sessions' limits,
/// the refresh grace window and bans are all decided by it.
struct TokenIssuer: Sendable {
    let sessions: SessionStore
    let hasher: HashingQueue
    let settings: TokenSettings
    let limits: TokenRateLimits
    let now: @Sendable () -> Date

    /// Why a sign-in or a refresh was refused. Each API answers it in its own shape: the
    /// platform's (`platformError`) or GoTrue's (`GoTrueError(refused:)`).
    enum Refusal: Error, Equatable {
        /// Unknown email, no password, or a wrong one: the same answer for all three.
        case invalidCredentials
        /// An unknown refresh token, or one of an ended session or a deleted account.
        case invalidRefreshToken
        /// A rotated refresh token used again outside the grace window: its session has ended.
        case refreshTokenReused
        /// The session outlived its timebox or inactivity timeout, or the token its lifetime.
        case expired(SessionStore.Expiry)
        /// The account is banned.
        case banned
    }

    /// Tokens just issued for `account`, in whichever shape the API answers them.
    struct Issued<Account: Sendable>: Sendable {
        var account: Account
        var session: UUID
        var accessToken: String
        var refreshToken: String
        /// The access token's lifetime in seconds, and its expiry in seconds since 1970.
        var expiresIn: Int
        var expiresAt: Int
    }

    /// Answers the platform's token request (`POST /v1/token`, `/v1/tenants/{slug}/token`) for
    /// `accounts`, inside the per-address rate limit (`accounts` is resolved inside it too, so a
    /// tenant's credential check counts as an attempt).
    func grant<Accounts: TokenAccounts>(_ request: Request, _ context: PlatformRequestContext,
                                        for accounts: () async throws -> Accounts) async throws -> Response {
        try await limits.limited(request, context) {
            let accounts = try await accounts()
            do {
                switch request.uri.queryParameters.get("grant_type") {
                case "password":
                    let grant = try await request.decodeJSON(as: PasswordGrant.self, context: context)
                    return try respond(try await signIn(email: grant.email, password: grant.password, accounts), of: accounts)
                case "refresh_token":
                    let grant = try await request.decodeJSON(as: RefreshGrant.self, context: context)
                    return try respond(try await refresh(grant.refreshToken, accounts, context), of: accounts)
                default: throw APIError.validation(field: "grant_type", "grant_type must be password or refresh_token.")
                }
            } catch let refusal as Refusal {
                throw Self.platformError(refusal)
            }
        }
    }

    /// A password sign-in: the per-account limit is counted before any hashing; an unknown
    /// email costs one dummy verify, as a wrong password costs one real one.
    func signIn<Accounts: TokenAccounts>(email: String, password: String, _ accounts: Accounts) async throws -> Issued<Accounts.Account> {
        // No account has an address over 254 bytes (registration refuses them): such a sign-in
        // is refused before it is counted, looked up or hashed, so its size costs nothing.
        guard email.utf8.count <= 1_024 else { throw Refusal.invalidCredentials }
        let email = email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        guard email.utf8.count <= 254 else { throw Refusal.invalidCredentials }
        try limits.checkAccount(accounts.rateLimitRealm + email)
        guard let found = try await accounts.account(email: email), let hash = found.passwordHash else {
            try await hasher.verifyDummy(password)
            throw Refusal.invalidCredentials
        }
        guard try await hasher.verify(password, against: hash) else { throw Refusal.invalidCredentials }
        return try await open(try await accounts.signedIn(found.account, at: now()), of: accounts)
    }

    /// Rotates a refresh token into new tokens of the same session.
    func refresh<Accounts: TokenAccounts>(_ token: String, _ accounts: Accounts,
                                          _ context: PlatformRequestContext) async throws -> Issued<Accounts.Account> {
        let now = now()
        switch try await sessions.refresh(token, tenant: accounts.sessionTenant, at: now) {
        case .rotated(let session, let started, let subject, let refreshToken):
            guard let account = try await accounts.account(refreshing: subject, at: now) else { throw Refusal.invalidRefreshToken }
            return try await tokens(for: account, of: accounts, session: session, started: started, refreshToken: refreshToken)
        case .rejected(let reused):
            if reused { context.logger.warning("refresh token reused; its session was revoked") }
            throw reused ? Refusal.refreshTokenReused : Refusal.invalidRefreshToken
        case .expired(let expiry):
            throw Refusal.expired(expiry)
        }
    }

    /// A new session for `account` (a sign-in, or a sign-up that signs in at once).
    func open<Accounts: TokenAccounts>(_ account: Accounts.Account, of accounts: Accounts) async throws -> Issued<Accounts.Account> {
        let started = now()
        let opened = try await sessions.open(accounts.subject(of: account), at: started)
        return try await tokens(for: account, of: accounts, session: opened.session, started: started, refreshToken: opened.refreshToken)
    }

    /// The platform's token answer (`SessionTokens`), never cached.
    func respond<Accounts: TokenAccounts>(_ issued: Issued<Accounts.Account>, of accounts: Accounts,
                                          status: HTTPResponse.Status = .ok) throws -> Response {
        try jsonResponse(SessionTokens(accessToken: issued.accessToken, expiresIn: issued.expiresIn,
                                       refreshToken: issued.refreshToken, user: accounts.profile(of: issued.account)),
                         status: status, headers: [.cacheControl: "no-store"])
    }

    private func tokens<Accounts: TokenAccounts>(for account: Accounts.Account, of accounts: Accounts, session: UUID, started: Date,
                                                 refreshToken: String) async throws -> Issued<Accounts.Account> {
        let issuedAt = now()
        let lifetime = settings.accessTokenTTL
        let access = try await accounts.accessToken(for: account, session: session, started: started, issuedAt: issuedAt, lifetime: lifetime)
        let seconds = Int(lifetime.components.seconds)
        return Issued(account: account, session: session, accessToken: access, refreshToken: refreshToken,
                      expiresIn: seconds, expiresAt: Int(issuedAt.timeIntervalSince1970.rounded(.down)) + seconds)
    }

    /// The platform's answer to a refusal.
    static func platformError(_ refusal: Refusal) -> APIError {
        switch refusal {
        case .invalidCredentials: APIError(.badRequest, code: "invalid_grant", message: "Invalid login credentials.")
        case .invalidRefreshToken: APIError(.badRequest, code: "invalid_grant", message: "The refresh token is invalid or has been revoked.")
        case .refreshTokenReused: APIError(.badRequest, code: "refresh_token_reused", message: "This refresh token was already used; the session has been ended.")
        case .expired(.timebox): APIError(.badRequest, code: "invalid_grant", message: "The session has reached its maximum lifetime.")
        case .expired(.inactivity): APIError(.badRequest, code: "invalid_grant", message: "The session has expired after inactivity.")
        case .expired(.refreshToken): APIError(.badRequest, code: "invalid_grant", message: "The refresh token has expired.")
        case .banned: APIError(.badRequest, code: "user_banned", message: "This user is banned.")
        }
    }
}
