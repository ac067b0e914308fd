import Contracts
import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// Broadcasting over HTTP (docs/protocols/realtime-reference.md §4.3–4.4), authenticated by the
/// project's `apikey` and optionally a user's `Authorization: Bearer` token:
///
/// - `POST /realtime/v1/api/broadcast` `{"messages":[{"topic","event","payload","private"?}]}`
/// - `POST /realtime/v1/api/broadcast/{topic}/events/{event}[?private=true]`, the body being
///   the payload (supabase-py's `http_send`)
///
/// Both answer 202 with no body once every message is numbered and sent. A message for a
/// private channel needs a user's token or the secret key (403 otherwise, where Supabase
/// silently drops it).
struct BroadcastController: Sendable {
    let services: RealtimeServices

    /// Supabase refuses larger batches too.
    static let maxBatch = 100

    func addRoutes(to router: Router<PlatformRequestContext>) {
        router.post("/realtime/v1/api/broadcast", use: batch)
        router.post("/realtime/v1/api/broadcast/{topic}/events/{event}", use: single)
    }

    struct Outgoing {
        var channel: ChannelKey
        var event: String
        var payload: String
    }

    @Sendable func batch(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await caller(request)
        let body = try await request.decodeJSON(as: JSONValue.self, context: context)
        guard case .object(let fields) = body, case .array(let messages)? = fields["messages"] else {
            throw RealtimeError(.unprocessableContent, "The body must be {\"messages\": [...]}")
        }
        guard messages.count <= Self.maxBatch else {
            throw RealtimeError(.tooManyRequests, "Too many messages to broadcast, please reduce the batch size")
        }
        var outgoing: [Outgoing] = []
        for (index, message) in messages.enumerated() {
            guard case .object(let message) = message,
                  let topic = JoinConfig.string(message["topic"]), !topic.isEmpty,
                  let event = JoinConfig.string(message["event"]), !event.isEmpty,
                  case .object? = message["payload"]
            else {
                throw RealtimeError(.unprocessableContent, "messages[\(index)] needs a topic, an event and an object payload")
            }
            let isPrivate = JoinConfig.flag(message["private"]) ?? false
            outgoing.append(try compose(caller, topic: topic, event: event, isPrivate: isPrivate, payload: message["payload"]!))
        }
        try await send(outgoing, for: caller)
        return Response(status: .accepted)
    }

    @Sendable func single(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await caller(request)
        // The topic arrives percent-encoded, `/` included (supabase-py encodes it).
        guard let topic = context.parameters.get("topic")?.removingPercentEncoding, !topic.isEmpty,
              let event = context.parameters.get("event")?.removingPercentEncoding, !event.isEmpty
        else { throw RealtimeError(.unprocessableContent, "The topic and the event must not be empty") }
        let type = request.headers[.contentType]?.lowercased() ?? "application/json"
        guard type.hasPrefix("application/json") else {
            throw RealtimeError(.unsupportedMediaType, "Only JSON payloads are supported (Content-Type: application/json)")
        }
        let payload = try await request.decodeJSON(as: JSONValue.self, context: context)
        let isPrivate = request.uri.queryParameters.get("private") == "true"
        try await send([try compose(caller, topic: topic, event: event, isPrivate: isPrivate, payload: payload)], for: caller)
        return Response(status: .accepted)
    }

    private func caller(_ request: Request) async throws -> RealtimeAccess.Caller {
        let access = RealtimeAccess(services: services)
        var caller = try await access.caller(request)
        do {
            caller.principal = try await access.principal(token: ProjectResolver.bearer(request), tenant: caller.tenant, connection: caller.principal)
        } catch is RealtimeAccess.TokenRefusal {
            throw RealtimeError.unauthorized
        }
        return caller
    }

    private func compose(_ caller: RealtimeAccess.Caller, topic: String, event: String, isPrivate: Bool, payload: JSONValue) throws -> Outgoing {
        if isPrivate, !caller.principal.mayUsePrivateChannels {
            throw RealtimeError(.forbidden, "You do not have permissions to write to this Channel topic: \(topic)")
        }
        let text = JSONText.serialize(payload)
        guard text.utf8.count <= services.settings.maxPayloadBytes else {
            throw RealtimeError(.contentTooLarge, "Payload size exceeds the limit of \(services.settings.maxPayloadBytes) bytes")
        }
        return Outgoing(channel: ChannelKey(tenant: caller.tenant.registered.id, isPrivate: isPrivate, topic: topic), event: event, payload: text)
    }

    private func send(_ outgoing: [Outgoing], for caller: RealtimeAccess.Caller) async throws {
        let tenant = caller.tenant
        guard services.limiter.allowEvent(tenant.registered.id, limit: tenant.limits.eventsPerSecond, count: outgoing.count) else {
            throw RealtimeError(.tooManyRequests, "You have exceeded your rate limit")
        }
        for message in outgoing {
            _ = try await services.broadcasts.append(message.channel, event: message.event, payload: message.payload, origin: nil)
        }
    }
}
