import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// `GET /v1/projects/{id}/api-keys` — the project's publishable and secret keys for its owner
/// (or the operator): ids, kinds, prefixes and creation times always; the keys themselves in
/// exactly one answer, the first once the project is ready. They are deleted from the database
/// by that answer, or `PROVISIONING_KEY_REVEAL_SECONDS` after minting when nobody asked
/// (`KeyRevealJanitor`), so no readable key outlives its purpose. Never cached.
struct ProjectKeysController: Sendable {
    let store: ProjectStore
    let authenticator: DeveloperAuthenticator
    let revealTTL: Duration

    func addRoutes(to projects: RouterGroup<PlatformRequestContext>) {
        projects.get("/{id}/api-keys", use: show)
    }

    @Sendable func show(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        let id = try ProjectsController.projectID(context)
        guard let keys = try await store.apiKeys(of: id, owner: caller.owner, revealTTL: revealTTL) else {
            throw APIError.notFound("project")
        }
        if keys.keys.contains(where: { $0.key != nil }) {
            context.logger.info("api keys revealed", metadata: ["project.id": "\(id)", "caller": "\(caller.label)"])
        }
        return try jsonResponse(keys, headers: [.cacheControl: "no-store"])
    }
}
