import Contracts
import Logging
import Postgres
import ServiceLifecycle

/// Carries every replica's broadcasts and presence changes to this replica's sockets: one
/// listening connection (`LISTEN realtime_events`), the hub's fan-out, and repair.
///
/// Notifications are handled one at a time, in the order PostgreSQL delivers them (commit
/// order, so each channel's in sequence order). Two things can still lose a broadcast, and both
/// are repaired from the retained messages: a notification missed while the listening
/// connection was down (PostgreSQL keeps none for an absent listener), seen as a changed
/// connection count; and a gap in a channel's numbers. Presence changes missed that way are
/// not repaired (a rejoin gets the whole state again).
struct RealtimeRelay: Service {
    let listener: PostgresListener
    let hub: ChannelHub
    let broadcasts: BroadcastStore
    let presence: PresenceStore
    let changes: ChangeDispatcher
    let tenants: RealtimeTenants
    let logger: Logger

    /// The NOTIFY channel of tenants' database changes (tenant migration `0005_realtime_changes`).
    static let changesChannel = "realtime_changes"

    private enum Event: Sendable {
        case notice(String)
        case tick
    }

    func run() async throws {
        let (events, input) = AsyncStream<Event>.makeStream()
        await withTaskGroup(of: Void.self) { group in
            // The listener reconnects by itself; it returns once cancelled.
            group.addTask { try? await listener.run() }
            let notifications = listener.notifications(on: BroadcastStore.notifyChannel)
            let changes = listener.notifications(on: Self.changesChannel)
            group.addTask {
                for await notification in notifications { input.yield(.notice(notification.payload)) }
                input.finish()
            }
            // Database changes in their own loop, in their commit order: their rights checks
            // query the database, and must not hold up broadcasts and presence behind them.
            group.addTask {
                for await notification in changes { await self.changes.dispatch(notification.payload) }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    input.yield(.tick)
                }
            }
            var relay = State()
            for await event in events.cancelOnGracefulShutdown() {
                switch event {
                case .notice(let text): await handle(text, &relay)
                case .tick: await repairAfterReconnection(&relay)
                }
            }
            group.cancelAll()
        }
    }

    private struct State {
        /// The last sequence number relayed per channel with subscribers here.
        var lastSeq: [ChannelKey: Int64] = [:]
        var connections = 0
    }

    private func handle(_ text: String, _ relay: inout State) async {
        guard let notice = RealtimeNotice.decode(text) else {
            logger.warning("unreadable realtime notification", metadata: ["notification.bytes": "\(text.utf8.count)"])
            return
        }
        let channel = notice.channel
        do {
            switch notice.k {
            case "b":
                guard let seq = notice.s else { return }
                guard hub.hasSubscribers(channel) else { relay.lastSeq[channel] = nil; return }
                if let last = relay.lastSeq[channel], seq > last + 1 {
                    try await relayRetained(channel, after: last, upTo: seq - 1, &relay)
                }
                let message: ChannelMessage?
                if let event = notice.e, let payload = notice.m {
                    message = ChannelMessage(channel: channel, seq: seq, event: event, payload: JSONText.serialize(payload), origin: notice.o)
                } else {
                    message = try await broadcasts.message(channel, seq: seq).map { found in
                        var found = found
                        found.origin = notice.o
                        return found
                    }
                }
                if let message {
                    hub.publish(message)
                } else {
                    logger.error("a broadcast was pruned before it could be relayed (raise REALTIME_REPLAY_MIN_SECONDS)",
                                 metadata: ["tenant.id": "\(channel.tenant)", "broadcast.seq": "\(seq)"])
                }
                relay.lastSeq[channel] = max(relay.lastSeq[channel] ?? 0, seq)
            case "x":
                // The tenant was removed (on any replica): its sockets here end.
                tenants.forget(notice.t)
                hub.closeSockets(of: notice.t, reason: "Tenant removed")
            case "p":
                guard hub.hasSubscribers(channel) else { return }
                if let diff = notice.d {
                    hub.publishPresence(channel, diff: JSONText.serialize(diff))
                } else {
                    let joins = try await presence.entries(refs: notice.j ?? [])
                    let leaves = (notice.l ?? []).compactMap { pair in pair.count == 2 ? (key: pair[0], ref: pair[1]) : nil }
                    hub.publishPresence(channel, diff: PresencePayload.diff(joins: joins, leaves: leaves))
                }
            default:
                return
            }
        } catch {
            logger.error("could not relay a realtime notification", metadata: ["error": "\(error)", "tenant.id": "\(channel.tenant)"])
        }
    }

    /// Relays retained messages numbered in `(after, upTo]` (or all after `after` when `upTo`
    /// is nil).
    private func relayRetained(_ channel: ChannelKey, after: Int64, upTo: Int64?, _ relay: inout State) async throws {
        let limit = upTo.map { Int(min($0 - after, Int64(broadcasts.retainedMessages))) } ?? broadcasts.retainedMessages
        guard limit > 0 else { return }
        let missed = try await broadcasts.messages(channel, after: after, limit: limit)
        if !missed.isEmpty {
            logger.info("relaying broadcasts missed by the listener", metadata: ["tenant.id": "\(channel.tenant)", "messages": "\(missed.count)"])
        }
        for message in missed where upTo.map({ message.seq <= $0 }) ?? true {
            hub.publish(message)
            relay.lastSeq[channel] = max(relay.lastSeq[channel] ?? 0, message.seq)
        }
    }

    /// After the listener reconnected, relays what each joined channel missed meanwhile.
    private func repairAfterReconnection(_ relay: inout State) async {
        guard listener.isListening(on: BroadcastStore.notifyChannel) else { return }
        let connections = listener.connections
        guard connections != relay.connections else { return }
        let first = relay.connections == 0
        relay.connections = connections
        guard !first else { return }
        for (channel, last) in relay.lastSeq where hub.hasSubscribers(channel) {
            do {
                try await relayRetained(channel, after: last, upTo: nil, &relay)
            } catch {
                logger.error("could not relay missed broadcasts", metadata: ["error": "\(error)", "tenant.id": "\(channel.tenant)"])
            }
        }
    }
}
