import Contracts
import Foundation
import Hummingbird
import Passwords
import ServiceKit
import TenantKit

/// A tenant's administration of its users, on `/v1/tenants/{slug}/admin/…` (secret key only):
///
/// - `GET users?page=&per_page=` (a total, exact up to 10,000 users) or `GET
///   users?cursor=&per_page=` (keyset: nothing counted, nothing skipped over; each page's
///   `next_cursor` continues), `POST users` `{email, password?, role?, metadata?}`;
/// - `GET` / `PUT` / `DELETE users/{id}`; a `PUT` with `ban_seconds` bans (ending the user's
///   sessions) until auth's clock passes `now + ban_seconds`, 0 lifts the ban;
/// - `GET audit?after_seq=&limit=`: the tenant's hash-chained audit log, in order;
///   `GET audit/verify[?full=true]`: verifies the chain from auth's checkpoint on (or all of it)
///   and names the first broken row; rate-limited per tenant (`TenantLimits`).
struct TenantAdminController: Sendable {
    let access: TenantRouteAccess
    let users: TenantUserStore
    let limits: TenantLimits
    let hasher: HashingQueue
    let passwords: PasswordPolicy
    let now: @Sendable () -> Date

    func addRoutes(to router: Router<PlatformRequestContext>) {
        let admin = router.group("/v1/tenants/:slug/admin")
        admin.get("/users", use: listUsers)
        admin.post("/users", use: createUser)
        admin.get("/users/:id", use: getUser)
        admin.put("/users/:id", use: updateUser)
        admin.delete("/users/:id", use: deleteUser)
        admin.get("/audit", use: audit)
        admin.get("/audit/verify", use: verifyAudit)
    }

    @Sendable func listUsers(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (_, tenant) = try await access.authenticate(request, context, requiring: .secretKey)
        let perPage = try Self.intParameter(request, "per_page", default: 50, range: 1...1000)
        if let cursorText = request.uri.queryParameters.get("cursor") {
            guard request.uri.queryParameters.get("page") == nil else {
                throw APIError.validation(field: "cursor", "Give page or cursor, not both.")
            }
            var cursor: UserCursor?
            if !cursorText.isEmpty {
                guard let given = UserCursor(token: cursorText) else {
                    throw APIError.validation(field: "cursor", "cursor must be a next_cursor this API returned.")
                }
                cursor = given
            }
            let list = try await users.list(tenant, after: cursor, limit: perPage)
            return try jsonResponse(TenantUserPage(users: list.users, page: nil, perPage: perPage, total: nil, nextCursor: list.next?.token))
        }
        let page = try Self.intParameter(request, "page", default: 1, range: 1...1_000_000)
        let list = try await users.list(tenant, page: page, perPage: perPage)
        let total = try await users.count(tenant)
        return try jsonResponse(TenantUserPage(users: list.users, page: page, perPage: perPage, total: total.count,
                                               totalEstimated: total.estimated, nextCursor: list.next?.token))
    }

    @Sendable func createUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await access.authenticate(request, context, requiring: .secretKey)
        let input = try await request.decodeJSON(as: AdminUserCreate.self, context: context)
        let email = try TenantUserRules.validEmail(input.email)
        let role = try input.role.map(TenantUserRules.validRole) ?? TenantUserRules.defaultRole
        let metadata = try TenantUserRules.validMetadata(input.metadata)
        var hash: String?
        if let password = input.password {
            try passwords.validate(password, email: email)
            hash = try await hasher.hash(password)
        }
        let user = try await TenantUserRules.uniqueEmail {
            try await users.insert(tenant, email: email, passwordHash: hash, role: role, metadata: metadata) { _ in
                .init(actor: principal.actor, action: "admin.user_created", details: ["role": .string(role)])
            }
        }
        return try jsonResponse(user, status: .created)
    }

    @Sendable func getUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (_, tenant) = try await access.authenticate(request, context, requiring: .secretKey)
        guard let user = try await users.user(tenant, id: try Self.userID(context)) else { throw APIError.notFound("user") }
        return try jsonResponse(user)
    }

    @Sendable func updateUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await access.authenticate(request, context, requiring: .secretKey)
        let id = try Self.userID(context)
        let input = try await request.decodeJSON(as: AdminUserUpdate.self, context: context)
        var changes = TenantUserStore.Changes()
        changes.email = try input.email.map(TenantUserRules.validEmail)
        changes.role = try input.role.map(TenantUserRules.validRole)
        changes.metadata = try input.metadata.map { try TenantUserRules.validMetadata($0) }
        if let seconds = input.banSeconds {
            guard (0...(100 * 365 * 86_400)).contains(seconds) else {
                throw APIError.validation(field: "ban_seconds", "ban_seconds must be 0 (lift the ban) to 100 years.")
            }
            changes.bannedUntil = .some(seconds == 0 ? nil : now().addingTimeInterval(Double(seconds)))
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
        let updated = try await TenantUserRules.uniqueEmail {
            try await users.update(tenant, id: id, changes, audit: .init(actor: principal.actor, action: "admin.user_updated"))
        }
        guard let updated else { throw APIError.notFound("user") }
        return try jsonResponse(updated)
    }

    @Sendable func deleteUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await access.authenticate(request, context, requiring: .secretKey)
        guard try await users.delete(tenant, id: try Self.userID(context), audit: .init(actor: principal.actor, action: "admin.user_deleted")) else {
            throw APIError.notFound("user")
        }
        return Response(status: .noContent)
    }

    @Sendable func audit(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (_, tenant) = try await access.authenticate(request, context, requiring: .secretKey)
        let after = try Self.intParameter(request, "after_seq", default: 0, range: 0...Int(Int64.max))
        let limit = try Self.intParameter(request, "limit", default: 100, range: 1...1000)
        // One more than asked tells whether a next page exists.
        let entries = try await users.auditLog.entries(tenant, afterSeq: after, limit: limit + 1)
        let page = Array(entries.prefix(limit))
        return try jsonResponse(AuditPage(entries: page, nextAfterSeq: entries.count > limit ? page.last?.seq : nil))
    }

    @Sendable func verifyAudit(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (_, tenant) = try await access.authenticate(request, context, requiring: .secretKey)
        let full = try Self.boolParameter(request, "full")
        let decision = try limits.checkAuditVerification(tenant.id, full: full)
        let verification = try await users.auditLog.verify(tenant, full: full)
        if !verification.valid {
            context.logger.error("tenant audit chain broken", metadata: [
                "tenant.id": "\(tenant.id.uuidString.lowercased())", "audit.first_broken_id": "\(verification.firstBrokenId ?? 0)",
                "audit.reason": "\(verification.reason ?? "")",
            ])
        }
        return try jsonResponse(verification, headers: decision.headers)
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

    static func boolParameter(_ request: Request, _ name: String) throws -> Bool {
        switch request.uri.queryParameters.get(name) {
        case nil, "false": false
        case "true": true
        default: throw APIError.validation(field: name, "\(name) must be true or false.")
        }
    }
}
