import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// `GET /internal/v1/developers/{id}` (service token): 200 when the developer account exists,
/// 404 when it does not. Provisioning's orphan reconciler asks it about the owner of a project
/// made for a registration: a registration that died between provisioning's 202 and auth's
/// commit leaves a project whose owner never came to exist, which it then deprovisions.
struct DevelopersController: Sendable {
    let developers: DeveloperStore

    func addRoutes(internal routes: RouterGroup<PlatformRequestContext>) {
        routes.get("/v1/developers/:id", use: show)
    }

    @Sendable func show(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else {
            throw APIError.validation(field: "id", "The developer id must be a UUID.")
        }
        guard try await developers.developer(id: id) != nil else { throw APIError.notFound("developer") }
        return try jsonResponse(DeveloperAccount(developerId: id), headers: [.cacheControl: "no-store"])
    }
}
