import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Passwords
import ServiceKit
import TenantKit

/// A tenant's end users, on `/v1/tenants/{slug}/…`. Every route but the JWKS needs the tenant's
/// credentials (`TenantAuthenticator`: 401 without valid ones, 403 for another tenant's):
///
/// | route | needs |
/// |---|---|
/// | `POST signup` `{email, password, metadata?}` → 201 tokens (per-address rate limit) | API key |
/// | `POST token?grant_type=password` / `refresh_token` → tokens | API key |
/// | `GET user`, `PUT user` `{email?, password?, metadata?}` | API key + user token |
/// | `POST logout?scope=local\|global` → 204 | API key + user token |
/// | `GET admin/users?page=&per_page=`, `POST admin/users` | secret key |
/// | `GET` / `PUT` / `DELETE admin/users/{id}` | secret key |
/// | `GET admin/audit?after_seq=&limit=`, `GET admin/audit/verify` | secret key |
/// | `GET .well-known/jwks.json`: the public keys of the tenant's user tokens | nothing |
///
/// `POST /internal/v1/tenants/{id}/signing-keys/rotate` (service token) rotates a tenant's key.
/// Sign-in answers, like developers', never say whether the email exists; users sign up
/// without email confirmation and get a session at once.
struct TenantUsersController: Sendable {
    let users: TenantUserStore
    let registry: TenantRegistry
    let authenticator: TenantAuthenticator
    let keyring: SigningKeyring
    let sessions: SessionStore
    let hasher: PasswordHasher
    let passwords: PasswordPolicy
    let settings: TokenSettings
    let limits: TokenRateLimits

    func addRoutes(to router: Router<PlatformRequestContext>, internal internalGroup: RouterGroup<PlatformRequestContext>) {
        let tenant = router.group("/v1/tenants/:slug")
        tenant.get("/.well-known/jwks.json", use: jwks)
        tenant.post("/signup", use: signup)
        tenant.post("/token", use: token)
        tenant.get("/user", use: currentUser)
        tenant.put("/user", use: updateCurrentUser)
        tenant.post("/logout", use: logout)
        tenant.get("/admin/users", use: listUsers)
        tenant.post("/admin/users", use: createUser)
        tenant.get("/admin/users/:id", use: getUser)
        tenant.put("/admin/users/:id", use: updateUser)
        tenant.delete("/admin/users/:id", use: deleteUser)
        tenant.get("/admin/audit", use: audit)
        tenant.get("/admin/audit/verify", use: verifyAudit)
        internalGroup.post("/v1/tenants/:id/signing-keys/rotate", use: rotate)
    }

    // MARK: Public

    @Sendable func jwks(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let slug = try context.parameters.require("slug")
        guard ProjectSlug.isValid(slug), let tenant = try await registry.tenant(slug: slug) else { throw APIError.notFound("project") }
        return try jsonResponse(try await keyring.tenant(tenant.id).jwks(), headers: [.cacheControl: "public, max-age=60"])
    }

    /// Counted against the per-address token limit: the publishable key is public, so signups
    /// (each an argon2id hash) must not be free to repeat.
    @Sendable func signup(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await limits.limited(request, context) { try await createSignedUpUser(request, context) }
    }

    private func createSignedUpUser(_ request: Request, _ context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await authenticate(request, context, requiring: .apiKey)
        let input = try await request.decodeJSON(as: TenantSignup.self, context: context)
        let email = try Self.validEmail(input.email)
        try passwords.validate(input.password, email: email)
        let metadata = try Self.validMetadata(input.metadata)
        let hash = try await hasher.hash(input.password)
        let user: TenantUser
        do {
            user = try await users.insert(tenant, email: email, passwordHash: hash, role: Self.defaultRole, metadata: metadata) { user in
                .init(actor: "user:" + user.id.uuidString.lowercased(), action: "user.signed_up",
                      details: ["via": .string(principal.actor)])
            }
        } catch is TenantUserStore.EmailTaken {
            throw Self.emailTaken
        }
        return try await issue(user, tenant: tenant, status: .created)
    }

    @Sendable func token(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await limits.limited(request, context) {
            let (_, tenant) = try await authenticate(request, context, requiring: .apiKey)
            switch request.uri.queryParameters.get("grant_type") {
            case "password":
                let grant = try await request.decodeJSON(as: PasswordGrant.self, context: context)
                try limits.checkAccount("tenant:\(tenant.id.uuidString.lowercased()):" + TenantUserStore.normalized(grant.email))
                let found = try await users.credentials(tenant, email: grant.email)
                guard let found, let hash = found.passwordHash else {
                    await hasher.verifyDummy(grant.password)
                    throw TokenController.invalidCredentials
                }
                guard await hasher.verify(grant.password, against: hash) else { throw TokenController.invalidCredentials }
                try Self.checkNotBanned(found.user)
                let actor = "user:" + found.user.id.uuidString.lowercased()
                guard let user = try await users.recordSignIn(tenant, id: found.user.id, audit: .init(actor: actor, action: "user.signed_in")) else {
                    throw TokenController.invalidCredentials
                }
                return try await issue(user, tenant: tenant)
            case "refresh_token":
                let grant = try await request.decodeJSON(as: RefreshGrant.self, context: context)
                let (session, subject, refreshToken) = try await TokenController.rotate(grant, sessions: sessions, tenant: tenant.id, context: context)
                guard let id = subject.user, let user = try await users.user(tenant, id: id) else { throw TokenController.invalidRefresh }
                try Self.checkNotBanned(user)
                return try await issue(user, tenant: tenant, session: (session, refreshToken))
            default:
                throw APIError.validation(field: "grant_type", "grant_type must be password or refresh_token.")
            }
        }
    }

    // MARK: The signed-in user

    @Sendable func currentUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await authenticate(request, context, requiring: [.apiKey, .user])
        return try jsonResponse(try await signedInUser(principal, tenant))
    }

    @Sendable func updateCurrentUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await authenticate(request, context, requiring: [.apiKey, .user])
        let current = try await signedInUser(principal, tenant)
        let input = try await request.decodeJSON(as: TenantUserUpdate.self, context: context)
        var changes = TenantUserStore.Changes()
        changes.email = try input.email.map(Self.validEmail)
        if let password = input.password {
            try passwords.validate(password, email: changes.email ?? current.email)
            changes.passwordHash = try await hasher.hash(password)
        }
        changes.metadata = try input.metadata.map { try Self.validMetadata($0) }
        guard !changes.isEmpty else { return try jsonResponse(current) }
        return try jsonResponse(try await update(tenant, id: current.id, changes, keepSession: principal.user?.sessionID,
                                                 audit: .init(actor: principal.actor, action: "user.updated")))
    }

    @Sendable func logout(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await authenticate(request, context, requiring: [.apiKey, .user])
        let scope = request.uri.queryParameters.get("scope") ?? "local"
        guard scope == "local" || scope == "global" else { throw APIError.validation(field: "scope", "scope must be local or global.") }
        guard let claims = principal.user, let session = claims.sessionID, let user = claims.userID else { throw Self.notAUser }
        try await sessions.revoke(session: session, everywhere: scope == "global")
        try await users.record(tenant, target: user, audit: .init(actor: principal.actor, action: "user.signed_out",
                                                                   details: ["scope": .string(scope)]))
        return Response(status: .noContent)
    }

    // MARK: Admin (secret key)

    @Sendable func listUsers(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (_, tenant) = try await authenticate(request, context, requiring: .secretKey)
        let page = try Self.intParameter(request, "page", default: 1, range: 1...1_000_000)
        let perPage = try Self.intParameter(request, "per_page", default: 50, range: 1...1000)
        let (list, total) = try await users.list(tenant, page: page, perPage: perPage)
        return try jsonResponse(TenantUserPage(users: list, page: page, perPage: perPage, total: total))
    }

    @Sendable func createUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await authenticate(request, context, requiring: .secretKey)
        let input = try await request.decodeJSON(as: AdminUserCreate.self, context: context)
        let email = try Self.validEmail(input.email)
        let role = try input.role.map(Self.validRole) ?? Self.defaultRole
        let metadata = try Self.validMetadata(input.metadata)
        var hash: String?
        if let password = input.password {
            try passwords.validate(password, email: email)
            hash = try await hasher.hash(password)
        }
        do {
            let user = try await users.insert(tenant, email: email, passwordHash: hash, role: role, metadata: metadata) { _ in
                .init(actor: principal.actor, action: "admin.user_created", details: ["role": .string(role)])
            }
            return try jsonResponse(user, status: .created)
        } catch is TenantUserStore.EmailTaken {
            throw Self.emailTaken
        }
    }

    @Sendable func getUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (_, tenant) = try await authenticate(request, context, requiring: .secretKey)
        guard let user = try await users.user(tenant, id: try Self.userID(context)) else { throw APIError.notFound("user") }
        return try jsonResponse(user)
    }

    @Sendable func updateUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await authenticate(request, context, requiring: .secretKey)
        let id = try Self.userID(context)
        let input = try await request.decodeJSON(as: AdminUserUpdate.self, context: context)
        var changes = TenantUserStore.Changes()
        changes.email = try input.email.map(Self.validEmail)
        changes.role = try input.role.map(Self.validRole)
        changes.metadata = try input.metadata.map { try Self.validMetadata($0) }
        if let seconds = input.banSeconds {
            guard (0...(100 * 365 * 86_400)).contains(seconds) else {
                throw APIError.validation(field: "ban_seconds", "ban_seconds must be 0 (lift the ban) to 100 years.")
            }
            changes.bannedUntil = .some(seconds == 0 ? nil : Date().addingTimeInterval(Double(seconds)))
        }
        if let password = input.password {
            let email: String
            if let newEmail = changes.email {
                email = newEmail
            } else {
                guard let existing = try await users.user(tenant, id: id) else { throw APIError.notFound("user") }
                email = existing.email
            }
            try passwords.validate(password, email: email)
            changes.passwordHash = try await hasher.hash(password)
        }
        guard !changes.isEmpty else {
            guard let user = try await users.user(tenant, id: id) else { throw APIError.notFound("user") }
            return try jsonResponse(user)
        }
        return try jsonResponse(try await update(tenant, id: id, changes, audit: .init(actor: principal.actor, action: "admin.user_updated")))
    }

    @Sendable func deleteUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await authenticate(request, context, requiring: .secretKey)
        guard try await users.delete(tenant, id: try Self.userID(context), audit: .init(actor: principal.actor, action: "admin.user_deleted")) else {
            throw APIError.notFound("user")
        }
        return Response(status: .noContent)
    }

    @Sendable func audit(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (_, tenant) = try await authenticate(request, context, requiring: .secretKey)
        let after = try Self.intParameter(request, "after_seq", default: 0, range: 0...Int(Int64.max))
        let limit = try Self.intParameter(request, "limit", default: 100, range: 1...1000)
        // One more than asked tells whether a next page exists.
        let entries = try await users.audit(tenant, afterSeq: after, limit: limit + 1)
        let page = Array(entries.prefix(limit))
        return try jsonResponse(AuditPage(entries: page, nextAfterSeq: entries.count > limit ? page.last?.seq : nil))
    }

    @Sendable func verifyAudit(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (_, tenant) = try await authenticate(request, context, requiring: .secretKey)
        let verification = try await users.verifyAudit(tenant)
        if !verification.valid {
            context.logger.error("tenant audit chain broken", metadata: [
                "tenant.id": "\(tenant.id.uuidString.lowercased())", "audit.first_broken_id": "\(verification.firstBrokenId ?? 0)",
            ])
        }
        return try jsonResponse(verification)
    }

    @Sendable func rotate(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let id = try TenantRegistryController.tenantID(context)
        guard try await registry.tenant(id: id) != nil else { throw APIError.notFound("tenant") }
        let kid = try await keyring.tenant(id).rotate()
        context.logger.info("tenant signing key rotated", metadata: ["tenant.id": "\(id.uuidString.lowercased())", "jwt.kid": "\(kid)"])
        return try jsonResponse(RotatedSigningKey(kid: kid), status: .created)
    }

    // MARK: Helpers

    /// The caller, checked, and the tenant of the path (its credentials prove it exists).
    private func authenticate(_ request: Request, _ context: PlatformRequestContext,
                              requiring access: TenantAccess) async throws -> (TenantPrincipal, RegisteredTenant) {
        let slug = try context.parameters.require("slug")
        let principal = try await authenticator.authenticate(request, slug: slug, requiring: access)
        guard let tenant = try await registry.tenant(slug: slug) else {
            throw APIError(.unauthorized, code: "invalid_api_key", message: "The API key is invalid or has been revoked.")
        }
        return (principal, tenant)
    }

    private func signedInUser(_ principal: TenantPrincipal, _ tenant: RegisteredTenant) async throws -> TenantUser {
        guard let id = principal.user?.userID, let user = try await users.user(tenant, id: id) else { throw Self.notAUser }
        return user
    }

    private func update(_ tenant: RegisteredTenant, id: UUID, _ changes: TenantUserStore.Changes, keepSession: UUID? = nil,
                        audit: TenantUserStore.Audit) async throws -> TenantUser {
        do {
            guard let user = try await users.update(tenant, id: id, changes, keepSession: keepSession, audit: audit) else {
                throw APIError.notFound("user")
            }
            return user
        } catch is TenantUserStore.EmailTaken {
            throw Self.emailTaken
        }
    }

    private func issue(_ user: TenantUser, tenant: RegisteredTenant, status: HTTPResponse.Status = .ok,
                       session existing: (UUID, String)? = nil) async throws -> Response {
        let session: UUID, refreshToken: String
        if let existing {
            (session, refreshToken) = existing
        } else {
            (session, refreshToken) = try await sessions.open(.tenantUser(tenant: tenant.id, user: user.id))
        }
        let claims = TenantUserClaims(user: user.id, session: session, slug: tenant.slug, tenant: tenant.id, role: user.role,
                                      email: user.email, issuedAt: Date(), lifetime: settings.accessTokenTTL)
        let access = try await keyring.tenant(tenant.id).sign(claims)
        return try jsonResponse(TenantTokenResponse(accessToken: access, expiresIn: Int(settings.accessTokenTTL.components.seconds),
                                                    refreshToken: refreshToken, user: user),
                                status: status, headers: [.cacheControl: "no-store"])
    }

    static let defaultRole = "authenticated"
    static let emailTaken = APIError.conflict(code: "email_taken", "A user with this email already exists.")
    static let notAUser = APIError.unauthorized("The token does not name a user of this project.")

    static func checkNotBanned(_ user: TenantUser) throws {
        if let until = user.bannedUntil, until > Date() {
            throw APIError(.badRequest, code: "user_banned", message: "This user is banned.")
        }
    }

    static func validEmail(_ raw: String) throws -> String {
        let email = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard RegistrationController.isPlausibleEmail(email) else { throw APIError.validation(field: "email", "The email address is not valid.") }
        return email
    }

    /// A role is a lowercase identifier (it travels in the token's `role` claim).
    static func validRole(_ role: String) throws -> String {
        guard (1...63).contains(role.utf8.count), let first = role.utf8.first, (0x61...0x7A).contains(first),
              role.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "_") })
        else { throw APIError.validation(field: "role", "The role must be 1 to 63 lowercase letters, digits or underscores, starting with a letter.") }
        return role
    }

    /// A JSON object of at most 16 KiB.
    static func validMetadata(_ metadata: JSONValue?) throws -> JSONValue {
        guard let metadata else { return .emptyObject }
        guard metadata.isObject else { throw APIError.validation(field: "metadata", "metadata must be a JSON object.") }
        guard let size = try? JSONEncoder().encode(metadata).count, size <= 16 * 1024 else {
            throw APIError.validation(field: "metadata", "metadata must be at most 16 KiB of JSON.")
        }
        return metadata
    }

    static func userID(_ context: PlatformRequestContext) throws -> UUID {
        guard let id = UUID(uuidString: try context.parameters.require("id")) else { throw APIError.notFound("user") }
        return id
    }

    static func intParameter(_ request: Request, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = request.uri.queryParameters.get(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError.validation(field: name, "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound).")
        }
        return number
    }
}
