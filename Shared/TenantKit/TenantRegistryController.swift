import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// The three internal routes through which provisioning's saga registers a tenant with a
/// service, and removes it again (its compensation):
///
/// - `PUT /internal/v1/tenants/{id}` → 201 + `RegisteredTenant` when created, 200 when it
///   existed (updated to the body's slug, schema and role);
/// - `GET /internal/v1/tenants/{id}` → 200, or 404 `not_found`;
/// - `DELETE /internal/v1/tenants/{id}` → 204, or 404 `not_found` when already gone.
///
/// One implementation for auth, realtime and storage, so the saga sees one behaviour; each
/// service adds its own side effects through the hooks, which run inside the registry's
/// transaction (see `TenantRegistry`).
public struct TenantRegistryController: Sendable {
    public let registry: TenantRegistry
    let afterRegister: @Sendable (RegisteredTenant) async throws -> Void
    let afterRemove: @Sendable (UUID) async throws -> Void

    public init(
        registry: TenantRegistry,
        afterRegister: @escaping @Sendable (RegisteredTenant) async throws -> Void = { _ in },
        afterRemove: @escaping @Sendable (UUID) async throws -> Void = { _ in }
    ) {
        self.registry = registry
        self.afterRegister = afterRegister
        self.afterRemove = afterRemove
    }

    /// Adds the routes to a group under `/internal` (see `ServiceRuntime.internalRoutes`), so the
    /// service token is checked before any of them runs.
    public func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.put("/v1/tenants/:id") { request, context in
            let id = try Self.tenantID(context)
            let registration = try await request.decodeJSON(as: TenantRegistration.self, context: context)
            try registration.validate()
            let result: (tenant: RegisteredTenant, created: Bool)
            do {
                result = try await registry.register(id: id, registration, logger: context.logger, hook: afterRegister)
            } catch is TenantRegistry.SlugTaken {
                throw APIError.conflict(code: "slug_taken", "Another tenant is registered with this slug.")
            }
            context.logger.info(result.created ? "tenant registered" : "tenant registration updated", metadata: [
                "tenant.id": "\(id.lowercased)", "tenant.slug": "\(registration.slug)",
            ])
            return try jsonResponse(result.tenant, status: result.created ? .created : .ok)
        }
        group.get("/v1/tenants/:id") { _, context in
            let id = try Self.tenantID(context)
            guard let tenant = try await registry.tenant(id: id) else { throw APIError.notFound("tenant") }
            return try jsonResponse(tenant)
        }
        group.delete("/v1/tenants/:id") { _, context in
            let id = try Self.tenantID(context)
            guard try await registry.remove(id: id, hook: afterRemove) else { throw APIError.notFound("tenant") }
            context.logger.info("tenant removed", metadata: ["tenant.id": "\(id.lowercased)"])
            return Response(status: .noContent)
        }
    }

    /// The `{id}` path parameter as a UUID, or 422 naming the field `id`.
    public static func tenantID(_ context: PlatformRequestContext) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else {
            throw APIError.validation(field: "id", "The tenant id must be a UUID.")
        }
        return id
    }
}

extension UUID {
    /// The form PostgreSQL and the platform's JSON print: lower-case.
    var lowercased: String { uuidString.lowercased() }
}

extension TenantRegistration {
    /// The saga's naming rules, checked before anything is stored: a slug of 3 to 40 characters
    /// `[a-z][a-z0-9_]*`, the schema `tenant_<slug>`, and a role named after the schema.
    public func validate() throws {
        guard ProjectSlug.isValid(slug) else {
            throw APIError.validation(field: "slug", "The slug must be \(ProjectSlug.rule).")
        }
        guard schema == "tenant_" + slug else {
            throw APIError.validation(field: "schema", "The schema must be tenant_<slug>.")
        }
        guard !role.isEmpty, role == schema else {
            throw APIError.validation(field: "role", "The role must be named after the schema.")
        }
    }
}
