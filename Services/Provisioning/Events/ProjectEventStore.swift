import Contracts
import Foundation
import Postgres

/// A project's numbered events (`provisioning.project_events`, written by the triggers of
/// migration 7 in the transaction of each change).
struct ProjectEventStore: Sendable {
    let pool: PostgresPool

    /// One event: its number in the project, its type, and its JSON object (which carries the
    /// number, the type, the project and the time too, so a client needs only `data`).
    struct Event: Sendable {
        var seq: Int
        var type: String
        var json: String
    }

    /// The project's events after `seq` (at most `limit`) and its status, from one snapshot:
    /// the status is the one the last event left. Nil when there is no such project of
    /// `owner`'s (nil: any owner).
    func events(of project: UUID, owner: UUID?, after seq: Int, limit: Int) async throws -> (events: [Event], status: ProjectState)? {
        let rows = try await pool.query("""
            SELECT p.status, e.seq, e.type,
                   (e.data || jsonb_build_object(
                       'seq', e.seq, 'type', e.type, 'project_id', p.id,
                       'created_at', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))::text AS json
            FROM provisioning.projects p
            LEFT JOIN LATERAL (
                SELECT seq, type, data, created_at FROM provisioning.project_events
                WHERE project_id = p.id AND seq > \(seq) ORDER BY seq LIMIT \(limit)
            ) e ON true
            WHERE p.id = \(project) AND (\(owner)::uuid IS NULL OR p.owner_id = \(owner))
            ORDER BY e.seq
            """)
        guard let first = rows.first else { return nil }
        let events = try rows.compactMap { row -> Event? in
            guard let seq: Int = try row.decode("seq") else { return nil }
            return Event(seq: seq, type: try row.decode("type"), json: try row.decode("json"))
        }
        return (events, try first.decode("status"))
    }
}
