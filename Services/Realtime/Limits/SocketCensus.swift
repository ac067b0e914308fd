import Foundation
import Postgres

/// Each replica's open sockets per tenant in `realtime.replica_sockets`, so that a tenant's cap
/// on concurrent sockets holds across replicas (`RealtimeLimiter`). Written and read on every
/// beat of the replica's upkeep; a replica's rows go with it when it stops or is found dead.
struct SocketCensus: Sendable {
    let pool: PostgresPool

    /// Replaces this replica's counts, and returns the other live replicas' per tenant.
    func publish(_ replica: UUID, sockets: [UUID: Int]) async throws -> [UUID: Int] {
        let tenants = Array(sockets.keys)
        let counts = tenants.map { sockets[$0] ?? 0 }
        return try await pool.withTransaction { connection in
            try await connection.query("DELETE FROM realtime.replica_sockets WHERE replica_id = \(replica)")
            if !tenants.isEmpty {
                // Tenants removed meanwhile are skipped (their rows would break the reference).
                try await connection.query("""
                    INSERT INTO realtime.replica_sockets (replica_id, tenant_id, sockets)
                    SELECT \(replica), c.tenant, c.sockets FROM unnest(\(tenants)::uuid[], \(counts)::int4[]) AS c(tenant, sockets)
                    WHERE c.sockets > 0 AND EXISTS (SELECT 1 FROM realtime.tenants t WHERE t.id = c.tenant)
                    """)
            }
            var others: [UUID: Int] = [:]
            for row in try await connection.query("""
                SELECT tenant_id, sum(sockets)::int8 AS sockets FROM realtime.replica_sockets WHERE replica_id <> \(replica) GROUP BY tenant_id
                """) {
                others[try row.decode("tenant_id")] = try row.decode("sockets", as: Int.self)
            }
            return others
        }
    }
}
