import Contracts
import Foundation
import Hummingbird
import Postgres
import ServiceKit
import TenantKit

/// Which of a project's tables realtime delivers changes of (the per-table opt-in, as a table's
/// membership of Supabase's `supabase_realtime` publication), with the project's secret key:
///
/// - `GET /v1/tenants/{slug}/realtime/tables`: `{slug, tables}`
/// - `PUT /v1/tenants/{slug}/realtime/tables/{table}`: opts the table in (idempotent); 404 when
///   the project has no such table
/// - `DELETE /v1/tenants/{slug}/realtime/tables/{table}`: opts it out (204, also when it was not in)
///
/// They call the tenant's own `realtime_enable`, `realtime_disable` and `realtime_tables`
/// (tenant migration 5), which act as the tenant's role on its schema alone.
struct ChangeTablesController: Sendable {
    let registry: TenantRegistry
    let authenticator: TenantAuthenticator
    let store: ChangeStore

    func addRoutes(to router: Router<PlatformRequestContext>) {
        router.get("/v1/tenants/:slug/realtime/tables") { request, context in
            let schema = try await schema(request, context)
            return try jsonResponse(RealtimeTables(slug: try context.parameters.require("slug"), tables: try await store.tables(schema: schema)))
        }
        router.put("/v1/tenants/:slug/realtime/tables/:table") { request, context in
            let schema = try await schema(request, context)
            let table = try Self.table(context)
            guard try await store.enable(schema: schema, table: table) else { throw APIError.notFound("table") }
            return try jsonResponse(RealtimeTables(slug: try context.parameters.require("slug"), tables: try await store.tables(schema: schema)))
        }
        router.delete("/v1/tenants/:slug/realtime/tables/:table") { request, context in
            let schema = try await schema(request, context)
            _ = try await store.disable(schema: schema, table: try Self.table(context))
            return Response(status: .noContent)
        }
    }

    /// The project's schema, for its secret key.
    private func schema(_ request: Request, _ context: PlatformRequestContext) async throws -> String {
        let slug = try context.parameters.require("slug")
        _ = try await authenticator.authenticate(request, slug: slug, requiring: .secretKey)
        guard let tenant = try await registry.tenant(slug: slug) else { throw APIError.notFound("project") }
        return tenant.schema
    }

    /// A table name: PostgreSQL's identifier length, no NUL.
    private static func table(_ context: PlatformRequestContext) throws -> String {
        let table = try context.parameters.require("table")
        guard !table.isEmpty, table.utf8.count <= 63, !table.contains("\u{0}") else {
            throw APIError.validation(field: "table", "A table name is 1 to 63 bytes.")
        }
        return table
    }
}
