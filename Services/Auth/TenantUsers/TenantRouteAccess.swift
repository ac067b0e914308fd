import Contracts
import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// Who calls a route under `/v1/tenants/{slug}/`, checked the same way for all three tenant
/// users' controllers (sessions, the signed-in user, admin): `TenantAuthenticator` answers 401
/// without valid credentials and 403 for another tenant's, then the path's tenant is read.
struct TenantRouteAccess: Sendable {
    let authenticator: TenantAuthenticator
    let registry: TenantRegistry

    /// The caller and the tenant of the path (its credentials prove it exists).
    func authenticate(_ request: Request, _ context: PlatformRequestContext,
                      requiring access: TenantAccess) async throws -> (TenantPrincipal, RegisteredTenant) {
        let slug = try context.parameters.require("slug")
        let principal = try await authenticator.authenticate(request, slug: slug, requiring: access)
        guard let tenant = try await registry.tenant(slug: slug) else {
            throw APIError(.unauthorized, code: "invalid_api_key", message: "The API key is invalid or has been revoked.")
        }
        return (principal, tenant)
    }

    /// A valid token of the tenant that names no user (or not a live one).
    static let notAUser = APIError.unauthorized("The token does not name a user of this project.")
}
