import Foundation
import Synchronization

/// The channels this replica's sockets have joined, and the fan-out to them.
///
/// Every broadcast and presence change reaches the hub from the relay (`RealtimeRelay`), also
/// those sent through this replica: one path, so every replica delivers a channel's messages
/// in the same order. A frame is encoded once per serializer and shared by all subscribers.
final class ChannelHub: Sendable {
    private struct Index {
        var channels: [ChannelKey: [String: Subscription]] = [:]
        /// The subscriptions with `postgres_changes` bindings, by tenant.
        var changes: [UUID: [String: Subscription]] = [:]
        /// The open sockets' outboxes, by tenant.
        var sockets: [UUID: [ObjectIdentifier: Outbox]] = [:]
    }

    private let index = Mutex(Index())

    func subscribe(_ subscription: Subscription) {
        index.withLock { index in
            index.channels[subscription.channel, default: [:]][subscription.id] = subscription
            if !subscription.bindings.isEmpty { index.changes[subscription.channel.tenant, default: [:]][subscription.id] = subscription }
        }
    }

    func unsubscribe(_ subscription: Subscription) {
        index.withLock { index in
            let channel = subscription.channel
            index.channels[channel]?[subscription.id] = nil
            if index.channels[channel]?.isEmpty == true { index.channels[channel] = nil }
            index.changes[channel.tenant]?[subscription.id] = nil
            if index.changes[channel.tenant]?.isEmpty == true { index.changes[channel.tenant] = nil }
        }
    }

    /// A socket of `tenant` opened (`removeSocket` when it closes).
    func addSocket(_ outbox: Outbox, tenant: UUID) {
        index.withLock { $0.sockets[tenant, default: [:]][ObjectIdentifier(outbox)] = outbox }
    }

    func removeSocket(_ outbox: Outbox, tenant: UUID) {
        index.withLock { index in
            index.sockets[tenant]?[ObjectIdentifier(outbox)] = nil
            if index.sockets[tenant]?.isEmpty == true { index.sockets[tenant] = nil }
        }
    }

    /// Closes every socket of a tenant that was removed (its clients learn it at reconnect: 404).
    func closeSockets(of tenant: UUID, reason: String) {
        let outboxes = index.withLock { $0.sockets[tenant].map { Array($0.values) } ?? [] }
        for outbox in outboxes { outbox.close(code: 1008, reason: reason) }
    }

    /// The subscriptions here that asked for a tenant's database changes.
    func changeSubscribers(_ tenant: UUID) -> [Subscription] {
        index.withLock { $0.changes[tenant].map { Array($0.values) } ?? [] }
    }

    func hasSubscribers(_ channel: ChannelKey) -> Bool { index.withLock { $0.channels[channel] != nil } }

    private func subscribers(_ channel: ChannelKey) -> [Subscription] {
        index.withLock { $0.channels[channel].map { Array($0.values) } ?? [] }
    }

    /// Fans a broadcast out to the channel's subscribers here, but to its sender only when that
    /// joined with `self: true`.
    func publish(_ message: ChannelMessage) {
        let subscribers = subscribers(message.channel)
        guard !subscribers.isEmpty else { return }
        let payload = message.framePayload()
        var frames: [PhoenixSerializer: String] = [:]
        for subscription in subscribers {
            if subscription.id == message.origin, !subscription.selfBroadcast { continue }
            let frame = frames[subscription.serializer] ?? {
                let frame = subscription.serializer.frame(topic: message.channel.socketTopic, event: "broadcast", payload: payload)
                frames[subscription.serializer] = frame
                return frame
            }()
            subscription.deliver(seq: message.seq, frame: frame)
        }
    }

    /// Fans a presence diff (`{"joins":…,"leaves":…}`) out to the channel's subscribers here
    /// that have presence on, the tracker included.
    func publishPresence(_ channel: ChannelKey, diff: String) {
        let subscribers = subscribers(channel)
        var frames: [PhoenixSerializer: String] = [:]
        for subscription in subscribers {
            let frame = frames[subscription.serializer] ?? {
                let frame = subscription.serializer.frame(topic: channel.socketTopic, event: "presence_diff", payload: diff)
                frames[subscription.serializer] = frame
                return frame
            }()
            subscription.deliverPresence(frame: frame)
        }
    }
}
