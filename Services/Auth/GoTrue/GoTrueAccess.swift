import Contracts
import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// Who calls a route on `/auth/v1/`, checked as GoTrue behind Supabase's gateway does
/// (docs/protocols/gotrue-reference.md §1, §3):
///
/// - **public** routes (`signup`, `token`, `settings`, the JWKS): the project comes from the
///   `apikey` (or the host, `ProjectResolver`); `Authorization` is ignored, because
///   supabase-py sends the user's possibly expired access token there, refreshes included;
/// - **user** routes (`user`, `logout`): also `Authorization: Bearer <the user's access
///   token>`, of this project, of a live session, of a user who still exists and is not banned;
/// - **admin** routes: the project's secret key in `apikey`, and as the bearer when one is
///   sent (supabase-py sends the key as both). Anything else is 403 `not_admin`.
struct GoTrueAccess: Sendable {
    let projects: ProjectResolver
    let registry: TenantRegistry
    let credentials: LocalTenantCredentials
    let users: TenantUserStore
    let now: @Sendable () -> Date

    /// The project a request is for. `requireKey: false` (the JWKS) lets the host alone name it.
    func tenant(_ request: Request, requireKey: Bool = true) async throws -> RegisteredTenant {
        try await resolve(request, requireKey: requireKey).tenant
    }

    /// The signed-in user of a user route, with their token's claims.
    func user(_ request: Request) async throws -> (tenant: RegisteredTenant, user: TenantUser, claims: TenantUserClaims) {
        let tenant = try await tenant(request)
        guard let token = ProjectResolver.bearer(request) else { throw GoTrueError.noAuthorization }
        if TenantAuthenticator.looksLikeAPIKey(token) {
            // GoTrue's answer to an API key used as a user's token.
            throw GoTrueError(.forbidden, "bad_jwt", "invalid claim: missing sub claim")
        }
        let claims: TenantUserClaims
        switch try await credentials.check(token) {
        case .valid(let valid): claims = valid
        case .invalid(let reason): throw GoTrueError.badJWT(reason)
        case .sessionEnded: throw GoTrueError(.forbidden, "session_not_found", "Session from session_id claim in JWT does not exist")
        }
        guard claims.ref == tenant.slug else { throw TenantAuthenticator.tenantMismatch }
        guard let id = claims.userID, let user = try await users.user(tenant, id: id) else {
            throw GoTrueError(.forbidden, "user_not_found", "User from sub claim in JWT does not exist")
        }
        if let until = user.bannedUntil, until > now() { throw GoTrueError(.forbidden, "user_banned", "User is banned") }
        return (tenant, user, claims)
    }

    /// The project of an admin route, whose caller presented its secret key.
    func admin(_ request: Request) async throws -> (tenant: RegisteredTenant, actor: String) {
        let (tenant, key) = try await resolve(request, requireKey: true)
        guard let key, key.kind == .secret else { throw GoTrueError.notAdmin }
        if let bearer = ProjectResolver.bearer(request), bearer != ProjectResolver.presentedKey(request) { throw GoTrueError.notAdmin }
        return (tenant, "secret_key:" + key.keyId.uuidString.lowercased())
    }

    private func resolve(_ request: Request, requireKey: Bool) async throws -> (tenant: RegisteredTenant, key: APIKeyIdentity?) {
        let resolved = try await projects.resolve(request, requireKey: requireKey)
        guard let tenant = try await registry.tenant(slug: resolved.slug) else {
            // Only a host name can name a project that does not exist (a key's project does).
            throw GoTrueError(.notFound, "project_not_found", "No project has this host name.")
        }
        return (tenant, resolved.apiKey)
    }
}
