import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// Developer sessions:
/// - `POST /v1/token?grant_type=password` `{email, password}` → tokens, and
///   `POST /v1/token?grant_type=refresh_token` `{refresh_token}` → new tokens: `TokenIssuer`'s
///   flow (rate limits, the same answer and argon2id work for an unknown email as for a wrong
///   password, rotating refresh tokens with reuse detection) for `DeveloperAccounts`.
/// - `POST /v1/logout?scope=local|global` (bearer) → 204; `local` ends this session, `global`
///   every session of the developer.
/// - `GET /v1/me` (bearer) → the developer.
/// - `GET /.well-known/jwks.json` → the public keys that verify access tokens.
/// - `POST /internal/v1/signing-keys/rotate` (service token) → a new signing key; the old one
///   keeps verifying until its tokens expire.
/// - `GET /internal/v1/sessions/{id}` (service token) → `DeveloperSession` while that developer
///   session is live, else 404: provisioning verifies developers' tokens offline (the JWKS) and
///   asks this for the session, so a logout ends access there too.
struct TokenController: Sendable {
    let issuer: TokenIssuer
    let accounts: DeveloperAccounts
    let authenticator: BearerAuthenticator

    func addRoutes(to router: Router<PlatformRequestContext>, internal internalGroup: RouterGroup<PlatformRequestContext>) {
        router.post("/v1/token", use: token)
        router.post("/v1/logout", use: logout)
        router.get("/v1/me", use: me)
        router.get("/.well-known/jwks.json", use: jwks)
        internalGroup.post("/v1/signing-keys/rotate", use: rotate)
        internalGroup.get("/v1/sessions/:id", use: session)
    }

    /// Rate-limited per client address, and password sign-ins also per account (email), before
    /// any hashing: 429 with `Retry-After` and `X-RateLimit-*` once a limit is spent.
    @Sendable func token(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await issuer.grant(request, context) { accounts }
    }

    @Sendable func logout(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let claims = try await authenticator.authenticate(request)
        let scope = request.uri.queryParameters.get("scope") ?? "local"
        guard scope == "local" || scope == "global", let session = UUID(uuidString: claims.sid) else {
            throw APIError.validation(field: "scope", "scope must be local or global.")
        }
        try await issuer.sessions.revoke(session: session, scope: scope == "global" ? .global : .local)
        return Response(status: .noContent)
    }

    @Sendable func me(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let claims = try await authenticator.authenticate(request)
        guard let id = UUID(uuidString: claims.sub.value), let developer = try await accounts.developers.developer(id: id) else {
            throw APIError.unauthorized("The token does not name a developer.")
        }
        return try jsonResponse(accounts.profile(of: developer))
    }

    @Sendable func jwks(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try jsonResponse(try await accounts.keys.jwks(), headers: [.cacheControl: "public, max-age=60"])
    }

    @Sendable func rotate(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let kid = try await accounts.keys.rotate()
        context.logger.info("signing key rotated", metadata: ["jwt.kid": "\(kid)"])
        return try jsonResponse(RotatedSigningKey(kid: kid), status: .created)
    }

    @Sendable func session(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else {
            throw APIError.validation(field: "id", "The session id must be a UUID.")
        }
        guard let developer = try await issuer.sessions.liveDeveloper(of: id, at: issuer.now()) else { throw APIError.notFound("session") }
        return try jsonResponse(DeveloperSession(sessionId: id, developerId: developer), headers: [.cacheControl: "no-store"])
    }
}
