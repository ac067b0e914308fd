import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// `GET /v1/tenants/{slug}/limits`: the limits this service keeps for the tenant (realtime's
/// connection and message limits, storage's quota), for any valid credential of the tenant
/// (publishable or secret key, or a user's token); 401/403 as `TenantAuthenticator` decides.
public struct TenantLimitsController: Sendable {
    let registry: TenantRegistry
    let authenticator: TenantAuthenticator
    /// The integer columns of `<schema>.tenants` to show.
    let columns: [String]

    public init(registry: TenantRegistry, authenticator: TenantAuthenticator, columns: [String]) {
        self.registry = registry
        self.authenticator = authenticator
        self.columns = columns
    }

    public func addRoutes(to router: Router<PlatformRequestContext>) {
        router.get("/v1/tenants/:slug/limits") { request, context in
            let slug = try context.parameters.require("slug")
            _ = try await authenticator.authenticate(request, slug: slug)
            // Valid credentials of a project this service does not know (yet): not registered here.
            guard let limits = try await registry.limits(slug: slug, columns: columns) else { throw APIError.notFound("project") }
            return try jsonResponse(TenantLimits(slug: slug, limits: limits))
        }
    }
}
