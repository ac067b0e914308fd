import Foundation

/// A tenant's channel. Public and private channels of one name are different channels, as in
/// Supabase; `topic` is the name without the `realtime:` prefix clients put on it.
struct ChannelKey: Hashable, Sendable {
    var tenant: UUID
    var isPrivate: Bool
    var topic: String

    /// The topic as clients address it on the socket.
    var socketTopic: String { "realtime:" + topic }
}
