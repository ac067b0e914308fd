import Contracts
import Foundation
import Hummingbird
import Passwords
import ServiceKit
import TenantKit

/// A project's users signing up, in and out on `/auth/v1/`, as GoTrue answers Supabase's
/// clients (docs/protocols/gotrue-reference.md §4); the project comes from the `apikey`:
///
/// | route | answer |
/// |---|---|
/// | `POST signup` `{email, password, data?}` | 200 session (every address counts as confirmed) |
/// | `POST token?grant_type=password` `{email, password}` | 200 session |
/// | `POST token?grant_type=refresh_token` `{refresh_token}` | 200 session, the refresh token rotated |
/// | `POST logout?scope=global\|local\|others` (user token) | 204 |
/// | `GET settings` | which sign-in methods are enabled |
/// | `GET .well-known/jwks.json` (key or host) | the project's public signing keys |
///
/// The flows are the platform's own (`TokenIssuer`: rate limits, equal work for unknown and
/// known emails, rotation with reuse detection; `TenantUserStore` with its audit rows); only
/// the words differ from `/v1/tenants/{slug}/…`. Grants GoTrue has and the platform does not
/// (`pkce`, `id_token`, `web3`) answer GoTrue's own "not enabled" errors.
struct GoTrueSessionsController: Sendable {
    let access: GoTrueAccess
    let issuer: TokenIssuer
    let users: TenantUserStore
    let keyring: SigningKeyring
    let hasher: HashingQueue
    let passwords: PasswordPolicy

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.post("/signup", use: signup)
        group.post("/token", use: token)
        group.post("/logout", use: logout)
        group.get("/settings", use: settings)
        group.get("/.well-known/jwks.json", use: jwks)
    }

    /// Counted against the per-address limit, as the platform's signup is: each is an argon2id hash.
    @Sendable func signup(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await issuer.limits.limited(request, context) {
            let tenant = try await access.tenant(request)
            let input = try await request.decodeJSON(as: GoTrueSignup.self, context: context)
            let email = Self.nonEmpty(input.email), phone = Self.nonEmpty(input.phone)
            guard email != nil || phone != nil else {
                throw GoTrueError(.unprocessableContent, "anonymous_provider_disabled", "Anonymous sign-ins are disabled")
            }
            guard let password = input.password, !password.isEmpty else { throw GoTrueError.validation("Signup requires a valid password") }
            if let weakness = passwords.weakness(of: password, email: email) { throw GoTrueError.weakPassword(weakness) }
            guard phone == nil || email == nil else {
                throw GoTrueError.validation("Only an email address or phone number should be provided on signup.")
            }
            guard let email else { throw GoTrueError(.badRequest, "phone_provider_disabled", "Phone signups are disabled") }
            guard let valid = try? TenantUserRules.validEmail(email) else { throw GoTrueError.invalidEmail }
            // GoTrue keeps the address lower-cased, and copies the verified identity's flag into
            // the new user's metadata.
            guard case .object(var fields) = try TenantUserRules.validMetadata(input.data, field: "data") else {
                throw GoTrueError.validation("data must be a JSON object")
            }
            fields["email_verified"] = .bool(true)
            let hash = try await hasher.hash(password, lane: .newAccount)
            let user: TenantUser
            do {
                user = try await users.insert(tenant, email: valid.lowercased(), passwordHash: hash, role: TenantUserRules.defaultRole,
                                              metadata: .object(fields), signedIn: true) { user in
                    .init(actor: "user:" + user.id.uuidString.lowercased(), action: "user.signed_up", details: ["via": .string("auth/v1")])
                }
            } catch is TenantUserStore.EmailTaken {
                throw GoTrueError(.unprocessableContent, "user_already_exists", "User already registered")
            }
            return try Self.session(try await issuer.open(user, of: accounts(tenant)))
        }
    }

    @Sendable func token(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await issuer.limits.limited(request, context) {
            let grantType = request.uri.queryParameters.get("grant_type") ?? ""
            let accounts = accounts(try await access.tenant(request))
            do {
                switch grantType {
                case "password":
                    let input = try await request.decodeJSON(as: GoTruePasswordGrant.self, context: context)
                    let email = Self.nonEmpty(input.email), phone = Self.nonEmpty(input.phone)
                    guard phone == nil || email == nil else {
                        throw GoTrueError.validation("Only an email address or phone number should be provided on login.")
                    }
                    if phone != nil { throw GoTrueError(.unprocessableContent, "phone_provider_disabled", "Phone logins are disabled") }
                    guard let email else { throw GoTrueError.validation("missing email or phone") }
                    return try Self.session(try await issuer.signIn(email: email, password: input.password ?? "", accounts))
                case "refresh_token":
                    let input = try await request.decodeJSON(as: GoTrueRefreshGrant.self, context: context)
                    guard let token = input.refreshToken, (12...512).contains(token.utf8.count) else {
                        throw GoTrueError.validation("Refresh token is not valid")
                    }
                    return try Self.session(try await issuer.refresh(token, accounts, context))
                case "pkce":
                    throw GoTrueError(.notFound, "flow_state_not_found", "invalid flow state, no valid flow state found")
                case "id_token":
                    throw GoTrueError(.badRequest, "provider_disabled", "Provider is not enabled")
                case "web3":
                    throw GoTrueError(.unprocessableContent, "web3_provider_disabled", "Web3 provider is disabled")
                default:
                    throw GoTrueError(.badRequest, "invalid_credentials", "unsupported_grant_type")
                }
            } catch let refusal as TokenIssuer.Refusal {
                throw GoTrueError(refused: refusal, refreshing: grantType == "refresh_token")
            }
        }
    }

    /// Clients treat 401, 403 and 404 here as "already signed out".
    @Sendable func logout(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (tenant, user, claims) = try await access.user(request)
        let requested = request.uri.queryParameters.get("scope") ?? ""
        guard let scope = requested.isEmpty ? .global : SessionStore.LogoutScope(rawValue: requested) else {
            throw GoTrueError.validation("Unsupported logout scope \"\(requested)\"")
        }
        guard let session = claims.sessionID else { throw GoTrueError.badJWT("token names no session") }
        try await issuer.sessions.revoke(session: session, scope: scope)
        try await users.record(tenant, target: user.id, audit: .init(actor: "user:" + user.id.uuidString.lowercased(),
                                                                     action: "user.signed_out", details: ["scope": .string(scope.rawValue)]))
        return Response(status: .noContent)
    }

    /// Needs the project's key like every route, though nothing in it is the project's own.
    @Sendable func settings(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        _ = try await access.tenant(request)
        return try jsonResponse(GoTrueSettings())
    }

    /// Public: the host alone may name the project. Clients cache it for ten minutes; a
    /// rotated-out key stays listed as long as tokens it signed live.
    @Sendable func jwks(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let tenant = try await access.tenant(request, requireKey: false)
        return try jsonResponse(try await keyring.tenant(tenant.id).jwks(), headers: [.cacheControl: "public, max-age=600"])
    }

    private func accounts(_ tenant: RegisteredTenant) -> TenantUserAccounts {
        TenantUserAccounts(tenant: tenant, users: users, keys: keyring.tenant(tenant.id))
    }

    static func session(_ issued: TokenIssuer.Issued<TenantUser>) throws -> Response {
        try jsonResponse(GoTrueSession(issued), headers: [.cacheControl: "no-store"])
    }

    /// A field clients send empty when unset counts as absent.
    static func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        return value
    }
}

/// `GET /auth/v1/settings`: email and password sign-ins only, every address confirmed at once.
struct GoTrueSettings: Encodable, Sendable {
    var external: [String: Bool] = Dictionary(uniqueKeysWithValues: [
        "anonymous_users", "apple", "azure", "bitbucket", "discord", "facebook", "snapchat", "figma", "fly", "github", "gitlab",
        "google", "keycloak", "kakao", "linkedin", "linkedin_oidc", "notion", "spotify", "slack", "slack_oidc", "workos", "twitch",
        "twitter", "phone", "zoom",
    ].map { ($0, false) } + [("email", true)])
    var disableSignup = false
    var mailerAutoconfirm = true
    var phoneAutoconfirm = false
    var smsProvider = ""
    var samlEnabled = false
    var passkeysEnabled = false

    enum CodingKeys: String, CodingKey {
        case external
        case disableSignup = "disable_signup"
        case mailerAutoconfirm = "mailer_autoconfirm"
        case phoneAutoconfirm = "phone_autoconfirm"
        case smsProvider = "sms_provider"
        case samlEnabled = "saml_enabled"
        case passkeysEnabled = "passkeys_enabled"
    }
}
