import Contracts
import Foundation
import Logging

/// The Phoenix-channels protocol of one websocket (docs/realtime.md): joins, leaves,
/// heartbeats, broadcasts, presence and token refreshes, handled one frame at a time by the
/// socket's reading task. Everything it sends goes through the socket's `Outbox`.
final class RealtimeSession {
    let services: RealtimeServices
    let access: RealtimeAccess
    let tenant: RealtimeTenants.Tenant
    let connectPrincipal: RealtimePrincipal
    let serializer: PhoenixSerializer
    let outbox: Outbox
    let logger: Logger
    private let now: @Sendable () -> Date

    /// A channel this socket has joined.
    private struct Joined {
        var subscription: Subscription
        var config: JoinConfig
        var presenceKey: String
        var presence: PresenceEntry?
    }

    /// By socket topic (`realtime:<name>`).
    private var joined: [String: Joined] = [:]

    init(services: RealtimeServices, tenant: RealtimeTenants.Tenant, principal: RealtimePrincipal, serializer: PhoenixSerializer,
         outbox: Outbox, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.services = services
        access = RealtimeAccess(services: services)
        self.tenant = tenant
        connectPrincipal = principal
        self.serializer = serializer
        self.outbox = outbox
        self.logger = logger
        self.now = now
    }

    var joinedCount: Int { joined.count }

    // MARK: Frames in

    func handle(_ message: PhoenixMessage) async {
        await expireTokens()
        if message.topic == "phoenix" {
            if message.event == "heartbeat" { reply(message, ok: "{}") }
            return
        }
        if message.event == "phx_join" {
            await join(message)
            return
        }
        guard let channel = joined[message.topic] else {
            if message.event == "phx_leave" { reply(message, ok: "{}") } else { reply(message, error: "unmatched topic") }
            return
        }
        // A frame of an earlier join of this topic is stale (Phoenix ignores it).
        if let joinRef = message.joinRef, joinRef != channel.subscription.joinRef { return }
        switch message.event {
        case "phx_leave":
            reply(message, ok: "{}")
            await leave(message.topic, announce: true)
        case "broadcast":
            await broadcast(message, on: channel)
        case "presence":
            await presence(message, on: channel)
        case "access_token":
            await refreshToken(message, on: channel)
        default:
            break
        }
    }

    // MARK: Join and leave

    private func join(_ message: PhoenixMessage) async {
        guard message.topic.hasPrefix("realtime:") else { return reply(message, error: "unmatched topic") }
        let name = String(message.topic.dropFirst("realtime:".count))
        guard !name.isEmpty else { return reply(message, error: "TopicNameRequired: You must provide a topic name") }
        if joined[message.topic] != nil {
            // A second join of a joined topic replaces the first (Phoenix closes the old one).
            await leave(message.topic, announce: true)
        }
        let config: JoinConfig
        do {
            config = try JoinConfig(payload: message.payload)
        } catch {
            return reply(message, error: "UnableToReplayMessages: Replay params are not valid")
        }
        let limits = tenant.limits
        guard joined.count < limits.channelsPerClient else { return reply(message, error: "ChannelRateLimitReached: Too many channels") }
        guard services.limiter.allowJoin(tenant.registered.id, limit: limits.joinsPerSecond) else {
            return reply(message, error: "ClientJoinRateLimitReached: Too many joins per second")
        }
        let principal: RealtimePrincipal
        do {
            principal = try await access.principal(token: config.accessToken, tenant: tenant, connection: connectPrincipal)
        } catch let refusal as RealtimeAccess.TokenRefusal {
            return reply(message, error: refusal.reason)
        } catch {
            logger.warning("could not verify a channel token", metadata: ["error": "\(error)"])
            return reply(message, error: "Unknown Error on Channel")
        }
        if config.isPrivate, !principal.mayUsePrivateChannels {
            return reply(message, error: "Unauthorized: You do not have permissions to read from this Channel topic: \(name)")
        }
        // Database changes: every binding must parse, else none applies (Supabase's rule; the
        // error arrives as a `system` message after the join).
        var bindings: [PostgresBinding] = []
        var bindingError: String?
        do {
            bindings = try config.postgresChanges.map { raw throws(PostgresBinding.Invalid) in try PostgresBinding(raw, schema: tenant.registered.schema) }
        } catch {
            bindingError = error.message
        }
        let channel = ChannelKey(tenant: tenant.registered.id, isPrivate: config.isPrivate, topic: name)
        let subscription = Subscription(
            id: services.nextSubscriptionID(), channel: channel, joinRef: message.joinRef ?? message.ref, serializer: serializer,
            selfBroadcast: config.selfBroadcast, presence: config.presenceEnabled, principal: principal, bindings: bindings, outbox: outbox
        )
        // Subscribed (held) before anything is read, so nothing sent meanwhile is missed.
        services.hub.subscribe(subscription)
        joined[message.topic] = Joined(subscription: subscription, config: config, presenceKey: config.presenceKey ?? UUID().uuidString.lowercased())
        reply(message, ok: "{\"postgres_changes\":" + PostgresBinding.echo(config.postgresChanges) + "}")
        if !config.postgresChanges.isEmpty {
            system(message.topic, subscription, extension: "postgres_changes", message: bindingError ?? "Subscribed to PostgreSQL",
                   status: bindingError == nil ? "ok" : "error")
        }
        do {
            if config.presenceEnabled {
                let entries = try await services.presence.entries(channel)
                push(message.topic, subscription, event: "presence_state", payload: PresencePayload.state(entries))
            }
            try await replay(config.replay, subscription, topic: message.topic)
        } catch {
            logger.error("could not set up a joined channel", metadata: ["error": "\(error)", "tenant.id": "\(tenant.registered.id)"])
            subscription.release(sentUpTo: nil)
        }
    }

    /// Sends what a rejoining client missed, then releases the subscription's live traffic.
    private func replay(_ replay: JoinConfig.Replay?, _ subscription: Subscription, topic: String) async throws {
        let channel = subscription.channel
        let messages: [ChannelMessage]
        switch replay {
        case nil:
            return subscription.release(sentUpTo: nil)
        case .since(let since, let limit):
            messages = try await services.broadcasts.messages(channel, sinceMilliseconds: since, limit: limit)
        case .afterSequence(let after):
            let bounds = try await services.broadcasts.bounds(channel)
            let last = bounds.last ?? 0
            if after > last {
                system(topic, subscription, extension: "broadcast",
                       message: "ReplayAhead: sequence \(after) is beyond this channel's last message, \(last)",
                       extra: ",\"replay\":{\"after_seq\":\(after),\"last_seq\":\(last)}")
            } else if after < last, (bounds.oldestRetained ?? last + 1) > after + 1 {
                let missedTo = (bounds.oldestRetained ?? last + 1) - 1
                system(topic, subscription, extension: "broadcast",
                       message: "ReplayGap: messages \(after + 1) to \(missedTo) of this channel are no longer retained",
                       extra: ",\"gap\":{\"from\":\(after + 1),\"to\":\(missedTo)}")
            }
            messages = after >= last ? [] : try await services.broadcasts.messages(channel, after: after, limit: services.settings.replayMessages)
        }
        let frames = messages.map { message in
            (seq: message.seq, frame: serializer.frame(topic: topic, event: "broadcast", payload: message.framePayload(replayed: true)))
        }
        subscription.release(sentUpTo: messages.last?.seq, replayed: frames)
    }

    /// Leaves a joined channel: unsubscribes, removes this socket's presence on it, and (when
    /// `announce`) tells the client with `phx_close`.
    private func leave(_ topic: String, announce: Bool) async {
        guard let channel = joined.removeValue(forKey: topic) else { return }
        services.hub.unsubscribe(channel.subscription)
        if announce { push(topic, channel.subscription, event: "phx_close", payload: "{}", ref: channel.subscription.joinRef) }
        if let entry = channel.presence {
            do {
                try await services.presence.untrack([(channel.subscription.channel, entry)])
            } catch {
                logger.error("could not remove a presence", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Ends a channel from the server's side (a limit, an expired token): a `system` error,
    /// then `phx_close`. supabase-py reports it and does not rejoin.
    private func shutDown(_ topic: String, reason: String) async {
        guard let channel = joined[topic] else { return }
        system(topic, channel.subscription, extension: "system", message: reason, status: "error")
        await leave(topic, announce: true)
    }

    /// The socket closed: leave every channel without telling anyone but presence.
    func close() async {
        let presences = joined.values.compactMap { channel in channel.presence.map { (channel.subscription.channel, $0) } }
        for channel in joined.values { services.hub.unsubscribe(channel.subscription) }
        joined = [:]
        do {
            try await services.presence.untrack(presences)
        } catch {
            logger.error("could not remove a closed socket's presence", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Broadcast

    private func broadcast(_ message: PhoenixMessage, on channel: Joined) async {
        guard case .object(let fields) = message.payload, let event = JoinConfig.string(fields["event"]) else {
            if channel.config.ack { reply(message, error: "a broadcast needs an event") }
            return
        }
        let payload = JSONText.serialize(fields["payload"] ?? .emptyObject)
        guard payload.utf8.count <= services.settings.maxPayloadBytes else {
            if channel.config.ack { reply(message, error: "payload_size_exceeded") }
            return
        }
        guard services.limiter.allowEvent(tenant.registered.id, limit: tenant.limits.eventsPerSecond) else {
            return await shutDown(message.topic, reason: "Too many messages per second")
        }
        do {
            _ = try await services.broadcasts.append(channel.subscription.channel, event: event, payload: payload, origin: channel.subscription.id)
            if channel.config.ack { reply(message, ok: "{}") }
        } catch {
            logger.error("could not send a broadcast", metadata: ["error": "\(error)", "tenant.id": "\(tenant.registered.id)"])
            if channel.config.ack { reply(message, error: "Unable to broadcast the message") }
        }
    }

    // MARK: Presence

    private func presence(_ message: PhoenixMessage, on channel: Joined) async {
        guard case .object(let fields) = message.payload, let event = JoinConfig.string(fields["event"])?.lowercased() else {
            return reply(message, error: "Presence event must be track or untrack")
        }
        let topic = message.topic
        switch event {
        case "track":
            guard case .object(let state)? = fields["payload"] else { return reply(message, error: "Presence track payload must be a map") }
            let meta = PresenceEntry.meta(of: state)
            guard meta.utf8.count <= services.settings.maxPayloadBytes else { return await shutDown(topic, reason: "Track message size exceeded") }
            if channel.presence?.meta == meta { return reply(message, ok: "{}") }
            guard services.limiter.allowEvent(tenant.registered.id, limit: tenant.limits.eventsPerSecond) else {
                return await shutDown(topic, reason: "Too many presence messages per second")
            }
            channel.subscription.enablePresence()
            do {
                let entry = try await services.presence.track(channel.subscription.channel, key: channel.presenceKey, meta: meta,
                                                              replica: services.replica, replacing: channel.presence)
                joined[topic]?.presence = entry
                reply(message, ok: "{}")
            } catch {
                logger.error("could not track a presence", metadata: ["error": "\(error)"])
                reply(message, error: "Unable to track presence")
            }
        case "untrack":
            guard let entry = channel.presence else { return reply(message, ok: "{}") }
            do {
                try await services.presence.untrack([(channel.subscription.channel, entry)])
                joined[topic]?.presence = nil
                reply(message, ok: "{}")
            } catch {
                logger.error("could not untrack a presence", metadata: ["error": "\(error)"])
                reply(message, error: "Unable to untrack presence")
            }
        default:
            reply(message, error: "Presence event must be track or untrack")
        }
    }

    // MARK: Tokens

    /// `access_token`: a new token for the channel (never answered, as in Supabase). A token
    /// that does not verify, or one that may no longer read a private channel, ends the channel.
    private func refreshToken(_ message: PhoenixMessage, on channel: Joined) async {
        guard case .object(let fields) = message.payload, let token = JoinConfig.string(fields["access_token"]) else { return }
        do {
            let principal = try await access.principal(token: token, tenant: tenant, connection: connectPrincipal)
            if channel.config.isPrivate, !principal.mayUsePrivateChannels {
                let name = channel.subscription.channel.topic
                return await shutDown(message.topic, reason: "You no longer have permission to read from this Channel topic: \(name)")
            }
            channel.subscription.principal = principal
        } catch let refusal as RealtimeAccess.TokenRefusal {
            await shutDown(message.topic, reason: refusal.reason)
        } catch {
            logger.warning("could not verify a refreshed token", metadata: ["error": "\(error)"])
        }
    }

    /// Ends the channels whose user token has expired (checked at every frame the socket
    /// receives, heartbeats included).
    private func expireTokens() async {
        let now = now()
        for (topic, channel) in joined {
            guard case .user(_, _, let expires) = channel.subscription.principal, expires <= now else { continue }
            await shutDown(topic, reason: "Token has expired \(Int(now.timeIntervalSince(expires))) seconds ago")
        }
    }

    // MARK: Frames out

    private func reply(_ message: PhoenixMessage, ok response: String) {
        outbox.send(serializer.frame(topic: message.topic, event: "phx_reply", payload: "{\"status\":\"ok\",\"response\":\(response)}",
                                     ref: message.ref, joinRef: message.joinRef))
    }

    private func reply(_ message: PhoenixMessage, error reason: String) {
        outbox.send(serializer.frame(topic: message.topic, event: "phx_reply",
                                     payload: "{\"status\":\"error\",\"response\":{\"reason\":\(JSONText.quote(reason))}}",
                                     ref: message.ref, joinRef: message.joinRef))
    }

    private func push(_ topic: String, _ subscription: Subscription, event: String, payload: String, ref: String? = nil) {
        outbox.send(serializer.frame(topic: topic, event: event, payload: payload, ref: ref, joinRef: subscription.joinRef))
    }

    private func system(_ topic: String, _ subscription: Subscription, extension name: String, message: String, status: String = "ok", extra: String = "") {
        let payload = "{\"channel\":\(JSONText.quote(subscription.channel.topic)),\"extension\":\(JSONText.quote(name)),"
            + "\"message\":\(JSONText.quote(message)),\"status\":\(JSONText.quote(status))\(extra)}"
        push(topic, subscription, event: "system", payload: payload)
    }
}
