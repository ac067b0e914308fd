import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Passwords
import ServiceKit
import TenantKit

/// A project's administration of its users on `/auth/v1/admin/`, with the project's secret key
/// (Supabase's service-role key), as GoTrue answers `auth.admin` of Supabase's clients:
///
/// | route | answer |
/// |---|---|
/// | `GET users?page=&per_page=` | 200 `{users, aud}` newest first, `X-Total-Count`, `Link` |
/// | `GET users?limit=&cursor=` | 200 `{users, aud, pagination: {next_cursor, has_more}}`, `Link` rel=next |
/// | `POST users` | 200 the user |
/// | `GET users/{id}` | 200 the user; 404 `user_not_found` |
/// | `PUT users/{id}` | 200 the user (metadata merged; a new password or a ban ends the user's sessions) |
/// | `DELETE users/{id}` | 200 `{}` (the user, their sessions and refresh tokens are gone) |
/// | `GET users/{id}/factors` | 200 `[]`: MFA is not enabled |
/// | `DELETE users/{id}/factors/{factor}` | 404 `mfa_factor_not_found` |
///
/// Where the platform is stricter than GoTrue: passwords an admin sets meet the same policy as
/// users' own; every email counts as confirmed (`email_confirm` changes nothing); importing
/// password hashes, custom ids and phone numbers are not enabled (422 `feature_disabled`,
/// 400 `phone_provider_disabled`); a soft delete deletes.
///
/// Listing: GoTrue's two modes. By page number (`page`/`per_page`, what supabase-js and
/// supabase-py send), with `X-Total-Count` and a `Link` to the next and last pages; GoTrue
/// counts the whole table for them on every page, this counts up to 10,000 users and past that
/// gives PostgreSQL's estimate (a total of a million users off by a few per cent is still the
/// right last page to within a few; an exact one would cost a full count per page). By cursor
/// (`limit`/`cursor`, neither `page` nor `per_page`: GoTrue's keyset mode, behind its
/// experimental flag there, always on here): no count, no offset, the next cursor in the body
/// and in `Link`.
struct GoTrueAdminController: Sendable {
    let access: GoTrueAccess
    let users: TenantUserStore
    let hasher: HashingQueue
    let passwords: PasswordPolicy
    let now: @Sendable () -> Date

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.get("/admin/users", use: listUsers)
        group.post("/admin/users", use: createUser)
        group.get("/admin/users/:id", use: getUser)
        group.put("/admin/users/:id", use: updateUser)
        group.delete("/admin/users/:id", use: deleteUser)
        group.get("/admin/users/:id/factors", use: listFactors)
        group.delete("/admin/users/:id/factors/:factor", use: deleteFactor)
    }

    static let totalCountField = HTTPField.Name("X-Total-Count")!
    static let linkField = HTTPField.Name("Link")!

    @Sendable func listUsers(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (tenant, _) = try await access.admin(request)
        let query = request.uri.queryParameters
        let pageMode = [query.get("page"), query.get("per_page")].contains { !($0 ?? "").isEmpty }
        if !pageMode, [query.get("cursor"), query.get("limit")].contains(where: { !($0 ?? "").isEmpty }) {
            return try await listUsersByCursor(request, tenant)
        }
        let page = try Self.pagination(request, "page", default: 1, range: 1...1_000_000)
        let perPage = try Self.pagination(request, "per_page", default: 50, range: 1...1000)
        let list = try await users.list(tenant, page: page, perPage: perPage, newestFirst: true)
        let total = try await users.count(tenant).count
        var headers: HTTPFields = [Self.totalCountField: String(total)]
        // `page` first: supabase-js reads the page number right after the first `=`.
        let lastPage = max(1, (total + perPage - 1) / perPage)
        var links: [String] = []
        if page < lastPage { links.append("</auth/v1/admin/users?page=\(page + 1)&per_page=\(perPage)>; rel=\"next\"") }
        links.append("</auth/v1/admin/users?page=\(lastPage)&per_page=\(perPage)>; rel=\"last\"")
        headers[Self.linkField] = links.joined(separator: ", ")
        return try jsonResponse(GoTrueUserList(users: list.users.map(GoTrueUser.init), aud: GoTrueUser.audience), headers: headers)
    }

    /// GoTrue's keyset mode: `limit` (default 50, at most 1,000) users after `cursor`.
    private func listUsersByCursor(_ request: Request, _ tenant: RegisteredTenant) async throws -> Response {
        let query = request.uri.queryParameters
        var limit = 50
        if let text = query.get("limit"), !text.isEmpty {
            guard let number = Int(text), number > 0 else {
                throw GoTrueError.validation("Bad Pagination Parameters: limit must be greater than 0")
            }
            limit = min(number, 1000)
        }
        var cursor: UserCursor?
        if let text = query.get("cursor"), !text.isEmpty {
            guard let given = UserCursor(token: text) else { throw GoTrueError.validation("Bad Pagination Parameters: invalid cursor") }
            cursor = given
        }
        let list = try await users.list(tenant, after: cursor, limit: limit, newestFirst: true)
        var headers: HTTPFields = [:]
        if let next = list.next {
            headers[Self.linkField] = "</auth/v1/admin/users?cursor=\(next.token)&limit=\(limit)>; rel=\"next\""
        }
        return try jsonResponse(GoTrueUserList(users: list.users.map(GoTrueUser.init), aud: GoTrueUser.audience,
                                               pagination: .init(nextCursor: list.next?.token, hasMore: list.next != nil)),
                                headers: headers)
    }

    @Sendable func createUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (tenant, actor) = try await access.admin(request)
        let input = try await request.decodeJSON(as: GoTrueAdminUser.self, context: context)
        try Self.refuseUnsupported(input)
        guard let rawEmail = GoTrueSessionsController.nonEmpty(input.email) else {
            throw GoTrueError.validation("Cannot create a user without either an email or phone")
        }
        guard let email = try? TenantUserRules.validEmail(rawEmail).lowercased() else { throw GoTrueError.invalidEmail }
        let role = try input.role.map(TenantUserRules.validRole) ?? TenantUserRules.defaultRole
        let metadata = try TenantUserRules.validMetadata(input.userMetadata, field: "user_metadata")
        let appMetadata = try TenantUserRules.validMetadata(input.appMetadata.map(Self.withoutProviderFields), field: "app_metadata")
        let bannedUntil = try input.banDuration.flatMap { try banEnd($0) }
        var hash: String?
        if let password = input.password {
            if let weakness = passwords.weakness(of: password, email: email) { throw GoTrueError.weakPassword(weakness) }
            hash = try await hasher.hash(password)
        }
        do {
            let user = try await users.insert(tenant, email: email, passwordHash: hash, role: role, metadata: metadata,
                                              appMetadata: appMetadata, bannedUntil: bannedUntil) { _ in
                .init(actor: actor, action: "admin.user_created", details: ["role": .string(role)])
            }
            return try jsonResponse(GoTrueUser(user))
        } catch is TenantUserStore.EmailTaken {
            throw GoTrueError.emailExists
        }
    }

    @Sendable func getUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (tenant, _) = try await access.admin(request)
        guard let user = try await users.user(tenant, id: try Self.userID(context)) else { throw GoTrueError.userNotFound }
        return try jsonResponse(GoTrueUser(user))
    }

    @Sendable func updateUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (tenant, actor) = try await access.admin(request)
        let id = try Self.userID(context)
        let input = try await request.decodeJSON(as: GoTrueAdminUser.self, context: context)
        try Self.refuseUnsupported(input)
        var changes = TenantUserStore.Changes()
        if let email = GoTrueSessionsController.nonEmpty(input.email) {
            guard let valid = try? TenantUserRules.validEmail(email) else { throw GoTrueError.invalidEmail }
            changes.email = valid.lowercased()
        }
        changes.role = try input.role.map(TenantUserRules.validRole)
        changes.metadataPatch = try input.userMetadata.map { try TenantUserRules.validMetadata($0, field: "user_metadata") }
        changes.appMetadataPatch = try input.appMetadata.map { try TenantUserRules.validMetadata(Self.withoutProviderFields($0), field: "app_metadata") }
        if let duration = input.banDuration { changes.bannedUntil = .some(try banEnd(duration)) }
        if let password = input.password {
            let email: String
            if let newEmail = changes.email {
                email = newEmail
            } else {
                guard let existing = try await users.user(tenant, id: id) else { throw GoTrueError.userNotFound }
                email = existing.email
            }
            if let weakness = passwords.weakness(of: password, email: email) { throw GoTrueError.weakPassword(weakness) }
            changes.passwordHash = try await hasher.hash(password)
        }
        let user: TenantUser?
        if changes.isEmpty {
            user = try await users.user(tenant, id: id)
        } else {
            do {
                user = try await users.update(tenant, id: id, changes, audit: .init(actor: actor, action: "admin.user_updated"))
            } catch is TenantUserStore.EmailTaken {
                throw GoTrueError.emailExists
            }
        }
        guard let user else { throw GoTrueError.userNotFound }
        return try jsonResponse(GoTrueUser(user))
    }

    /// supabase-py sends `{"should_soft_delete": false}` as the body; either way the user is deleted.
    @Sendable func deleteUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (tenant, actor) = try await access.admin(request)
        guard try await users.delete(tenant, id: try Self.userID(context), audit: .init(actor: actor, action: "admin.user_deleted")) else {
            throw GoTrueError.userNotFound
        }
        return try jsonResponse(JSONValue.emptyObject)
    }

    @Sendable func listFactors(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (tenant, _) = try await access.admin(request)
        guard try await users.user(tenant, id: try Self.userID(context)) != nil else { throw GoTrueError.userNotFound }
        return try jsonResponse([JSONValue]())
    }

    @Sendable func deleteFactor(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        _ = try await access.admin(request)
        _ = try Self.userID(context)
        throw GoTrueError(.notFound, "mfa_factor_not_found", "Factor not found")
    }

    /// When a ban given as a Go duration ends (nil: `"none"`, the ban is lifted), by auth's clock.
    private func banEnd(_ duration: String) throws -> Date? {
        if duration == "none" { return nil }
        guard let seconds = GoDuration.seconds(duration), seconds >= 0, seconds <= 100 * 365 * 86_400 else {
            throw GoTrueError.validation("invalid format for ban duration: \(duration) (a Go duration up to 100 years, such as \"24h\", or \"none\")")
        }
        return seconds == 0 ? nil : now().addingTimeInterval(seconds)
    }

    private static func refuseUnsupported(_ input: GoTrueAdminUser) throws {
        if GoTrueSessionsController.nonEmpty(input.phone) != nil {
            throw GoTrueError(.badRequest, "phone_provider_disabled", "Phone logins are disabled")
        }
        if input.passwordHash != nil {
            throw GoTrueError(.unprocessableContent, "feature_disabled", "Importing password hashes is not enabled")
        }
        if input.id != nil {
            throw GoTrueError(.unprocessableContent, "feature_disabled", "Choosing a user's id is not enabled")
        }
    }

    /// GoTrue keeps `provider` and `providers` itself; an admin's values for them are dropped.
    static func withoutProviderFields(_ metadata: JSONValue) -> JSONValue {
        guard case .object(var fields) = metadata else { return metadata }
        fields["provider"] = nil
        fields["providers"] = nil
        return .object(fields)
    }

    static func userID(_ context: PlatformRequestContext) throws -> UUID {
        guard let id = UUID(uuidString: try context.parameters.require("id")) else {
            throw GoTrueError(.notFound, "validation_failed", "user_id must be an UUID")
        }
        return id
    }

    /// Clients send `page=&per_page=` empty when unset: empty is the default.
    static func pagination(_ request: Request, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = request.uri.queryParameters.get(name), !text.isEmpty else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw GoTrueError.validation("Bad Pagination Parameters: \(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }
}

/// `GET /auth/v1/admin/users`; `pagination` in cursor mode only, as GoTrue.
struct GoTrueUserList: Encodable, Sendable {
    var users: [GoTrueUser]
    var aud: String
    var pagination: CursorPagination?

    struct CursorPagination: Encodable, Sendable {
        var nextCursor: String?
        var hasMore: Bool

        enum CodingKeys: String, CodingKey {
            case nextCursor = "next_cursor"
            case hasMore = "has_more"
        }
    }
}
