import Contracts
import Foundation

/// What travels between replicas on `NOTIFY realtime_events`: a broadcast (`"k":"b"`, built by
/// `BroadcastStore.append` in SQL), a presence change (`"k":"p"`, `PresenceNotice`), or a
/// tenant's removal (`"k":"x"`, `tenantRemoved`). Each names its channel (`t` tenant, `p`
/// private, `c` topic; the removal's channel is empty). A notice too large for NOTIFY
/// carries only what identifies the rows to read back.
struct RealtimeNotice: Decodable, Sendable {
    var k: String
    var t: UUID
    var p: Bool
    var c: String
    // Broadcast: the sequence number, origin, and (inline) event and payload.
    var s: Int64?
    var o: String?
    var e: String?
    var m: JSONValue?
    // Presence: the diff (inline), or the joined refs to read and the leaves.
    var d: JSONValue?
    var j: [String]?
    var l: [[String]]?

    var channel: ChannelKey { ChannelKey(tenant: t, isPrivate: p, topic: c) }

    /// The notice that a tenant was removed.
    static func tenantRemoved(_ tenant: UUID) -> String {
        "{\"k\":\"x\",\"t\":\"\(tenant.uuidString.lowercased())\",\"p\":false,\"c\":\"\"}"
    }

    static func decode(_ text: String) -> RealtimeNotice? {
        try? JSONDecoder().decode(RealtimeNotice.self, from: Data(text.utf8))
    }
}

/// A presence change as notified: the diff itself when it fits, else the refs.
struct PresenceNotice {
    var text: String

    init(channel: ChannelKey, joins: [PresenceEntry], leaves: [(key: String, ref: String)]) {
        let head = "{\"k\":\"p\",\"t\":\"\(channel.tenant.uuidString.lowercased())\",\"p\":\(channel.isPrivate),\"c\":\(JSONText.quote(channel.topic))"
        let whole = head + ",\"d\":" + PresencePayload.diff(joins: joins, leaves: leaves) + "}"
        if whole.utf8.count <= BroadcastStore.inlineLimit {
            text = whole
        } else {
            let joined = joins.map { JSONText.quote($0.ref) }.joined(separator: ",")
            let left = leaves.map { "[" + JSONText.quote($0.key) + "," + JSONText.quote($0.ref) + "]" }.joined(separator: ",")
            text = head + ",\"j\":[" + joined + "],\"l\":[" + left + "]}"
        }
    }
}
