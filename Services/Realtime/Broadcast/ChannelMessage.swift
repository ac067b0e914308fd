import Contracts
import Foundation

/// A broadcast with its place in its channel: the `seq`-th message sent on it.
struct ChannelMessage: Sendable, Equatable {
    var channel: ChannelKey
    var seq: Int64
    var event: String
    /// The user payload, JSON text.
    var payload: String
    /// The subscription that sent it (for `self: false`), nil when sent over HTTP.
    var origin: String?

    /// The broadcast's payload as subscribers receive it (docs/protocols/realtime-reference.md §4.2):
    /// `{"type":"broadcast","event":…,"payload":…,"meta":{"id":"<seq>","seq":<seq>}}`, with
    /// `"replayed":true` in `meta` when replayed. The sequence number rides in `meta.id` as a
    /// string because supabase-py keeps only `meta.id` and `meta.replayed`.
    func framePayload(replayed: Bool = false) -> String {
        let meta = replayed ? "{\"replayed\":true,\"id\":\"\(seq)\",\"seq\":\(seq)}" : "{\"id\":\"\(seq)\",\"seq\":\(seq)}"
        return "{\"type\":\"broadcast\",\"event\":\(JSONText.quote(event)),\"payload\":\(payload),\"meta\":\(meta)}"
    }
}
