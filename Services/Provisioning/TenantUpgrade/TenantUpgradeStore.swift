import Foundation
import Postgres

/// Which ready projects' tenant schemas are below the tenant migrations of this binary, and the
/// version each reached (`provisioning.projects.tenant_schema_version`).
struct TenantUpgradeStore: Sendable {
    let pool: PostgresPool

    /// The upgrade of one tenant failed (the tenant's migration, not the claim).
    struct Failed: Error {
        let projectID: UUID
        let underlying: any Error
    }

    /// Claims the oldest ready project whose schema is below `version` (and not in `skipping`),
    /// holds its row locked while `upgrade` brings the schema up, then records the version the
    /// schema reached, in that same transaction. Other instances skip a claimed project, and a
    /// deprovisioning waits for it. Nil when no project is left.
    func upgradeNext(below version: Int, skipping: [UUID],
                     _ upgrade: @escaping @Sendable (_ project: UUID, _ slug: String) async throws -> Int) async throws -> UUID? {
        try await pool.withTransaction { tx in
            let rows = try await tx.query("""
                SELECT id, slug FROM provisioning.projects
                WHERE status = 'ready' AND coalesce(tenant_schema_version, 0) < \(version) AND NOT (id = ANY(\(skipping)))
                ORDER BY coalesce(tenant_schema_version, 0), created_at
                LIMIT 1
                FOR UPDATE SKIP LOCKED
                """)
            guard let row = rows.first else { return nil }
            let projectID: UUID = try row.decode("id")
            let reached: Int
            do {
                reached = try await upgrade(projectID, try row.decode("slug"))
            } catch {
                throw Failed(projectID: projectID, underlying: error)
            }
            try await tx.query("UPDATE provisioning.projects SET tenant_schema_version = \(reached) WHERE id = \(projectID)")
            return projectID
        }
    }

    /// How many ready projects are below `version` (for the upgrade's log and for tests).
    func remaining(below version: Int) async throws -> Int {
        try await pool.query("""
            SELECT count(*)::int8 AS n FROM provisioning.projects
            WHERE status = 'ready' AND coalesce(tenant_schema_version, 0) < \(version)
            """).single().decode("n", as: Int.self)
    }
}
