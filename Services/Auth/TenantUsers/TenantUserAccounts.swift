import Contracts
import Foundation
import ServiceKit
import TenantKit

/// One tenant's end users as `TokenIssuer` signs them in (`POST /v1/tenants/{slug}/token`,
/// `/signup`): found in the tenant's `users`, refused while banned, each sign-in recorded in the
/// tenant's audit log, tokens signed with the tenant's own keys (`TenantUserClaims`).
struct TenantUserAccounts: TokenAccounts {
    let tenant: RegisteredTenant
    let users: TenantUserStore
    let keys: SigningKeys

    var rateLimitRealm: String { "tenant:\(tenant.id.uuidString.lowercased()):" }
    var sessionTenant: UUID? { tenant.id }

    func account(email: String) async throws -> (account: TenantUser, passwordHash: String?)? {
        try await users.credentials(tenant, email: email).map { ($0.user, $0.passwordHash) }
    }

    func signedIn(_ user: TenantUser, at now: Date) async throws -> TenantUser {
        try Self.checkNotBanned(user, at: now)
        let actor = "user:" + user.id.uuidString.lowercased()
        guard let user = try await users.recordSignIn(tenant, id: user.id, audit: .init(actor: actor, action: "user.signed_in")) else {
            throw TokenIssuer.Refusal.invalidCredentials
        }
        return user
    }

    func account(refreshing subject: SessionStore.Subject, at now: Date) async throws -> TenantUser? {
        guard let id = subject.user, let user = try await users.user(tenant, id: id) else { return nil }
        try Self.checkNotBanned(user, at: now)
        return user
    }

    func subject(of user: TenantUser) -> SessionStore.Subject {
        .tenantUser(tenant: tenant.id, user: user.id)
    }

    func accessToken(for user: TenantUser, session: UUID, started: Date, issuedAt: Date, lifetime: Duration) async throws -> String {
        try await keys.sign(TenantUserClaims(user: user.id, session: session, slug: tenant.slug, tenant: tenant.id, role: user.role,
                                             email: user.email, issuedAt: issuedAt, lifetime: lifetime, sessionStarted: started,
                                             appMetadata: GoTrueUser.appMetadata(of: user), userMetadata: user.metadata))
    }

    func profile(of user: TenantUser) -> TenantUser { user }

    private static func checkNotBanned(_ user: TenantUser, at now: Date) throws {
        if let until = user.bannedUntil, until > now { throw TokenIssuer.Refusal.banned }
    }
}
