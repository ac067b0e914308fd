import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import JWTKit
import Passwords
import ServiceKit

/// Developer sessions:
/// - `POST /v1/token?grant_type=password` `{email, password}` → tokens; an unknown email costs
///   the same argon2id work as a wrong password, and both answer the same 400 `invalid_grant`;
///   every sign-in opens its own session.
/// - `POST /v1/token?grant_type=refresh_token` `{refresh_token}` → new tokens; the refresh token
///   rotates, and reuse of a rotated one outside the grace window revokes its whole session.
/// - `POST /v1/logout?scope=local|global` (bearer) → 204; `local` ends this session, `global`
///   every session of the developer.
/// - `GET /v1/me` (bearer) → the developer.
/// - `GET /.well-known/jwks.json` → the public keys that verify access tokens.
/// - `POST /internal/v1/signing-keys/rotate` (service token) → a new signing key; the old one
///   keeps verifying until its tokens expire.
struct TokenController: Sendable {
    let developers: DeveloperStore
    let sessions: SessionStore
    let keys: SigningKeys
    let hasher: PasswordHasher
    let settings: TokenSettings
    let limits: TokenRateLimits

    func addRoutes(to router: Router<PlatformRequestContext>, internal internalGroup: RouterGroup<PlatformRequestContext>) {
        router.post("/v1/token", use: token)
        router.post("/v1/logout", use: logout)
        router.get("/v1/me", use: me)
        router.get("/.well-known/jwks.json", use: jwks)
        internalGroup.post("/v1/signing-keys/rotate", use: rotate)
    }

    /// Rate-limited per client address, and password sign-ins also per account (email), before
    /// any hashing: 429 with `Retry-After` and `X-RateLimit-*` once a limit is spent.
    @Sendable func token(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await limits.limited(request, context) { try await grant(request, context: context) }
    }

    private func grant(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        switch request.uri.queryParameters.get("grant_type") {
        case "password":
            let grant = try await request.decodeJSON(as: PasswordGrant.self, context: context)
            try limits.checkAccount("email:" + grant.email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased())
            let developer = try await developers.developer(email: grant.email.trimmingCharacters(in: .whitespacesAndNewlines))
            guard let developer else {
                await hasher.verifyDummy(grant.password)
                throw Self.invalidCredentials
            }
            guard await hasher.verify(grant.password, against: developer.passwordHash) else { throw Self.invalidCredentials }
            let opened = try await sessions.open(.developer(developer.id))
            return try await issue(developer: developer, session: opened.session, refreshToken: opened.refreshToken)
        case "refresh_token":
            let grant = try await request.decodeJSON(as: RefreshGrant.self, context: context)
            let (session, subject, refreshToken) = try await Self.rotate(grant, sessions: sessions, tenant: nil, context: context)
            guard let developerID = subject.developer, let developer = try await developers.developer(id: developerID) else {
                throw Self.invalidRefresh
            }
            return try await issue(developer: developer, session: session, refreshToken: refreshToken)
        default:
            throw APIError.validation(field: "grant_type", "grant_type must be password or refresh_token.")
        }
    }

    @Sendable func logout(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let claims = try await authenticate(request)
        let scope = request.uri.queryParameters.get("scope") ?? "local"
        guard scope == "local" || scope == "global", let session = UUID(uuidString: claims.sid) else {
            throw APIError.validation(field: "scope", "scope must be local or global.")
        }
        try await sessions.revoke(session: session, everywhere: scope == "global")
        return Response(status: .noContent)
    }

    @Sendable func me(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let claims = try await authenticate(request)
        guard let id = UUID(uuidString: claims.sub.value), let developer = try await developers.developer(id: id) else {
            throw APIError.unauthorized("The token does not name a developer.")
        }
        return try jsonResponse(DeveloperProfile(id: developer.id, email: developer.email, createdAt: developer.createdAt))
    }

    @Sendable func jwks(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try jsonResponse(try await keys.jwks(), headers: [.cacheControl: "public, max-age=60"])
    }

    @Sendable func rotate(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let kid = try await keys.rotate()
        context.logger.info("signing key rotated", metadata: ["jwt.kid": "\(kid)"])
        return try jsonResponse(RotatedSigningKey(kid: kid), status: .created)
    }

    func authenticate(_ request: Request) async throws -> AccessClaims {
        try await BearerAuthenticator(keys: keys, sessions: sessions).authenticate(request)
    }

    private func issue(developer: DeveloperStore.Developer, session: UUID, refreshToken: String) async throws -> Response {
        let now = Date()
        let claims = AccessClaims(
            sub: SubjectClaim(value: developer.id.uuidString.lowercased()),
            sid: session.uuidString.lowercased(),
            iat: IssuedAtClaim(value: now),
            exp: ExpirationClaim(value: now.addingTimeInterval(Double(settings.accessTokenTTL.components.seconds))),
            iss: IssuerClaim(value: TokenSettings.issuer),
            aud: AudienceClaim(value: [TokenSettings.audience])
        )
        let access = try await keys.sign(claims)
        return try jsonResponse(TokenResponse(
            accessToken: access, expiresIn: Int(settings.accessTokenTTL.components.seconds), refreshToken: refreshToken,
            user: DeveloperProfile(id: developer.id, email: developer.email, createdAt: developer.createdAt)
        ), headers: [.cacheControl: "no-store"])
    }

    /// Uses a refresh token of `tenant`'s sessions (nil: developers'): the rotated session, or
    /// 400 `invalid_grant` / `refresh_token_reused` (which has ended the session).
    static func rotate(_ grant: RefreshGrant, sessions: SessionStore, tenant: UUID?,
                       context: PlatformRequestContext) async throws -> (UUID, SessionStore.Subject, String) {
        switch try await sessions.refresh(grant.refreshToken, tenant: tenant) {
        case .rotated(let session, let subject, let refreshToken):
            return (session, subject, refreshToken)
        case .rejected(let reused):
            if reused { context.logger.warning("refresh token reused; its session was revoked") }
            throw reused ? refreshReused : invalidRefresh
        }
    }

    static let invalidCredentials = APIError(.badRequest, code: "invalid_grant", message: "Invalid login credentials.")
    static let invalidRefresh = APIError(.badRequest, code: "invalid_grant", message: "The refresh token is invalid or has been revoked.")
    static let refreshReused = APIError(.badRequest, code: "refresh_token_reused", message: "This refresh token was already used; the session has been ended.")
}
