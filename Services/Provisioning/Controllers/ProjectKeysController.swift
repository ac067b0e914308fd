import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// `GET /v1/projects/{id}/api-keys` — the project's publishable and secret keys for its owner
/// (or the operator): ids, kinds, prefixes and creation times always; the keys themselves in
/// exactly one answer, the first once the project is ready. They are deleted from the database
/// by that answer, or `PROVISIONING_KEY_REVEAL_SECONDS` after minting when nobody asked
/// (`KeyRevealJanitor`), so no readable key outlives its purpose. Never cached.
///
/// `POST /v1/projects/{id}/api-keys/rotate {grace_seconds?}` — 202: a durable `rotate_keys`
/// workflow mints a new set, makes it work beside the current one (then `GET …/api-keys`
/// reveals it, `state: next`, and shows the current one `retiring` with `retires_at`), waits out
/// the grace period (`PROVISIONING_KEY_GRACE_SECONDS` unless given, 0 to 30 days), revokes the
/// old set and announces `project.keys_rotated`. Requests with either set work throughout.
/// Honours `Idempotency-Key`; 409 `not_ready`, 423 while another operation runs.
struct ProjectKeysController: Sendable {
    let store: ProjectStore
    let idempotency: IdempotencyStore
    let doorbell: Doorbell
    let authenticator: DeveloperAuthenticator
    let settings: ProvisioningSettings

    func addRoutes(to projects: RouterGroup<PlatformRequestContext>) {
        projects.get("/{id}/api-keys", use: show)
        projects.post("/{id}/api-keys/rotate", use: rotate)
    }

    @Sendable func rotate(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        let id = try ProjectsController.projectID(context)
        let scope = "POST /v1/projects/\(id.uuidString.lowercased())/api-keys/rotate " + caller.label
        return try await idempotency.respond(to: request, context: context, scope: scope) { body in
            let input = body.readableBytes == 0 ? RotateKeysRequest() : try decodeJSON(RotateKeysRequest.self, from: body)
            let grace = try input.graceSeconds.map { seconds in
                guard (0...2_592_000).contains(seconds) else {
                    throw APIError.validation(field: "grace_seconds", "grace_seconds must be 0 to 2592000 (30 days).")
                }
                return Duration.seconds(seconds)
            } ?? settings.keyGrace
            let started = try await store.startRotation(projectID: id, owner: caller.owner, grace: grace)
            doorbell.ring()
            context.logger.info("api key rotation started", metadata: ["project.id": "\(id)", "workflow.id": "\(started.execution)"])
            return try .json(ProjectAccepted(projectId: id, workflowId: started.execution, slug: started.slug, status: .ready,
                                             statusUrl: "\(settings.publicURL)/v1/projects/\(id.uuidString.lowercased())"), status: .accepted)
        }
    }

    @Sendable func show(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        let id = try ProjectsController.projectID(context)
        guard let keys = try await store.apiKeys(of: id, owner: caller.owner, revealTTL: settings.keyRevealTTL) else {
            throw APIError.notFound("project")
        }
        if keys.keys.contains(where: { $0.key != nil }) {
            context.logger.info("api keys revealed", metadata: ["project.id": "\(id)", "caller": "\(caller.label)"])
        }
        return try jsonResponse(keys, headers: [.cacheControl: "no-store"])
    }
}
