import Contracts

/// Presence entries and the `presence_state` / `presence_diff` payloads made of them
/// (docs/protocols/realtime-reference.md §5.2): `{"<key>": {"metas": [{"phx_ref": "<ref>", …state}]}}`.
struct PresenceEntry: Sendable, Equatable {
    var key: String
    /// The entry's `phx_ref`, unique per tracked state (clients match joins and leaves by it).
    var ref: String
    /// The tracked state, a JSON object as text, without `phx_ref`.
    var meta: String

    /// The state with its `phx_ref` first: `{"phx_ref":"…",…}`.
    var metaWithRef: String {
        let ref = "\"phx_ref\":" + JSONText.quote(ref)
        return meta == "{}" ? "{" + ref + "}" : "{" + ref + "," + meta.dropFirst()
    }

    /// The tracked state of a `track` payload: an object, without the keys the server sets.
    static func meta(of state: [String: JSONValue]) -> String {
        var state = state
        state["phx_ref"] = nil
        state["phx_ref_prev"] = nil
        return JSONText.serialize(.object(state))
    }
}

enum PresencePayload {
    /// `{"<key>": {"metas": [...]}, …}` of full entries.
    static func state(_ entries: [PresenceEntry]) -> String {
        group(entries.map { ($0.key, $0.metaWithRef) })
    }

    /// `{"joins": {...}, "leaves": {...}}`; leaves carry only their `phx_ref`.
    static func diff(joins: [PresenceEntry], leaves: [(key: String, ref: String)]) -> String {
        let left = leaves.map { ($0.key, "{\"phx_ref\":" + JSONText.quote($0.ref) + "}") }
        return "{\"joins\":" + group(joins.map { ($0.key, $0.metaWithRef) }) + ",\"leaves\":" + group(left) + "}"
    }

    private static func group(_ metas: [(key: String, meta: String)]) -> String {
        var order: [String] = []
        var byKey: [String: [String]] = [:]
        for (key, meta) in metas {
            if byKey[key] == nil { order.append(key) }
            byKey[key, default: []].append(meta)
        }
        let members = order.map { JSONText.quote($0) + ":{\"metas\":[" + byKey[$0]!.joined(separator: ",") + "]}" }
        return "{" + members.joined(separator: ",") + "}"
    }
}
