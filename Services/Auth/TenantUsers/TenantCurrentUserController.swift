import Contracts
import Foundation
import Hummingbird
import Passwords
import ServiceKit
import TenantKit

/// The signed-in user of a tenant, on `/v1/tenants/{slug}/user` (API key + the user's token):
/// `GET` → the user; `PUT` `{email?, password?, metadata?}` → the updated user. A new password
/// ends the user's other sessions, not this one.
struct TenantCurrentUserController: Sendable {
    let access: TenantRouteAccess
    let users: TenantUserStore
    let hasher: HashingQueue
    let passwords: PasswordPolicy

    func addRoutes(to router: Router<PlatformRequestContext>) {
        let tenant = router.group("/v1/tenants/:slug")
        tenant.get("/user", use: currentUser)
        tenant.put("/user", use: updateCurrentUser)
    }

    @Sendable func currentUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await access.authenticate(request, context, requiring: [.apiKey, .user])
        return try jsonResponse(try await signedInUser(principal, tenant))
    }

    @Sendable func updateCurrentUser(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let (principal, tenant) = try await access.authenticate(request, context, requiring: [.apiKey, .user])
        let current = try await signedInUser(principal, tenant)
        let input = try await request.decodeJSON(as: TenantUserUpdate.self, context: context)
        var changes = TenantUserStore.Changes()
        changes.email = try input.email.map(TenantUserRules.validEmail)
        if let password = input.password {
            try passwords.validate(password, email: changes.email ?? current.email)
            changes.passwordHash = try await hasher.hash(password)
        }
        changes.metadata = try input.metadata.map { try TenantUserRules.validMetadata($0) }
        guard !changes.isEmpty else { return try jsonResponse(current) }
        let updated = try await TenantUserRules.uniqueEmail {
            try await users.update(tenant, id: current.id, changes, keepSession: principal.user?.sessionID,
                                   audit: .init(actor: principal.actor, action: "user.updated"))
        }
        guard let updated else { throw APIError.notFound("user") }
        return try jsonResponse(updated)
    }

    private func signedInUser(_ principal: TenantPrincipal, _ tenant: RegisteredTenant) async throws -> TenantUser {
        guard let id = principal.user?.userID, let user = try await users.user(tenant, id: id) else { throw TenantRouteAccess.notAUser }
        return user
    }
}
