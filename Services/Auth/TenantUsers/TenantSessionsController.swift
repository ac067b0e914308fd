import Contracts
import Foundation
import Hummingbird
import Passwords
import ServiceKit
import TenantKit

/// A tenant's end users signing up, in and out, on `/v1/tenants/{slug}/…`:
///
/// | route | needs |
/// |---|---|
/// | `POST signup` `{email, password, metadata?}` → 201 tokens (per-address rate limit) | API key |
/// | `POST token?grant_type=password` / `refresh_token` → tokens (`TokenIssuer`) | API key |
/// | `POST logout?scope=local\|global` → 204 | API key + user token |
/// | `GET .well-known/jwks.json`: the public keys of the tenant's user tokens | nothing |
///
/// `POST /internal/v1/tenants/{id}/signing-keys/rotate` (service token) rotates the tenant's
/// key. Sign-in answers, like developers', never say whether the email exists; users sign up
/// without email confirmation and get a session at once.
struct TenantSessionsController: Sendable {
    let access: TenantRouteAccess
    let issuer: TokenIssuer
    let users: TenantUserStore
    let keyring: SigningKeyring
    let hasher: HashingQueue
    let passwords: PasswordPolicy

    func addRoutes(to router: Router<PlatformRequestContext>, internal internalGroup: RouterGroup<PlatformRequestContext>) {
        let tenant = router.group("/v1/tenants/:slug")
        tenant.get("/.well-known/jwks.json", use: jwks)
        tenant.post("/signup", use: signup)
        tenant.post("/token", use: token)
        tenant.post("/logout", use: logout)
        internalGroup.post("/v1/tenants/:id/signing-keys/rotate", use: rotate)
    }

    @Sendable func jwks(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let slug = try context.parameters.require("slug")
        guard ProjectSlug.isValid(slug), let tenant = try await access.registry.tenant(slug: slug) else { throw APIError.notFound("project") }
        return try jsonResponse(try await keyring.tenant(tenant.id).jwks(), headers: [.cacheControl: "public, max-age=60"])
    }

    /// Counted against the per-address token limit: the publishable key is public, so signups
    /// (each an argon2id hash) must not be free to repeat.
    @Sendable func signup(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await issuer.limits.limited(request, context) {
            let (principal, tenant) = try await access.authenticate(request, context, requiring: .apiKey)
            let input = try await request.decodeJSON(as: TenantSignup.self, context: context)
            let email = try TenantUserRules.validEmail(input.email)
            try passwords.validate(input.password, email: email)
            let metadata = try TenantUserRules.validMetadata(input.metadata)
            let hash = try await hasher.hash(input.password, lane: .newAccount)
            let user = try await TenantUserRules.uniqueEmail {
                try await users.insert(tenant, email: email, passwordHash: hash, role: TenantUserRules.defaultRole, metadata: metadata,
                                       signedIn: true) { user in
                    .init(actor: "user:" + user.id.uuidString.lowercased(), action: "user.signed_up",
                          details: ["via": .string(principal.actor)])
                }
            }
            let accounts = accounts(tenant)
            return try issuer.respond(try await issuer.open(user, of: accounts), of: accounts, status: .created)
        }
    }

    @Sendable func token(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await issuer.grant(request, context) {
            accounts(try await access.authenticate(request, context, requiring: .apiKey).1)
        }
    }

    @Sendable func logout(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await access.authenticate(request, context, requiring: [.apiKey, .user])
        let scope = request.uri.queryParameters.get("scope") ?? "local"
        guard scope == "local" || scope == "global" else { throw APIError.validation(field: "scope", "scope must be local or global.") }
        guard let claims = principal.user, let session = claims.sessionID, let user = claims.userID else { throw TenantRouteAccess.notAUser }
        try await issuer.sessions.revoke(session: session, scope: scope == "global" ? .global : .local)
        try await users.record(tenant, target: user, audit: .init(actor: principal.actor, action: "user.signed_out",
                                                                   details: ["scope": .string(scope)]))
        return Response(status: .noContent)
    }

    @Sendable func rotate(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let id = try TenantRegistryController.tenantID(context)
        guard try await access.registry.tenant(id: id) != nil else { throw APIError.notFound("tenant") }
        let kid = try await keyring.tenant(id).rotate()
        context.logger.info("tenant signing key rotated", metadata: ["tenant.id": "\(id.uuidString.lowercased())", "jwt.kid": "\(kid)"])
        return try jsonResponse(RotatedSigningKey(kid: kid), status: .created)
    }

    private func accounts(_ tenant: RegisteredTenant) -> TenantUserAccounts {
        TenantUserAccounts(tenant: tenant, users: users, keys: keyring.tenant(tenant.id))
    }
}
