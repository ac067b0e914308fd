import Foundation

/// One kind of account that signs in with a password and holds sessions, as `TokenIssuer`
/// needs it: developers (`DeveloperAccounts`) or one tenant's end users (`TenantUserAccounts`).
/// The flow (rate limits, the dummy verify, sessions, refresh rotation) is the issuer's alone,
/// so the two token endpoints cannot drift apart; what differs is only where an account is
/// found, what else a sign-in checks, and which key signs which claims.
protocol TokenAccounts: Sendable {
    associatedtype Account: Sendable
    /// The `user` of the token answer.
    associatedtype Profile: Codable & Sendable & Equatable

    /// Put before the normalised email in the per-account rate limit (`email:`, `tenant:<id>:`),
    /// so one address in two realms is counted apart.
    var rateLimitRealm: String { get }
    /// Whose sessions' refresh tokens these accounts honour: nil for developers, else the
    /// tenant's id (another tenant's token is unknown here).
    var sessionTenant: UUID? { get }

    /// The account with this (normalised) email and its password hash; a nil hash is an account
    /// that cannot sign in with a password.
    func account(email: String) async throws -> (account: Account, passwordHash: String?)?
    /// After the password matched: refuses the sign-in (a ban) or records it.
    func signedIn(_ account: Account, at now: Date) async throws -> Account
    /// The account a rotated session belongs to, checked as a sign-in is; nil when it is gone.
    func account(refreshing subject: SessionStore.Subject, at now: Date) async throws -> Account?
    func subject(of account: Account) -> SessionStore.Subject
    /// A signed access token for `account` in `session`, which began at `started`.
    func accessToken(for account: Account, session: UUID, started: Date, issuedAt: Date, lifetime: Duration) async throws -> String
    func profile(of account: Account) -> Profile
}
