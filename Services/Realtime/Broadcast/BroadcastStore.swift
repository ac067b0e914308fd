import Foundation
import Postgres

/// Broadcast messages in `realtime.channels` and `realtime.channel_messages`: numbering,
/// retention for replay, and the notification that fans each one out to every replica.
///
/// `append` numbers, keeps and announces a message in one statement: the channel's row lock
/// serialises the senders of one channel, so its numbers are gap-free and its notifications
/// commit (and so reach every listener) in number order. A notification carries the message
/// when it fits NOTIFY's 8,000-byte payload, else only its address, and listeners read it back
/// (`message(_:seq:)`).
struct BroadcastStore: Sendable {
    let pool: PostgresPool
    /// How many of a channel's latest messages are kept.
    let retainedMessages: Int
    /// Every message is kept at least this long, whatever the count (a lagging replica reads a
    /// message that did not fit its notification back from here).
    let minimumSeconds: Int

    /// The NOTIFY channel every replica listens on.
    static let notifyChannel = "realtime_events"
    /// Notifications up to this many bytes carry the message itself.
    static let inlineLimit = 7_900

    /// Numbers, keeps and announces a message; returns its sequence number.
    func append(_ channel: ChannelKey, event: String, payload: String, origin: String?) async throws -> Int64 {
        let row = try await pool.query("""
            WITH next AS (
                INSERT INTO realtime.channels AS c (tenant_id, private, topic, last_seq)
                VALUES (\(channel.tenant), \(channel.isPrivate), \(channel.topic), 1)
                ON CONFLICT (tenant_id, private, topic) DO UPDATE SET last_seq = c.last_seq + 1, updated_at = now()
                RETURNING last_seq
            ), stored AS (
                INSERT INTO realtime.channel_messages (tenant_id, private, topic, seq, event, payload)
                SELECT \(channel.tenant), \(channel.isPrivate), \(channel.topic), last_seq, \(event), \(payload) FROM next
                RETURNING seq
            ), pruned AS (
                DELETE FROM realtime.channel_messages m USING next
                WHERE m.tenant_id = \(channel.tenant) AND m.private = \(channel.isPrivate) AND m.topic = \(channel.topic)
                  AND m.seq <= next.last_seq - \(retainedMessages)
                  AND m.inserted_at < now() - make_interval(secs => \(Double(minimumSeconds)))
            )
            SELECT stored.seq, pg_notify(\(Self.notifyChannel),
                CASE WHEN octet_length(notice.whole) <= \(Self.inlineLimit) THEN notice.whole ELSE notice.address END)
            FROM stored, LATERAL (SELECT
                json_build_object('k', 'b', 't', \(channel.tenant)::uuid, 'p', \(channel.isPrivate)::boolean, 'c', \(channel.topic)::text,
                                  's', stored.seq, 'o', \(origin)::text, 'e', \(event)::text, 'm', \(payload)::json)::text AS whole,
                json_build_object('k', 'b', 't', \(channel.tenant)::uuid, 'p', \(channel.isPrivate)::boolean, 'c', \(channel.topic)::text,
                                  's', stored.seq, 'o', \(origin)::text)::text AS address) AS notice
            """).single()
        return try row.decode("seq")
    }

    /// One retained message (a notification that carried only its address).
    func message(_ channel: ChannelKey, seq: Int64) async throws -> ChannelMessage? {
        try await pool.query("""
            SELECT seq, event, payload FROM realtime.channel_messages
            WHERE tenant_id = \(channel.tenant) AND private = \(channel.isPrivate) AND topic = \(channel.topic) AND seq = \(seq)
            """).first.map { try Self.message(channel, $0) }
    }

    /// Retained messages numbered above `seq`, oldest first, at most `limit`.
    func messages(_ channel: ChannelKey, after seq: Int64, limit: Int) async throws -> [ChannelMessage] {
        try await pool.query("""
            SELECT seq, event, payload FROM realtime.channel_messages
            WHERE tenant_id = \(channel.tenant) AND private = \(channel.isPrivate) AND topic = \(channel.topic) AND seq > \(seq)
            ORDER BY seq LIMIT \(limit)
            """).map { try Self.message(channel, $0) }
    }

    /// Supabase's replay: the latest `limit` retained messages sent at or after `since`, oldest first.
    func messages(_ channel: ChannelKey, sinceMilliseconds since: Int64, limit: Int) async throws -> [ChannelMessage] {
        try await pool.query("""
            SELECT * FROM (
                SELECT seq, event, payload FROM realtime.channel_messages
                WHERE tenant_id = \(channel.tenant) AND private = \(channel.isPrivate) AND topic = \(channel.topic)
                  AND inserted_at >= to_timestamp(\(Double(since) / 1000))
                ORDER BY seq DESC LIMIT \(limit)
            ) latest ORDER BY seq
            """).map { try Self.message(channel, $0) }
    }

    private static func message(_ channel: ChannelKey, _ row: PostgresRow) throws -> ChannelMessage {
        ChannelMessage(channel: channel, seq: try row.decode("seq"), event: try row.decode("event"), payload: try row.decode("payload"), origin: nil)
    }

    /// A channel's numbering: the last number given, and the oldest still retained (nil when
    /// none is). Both nil for a channel never written to.
    func bounds(_ channel: ChannelKey) async throws -> (last: Int64?, oldestRetained: Int64?) {
        guard let row = try await pool.query("""
            SELECT c.last_seq,
                   (SELECT min(seq) FROM realtime.channel_messages m
                    WHERE m.tenant_id = c.tenant_id AND m.private = c.private AND m.topic = c.topic) AS oldest
            FROM realtime.channels c
            WHERE c.tenant_id = \(channel.tenant) AND c.private = \(channel.isPrivate) AND c.topic = \(channel.topic)
            """).first else { return (nil, nil) }
        return (try row.decode("last_seq"), try row.decode("oldest"))
    }

    /// Removes messages older than `seconds`, then channels idle as long with none retained (a
    /// channel used again later numbers from 1: a client still holding a number of its past
    /// gets a `ReplayAhead` notice). Returns how many messages went.
    @discardableResult
    func prune(olderThanSeconds seconds: Int) async throws -> Int {
        let gone: Int = try await pool.query("""
            WITH gone AS (DELETE FROM realtime.channel_messages WHERE inserted_at < now() - make_interval(secs => \(Double(seconds))) RETURNING 1)
            SELECT count(*)::int AS n FROM gone
            """).single().decode("n")
        try await pool.query("""
            DELETE FROM realtime.channels c
            WHERE c.updated_at < now() - make_interval(secs => \(Double(seconds)))
              AND NOT EXISTS (SELECT 1 FROM realtime.channel_messages m
                              WHERE m.tenant_id = c.tenant_id AND m.private = c.private AND m.topic = c.topic)
            """)
        return gone
    }
}
