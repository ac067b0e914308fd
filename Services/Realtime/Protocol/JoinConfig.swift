import Contracts

/// What a `phx_join` payload asks for (docs/protocols/realtime-reference.md §3.1):
///
/// ```json
/// {"config": {"broadcast": {"self": false, "ack": false, "replay": {"after_seq": 41}},
///             "presence": {"key": "", "enabled": false},
///             "postgres_changes": [{"event": "INSERT", "schema": "public", "table": "todos"}],
///             "private": false},
///  "access_token": "<user JWT or the project's key>"}
/// ```
///
/// Like Supabase's server, a field that does not parse takes its default rather than failing
/// the join; only a replay request that cannot be honoured is refused (`Replay.Invalid`).
struct JoinConfig: Sendable, Equatable {
    var selfBroadcast = false
    var ack = false
    var replay: Replay?
    var presenceKey: String?
    var presenceEnabled = false
    var isPrivate = false
    /// The `postgres_changes` bindings as sent, each echoed in the join reply with an id.
    var postgresChanges: [JSONValue] = []
    /// The caller's token for this channel; nil means the connection's own key.
    var accessToken: String?

    /// Which broadcasts a rejoining client asks to receive again.
    enum Replay: Sendable, Equatable {
        /// The platform's form: every retained message after sequence number `afterSeq`.
        case afterSequence(Int64)
        /// Supabase's form: the latest `limit` (1…25) messages sent at or after `since` (ms
        /// since 1970).
        case since(milliseconds: Int64, limit: Int)

        struct Invalid: Error {}
    }

    init() {}

    init(payload: JSONValue) throws(Replay.Invalid) {
        guard case .object(let fields) = payload else { return }
        accessToken = Self.string(fields["access_token"]) ?? Self.string(fields["user_token"])
        guard case .object(let config)? = fields["config"] else { return }
        if case .object(let broadcast)? = config["broadcast"] {
            selfBroadcast = Self.flag(broadcast["self"]) ?? false
            ack = Self.flag(broadcast["ack"]) ?? false
            if let replay = broadcast["replay"], replay != .null { self.replay = try Self.replay(replay) }
        }
        if case .object(let presence)? = config["presence"] {
            presenceKey = Self.string(presence["key"]).flatMap { $0.isEmpty ? nil : $0 }
            presenceEnabled = Self.flag(presence["enabled"]) ?? false
        }
        isPrivate = Self.flag(config["private"]) ?? false
        if case .array(let bindings)? = config["postgres_changes"] {
            postgresChanges = bindings.filter { $0 != .null }
        }
    }

    private static func replay(_ value: JSONValue) throws(Replay.Invalid) -> Replay {
        guard case .object(let fields) = value else { throw Replay.Invalid() }
        if let after = fields["after_seq"] {
            guard let sequence = integer(after), sequence >= 0 else { throw Replay.Invalid() }
            return .afterSequence(sequence)
        }
        guard let since = fields["since"].flatMap(integer), since >= 0 else { throw Replay.Invalid() }
        let limit = fields["limit"].flatMap(integer) ?? 25
        return .since(milliseconds: since, limit: Int(min(max(limit, 1), 25)))
    }

    static func string(_ value: JSONValue?) -> String? {
        if case .string(let text)? = value { text } else { nil }
    }

    /// Supabase accepts `true`/`false` and their strings.
    static func flag(_ value: JSONValue?) -> Bool? {
        switch value {
        case .bool(let flag)?: flag
        case .string("true")?: true
        case .string("false")?: false
        default: nil
        }
    }

    static func integer(_ value: JSONValue) -> Int64? {
        guard case .number(let number) = value, number.rounded() == number, abs(number) < 9e15 else { return nil }
        return Int64(number)
    }
}
