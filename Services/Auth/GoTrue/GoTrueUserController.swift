import Contracts
import Foundation
import Hummingbird
import Passwords
import ServiceKit
import TenantKit

/// The signed-in user on `/auth/v1/user` (the project's key and the user's access token):
///
/// - `GET` → the user, in GoTrue's shape;
/// - `PUT` `{email?, password?, data?}` → the updated user. `data` is merged into
///   `user_metadata` key by key (`null` removes a key); a new password must differ from the
///   current one and ends the user's other sessions; a new email applies at once (GoTrue would
///   mail a confirmation first; the platform sends no mail). `app_metadata` is the admin's
///   (403 `not_admin`), phone numbers are not enabled.
struct GoTrueUserController: Sendable {
    let access: GoTrueAccess
    let users: TenantUserStore
    let hasher: HashingQueue
    let passwords: PasswordPolicy

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.get("/user", use: currentUser)
        group.put("/user", use: updateCurrentUser)
    }

    @Sendable func currentUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try jsonResponse(GoTrueUser(try await access.user(request).user))
    }

    @Sendable func updateCurrentUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (tenant, current, claims) = try await access.user(request)
        let input = try await request.decodeJSON(as: GoTrueUserUpdate.self, context: context)
        guard input.appMetadata == nil else { throw GoTrueError(.forbidden, "not_admin", "Updating app_metadata requires admin privileges") }
        if GoTrueSessionsController.nonEmpty(input.phone) != nil {
            throw GoTrueError(.badRequest, "phone_provider_disabled", "Phone logins are disabled")
        }
        var changes = TenantUserStore.Changes()
        if let email = GoTrueSessionsController.nonEmpty(input.email),
           TenantUserStore.normalized(email) != TenantUserStore.normalized(current.email) {
            guard let valid = try? TenantUserRules.validEmail(email) else { throw GoTrueError.invalidEmail }
            changes.email = valid.lowercased()
        }
        if let password = input.password {
            if let weakness = passwords.weakness(of: password, email: changes.email ?? current.email) { throw GoTrueError.weakPassword(weakness) }
            if let hash = try await users.passwordHash(tenant, id: current.id), try await hasher.verify(password, against: hash) {
                throw GoTrueError(.unprocessableContent, "same_password", "New password should be different from the old password.")
            }
            changes.passwordHash = try await hasher.hash(password)
        }
        if let data = input.data {
            changes.metadataPatch = try TenantUserRules.validMetadata(data, field: "data")
        }
        guard !changes.isEmpty else { return try jsonResponse(GoTrueUser(current)) }
        let updated: TenantUser?
        do {
            updated = try await users.update(tenant, id: current.id, changes, keepSession: claims.sessionID,
                                             audit: .init(actor: "user:" + current.id.uuidString.lowercased(), action: "user.updated"))
        } catch is TenantUserStore.EmailTaken {
            throw GoTrueError.emailExists
        }
        guard let updated else { throw GoTrueError(.forbidden, "user_not_found", "User from sub claim in JWT does not exist") }
        return try jsonResponse(GoTrueUser(updated))
    }
}
