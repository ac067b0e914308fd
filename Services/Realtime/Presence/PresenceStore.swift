import Contracts
import Foundation
import Postgres
import ServiceKit

/// Presence in `realtime.presences`, and the notifications that carry each change to every
/// replica. A change and its notification commit together; a notification carries the diff
/// when it fits NOTIFY's payload, else the refs to read back (`entries(refs:)`).
struct PresenceStore: Sendable {
    let pool: PostgresPool

    /// Tracks `meta` under `key` for one connection's channel, replacing that connection's
    /// previous entry `replacing` (an update is a leave of the old entry and a join of the new).
    func track(_ channel: ChannelKey, key: String, meta: String, replica: UUID, replacing old: PresenceEntry?) async throws -> PresenceEntry {
        let entry = PresenceEntry(key: key, ref: Self.newRef(), meta: meta)
        try await pool.withTransaction { connection in
            // The replica's row exists from its first beat; a track may come first.
            try await connection.query("INSERT INTO realtime.replicas (id) VALUES (\(replica)) ON CONFLICT (id) DO NOTHING")
            if let old { try await connection.query("DELETE FROM realtime.presences WHERE ref = \(old.ref)") }
            try await connection.query("""
                INSERT INTO realtime.presences (ref, tenant_id, private, topic, key, meta, replica_id)
                VALUES (\(entry.ref), \(channel.tenant), \(channel.isPrivate), \(channel.topic), \(key), \(meta), \(replica))
                """)
            try await notify(channel, joins: [entry], leaves: old.map { [($0.key, $0.ref)] } ?? [], on: connection)
        }
        return entry
    }

    /// Removes entries (a connection's untrack, leave or disconnect) and announces their leave.
    func untrack(_ entries: [(channel: ChannelKey, entry: PresenceEntry)]) async throws {
        guard !entries.isEmpty else { return }
        try await pool.withTransaction { connection in
            let refs = entries.map(\.entry.ref)
            let gone = Set(try await connection.query("DELETE FROM realtime.presences WHERE ref = ANY(\(refs)) RETURNING ref")
                .map { try $0.decode("ref", as: String.self) })
            let byChannel = Dictionary(grouping: entries.filter { gone.contains($0.entry.ref) }, by: \.channel)
            for (channel, left) in byChannel {
                try await notify(channel, joins: [], leaves: left.map { ($0.entry.key, $0.entry.ref) }, on: connection)
            }
        }
    }

    /// Everyone present on a channel, oldest first.
    func entries(_ channel: ChannelKey) async throws -> [PresenceEntry] {
        try await pool.query("""
            SELECT key, ref, meta FROM realtime.presences
            WHERE tenant_id = \(channel.tenant) AND private = \(channel.isPrivate) AND topic = \(channel.topic)
            ORDER BY tracked_at, ref
            """).map(Self.entry)
    }

    /// The entries of these refs still present (a notification too large to carry them).
    func entries(refs: [String]) async throws -> [PresenceEntry] {
        try await pool.query("SELECT key, ref, meta FROM realtime.presences WHERE ref = ANY(\(refs)) ORDER BY tracked_at, ref").map(Self.entry)
    }

    private static func entry(_ row: PostgresRow) throws -> PresenceEntry {
        PresenceEntry(key: try row.decode("key"), ref: try row.decode("ref"), meta: try row.decode("meta"))
    }

    /// Removes the replicas that stopped beating for `seconds` (crashed, or cut off), and with
    /// them their connections' presence, announcing every leave. Returns how many entries left.
    func removeReplicas(silentFor seconds: Int, except replica: UUID) async throws -> Int {
        try await pool.withTransaction { connection in
            let rows = try await connection.query("""
                WITH dead AS (
                    DELETE FROM realtime.replicas
                    WHERE id <> \(replica) AND heartbeat_at < now() - make_interval(secs => \(Double(seconds)))
                    RETURNING id)
                DELETE FROM realtime.presences p USING dead WHERE p.replica_id = dead.id
                RETURNING p.tenant_id, p.private, p.topic, p.key, p.ref
                """)
            try await announceLeaves(rows, on: connection)
            return rows.count
        }
    }

    /// Removes this replica (a clean stop) with its connections' presence.
    func removeReplica(_ replica: UUID) async throws {
        try await pool.withTransaction { connection in
            let rows = try await connection.query("""
                DELETE FROM realtime.presences WHERE replica_id = \(replica) RETURNING tenant_id, private, topic, key, ref
                """)
            try await announceLeaves(rows, on: connection)
            try await connection.query("DELETE FROM realtime.replicas WHERE id = \(replica)")
        }
    }

    /// Records that `replica` is alive (inserting it the first time).
    func beat(_ replica: UUID) async throws {
        try await pool.query("""
            INSERT INTO realtime.replicas (id) VALUES (\(replica))
            ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
            """)
    }

    private func announceLeaves(_ rows: PostgresResult, on connection: PostgresConnection) async throws {
        var byChannel: [ChannelKey: [(String, String)]] = [:]
        for row in rows {
            let channel = ChannelKey(tenant: try row.decode("tenant_id"), isPrivate: try row.decode("private"), topic: try row.decode("topic"))
            byChannel[channel, default: []].append((try row.decode("key"), try row.decode("ref")))
        }
        for (channel, leaves) in byChannel {
            try await notify(channel, joins: [], leaves: leaves, on: connection)
        }
    }

    private func notify(_ channel: ChannelKey, joins: [PresenceEntry], leaves: [(key: String, ref: String)], on connection: PostgresConnection) async throws {
        let notice = PresenceNotice(channel: channel, joins: joins, leaves: leaves)
        try await connection.notify(channel: BroadcastStore.notifyChannel, payload: notice.text)
    }

    /// A `phx_ref`: unique across replicas and restarts.
    static func newRef() -> String {
        SecureToken.random(byteCount: 12)
    }
}
