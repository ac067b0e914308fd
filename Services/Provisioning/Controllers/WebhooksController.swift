import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// Lifecycle webhooks, for developers (their access token) and the operator (the service
/// token, every endpoint; creating one names its `owner_id`):
///
/// - `POST /v1/webhooks {url, events?}` — 201 with the endpoint and its signing `secret`
///   (`whsec_…`), shown this once. The URL must be `http(s)` and resolve to public addresses
///   only (422 `webhook_target_refused`), unless `WEBHOOK_ALLOW_PRIVATE_TARGETS`.
/// - `GET /v1/webhooks` — the caller's endpoints, without secrets.
/// - `DELETE /v1/webhooks/{id}` — 204; its pending deliveries go with it.
/// - `POST /v1/webhooks/{id}/enable` — resumes a disabled endpoint.
/// - `GET /v1/webhooks/{id}/deliveries` — the latest 100 deliveries: status, attempts, the last
///   answer or error, when the next attempt is due.
/// - `POST /v1/webhooks/{id}/deliveries/{delivery}/redeliver` — 202: sent again, same
///   `webhook-id` and body; 409 `endpoint_disabled` while the endpoint is disabled.
///
/// Another developer's endpoint answers 404, as one that does not exist.
struct WebhooksController: Sendable {
    let store: WebhookStore
    let authenticator: DeveloperAuthenticator
    let target: WebhookTarget

    func addRoutes(to webhooks: RouterGroup<PlatformRequestContext>) {
        webhooks.post(use: create)
        webhooks.get(use: list)
        webhooks.delete("/{id}", use: delete)
        webhooks.post("/{id}/enable", use: enable)
        webhooks.get("/{id}/deliveries", use: deliveries)
        webhooks.post("/{id}/deliveries/{delivery}/redeliver", use: redeliver)
    }

    @Sendable func create(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        let input = try await request.decodeJSON(as: NewWebhookRequest.self, context: context)
        let owner = try caller.owner(requested: input.ownerId, of: "webhook endpoints")
        let events = input.events ?? WebhookEvent.allCases
        guard !events.isEmpty else { throw APIError.validation(field: "events", "Subscribe to at least one event, or leave events out for all.") }
        do {
            _ = try await target.address(of: input.url)
        } catch let refused as WebhookTarget.Refused {
            throw APIError(.unprocessableContent, code: "webhook_target_refused", message: refused.description, field: "url")
        }
        let endpoint = try await store.create(owner: owner, url: input.url, events: Array(Set(events)).sorted { $0.rawValue < $1.rawValue },
                                              secret: WebhookSignature.newSecret())
        context.logger.info("webhook endpoint registered", metadata: ["webhook.endpoint": "\(endpoint.id.uuidString.lowercased())"])
        return try jsonResponse(endpoint, status: .created, headers: [.cacheControl: "no-store"])
    }

    @Sendable func list(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        return try jsonResponse(WebhookEndpointList(webhooks: try await store.list(owner: caller.owner)))
    }

    @Sendable func delete(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        guard try await store.delete(try Self.id(context, "id"), owner: caller.owner) else { throw APIError.notFound("webhook endpoint") }
        return Response(status: .noContent)
    }

    @Sendable func enable(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        guard let endpoint = try await store.enable(try Self.id(context, "id"), owner: caller.owner) else {
            throw APIError.notFound("webhook endpoint")
        }
        return try jsonResponse(endpoint)
    }

    @Sendable func deliveries(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        guard let list = try await store.deliveries(of: try Self.id(context, "id"), owner: caller.owner, limit: 100) else {
            throw APIError.notFound("webhook endpoint")
        }
        return try jsonResponse(WebhookDeliveryList(deliveries: list))
    }

    @Sendable func redeliver(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        switch try await store.redeliver(try Self.id(context, "delivery"), of: try Self.id(context, "id"), owner: caller.owner) {
        case .queued: return Response(status: .accepted)
        case .noSuchDelivery: throw APIError.notFound("webhook delivery")
        case .endpointDisabled:
            throw APIError.conflict(code: "endpoint_disabled", "The endpoint is disabled; enable it (POST /v1/webhooks/{id}/enable) first.")
        }
    }

    static func id(_ context: PlatformRequestContext, _ name: String) throws -> UUID {
        guard let text = context.parameters.get(name), let id = UUID(uuidString: text) else {
            throw APIError.validation(field: name, "The \(name == "id" ? "webhook endpoint" : name) id must be a UUID.")
        }
        return id
    }
}
