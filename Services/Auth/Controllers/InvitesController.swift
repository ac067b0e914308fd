import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// `POST /v1/invites` (bearer: a signed-in developer invites a colleague) and
/// `POST /internal/v1/invites` (service token: an operator invites, e.g. the first developer of
/// an invite-only platform). Both answer 201 with the invite and its token, shown once; the
/// invite expires `lifetime` (`INVITE_TTL_HOURS`) after auth's clock says it was made.
struct InvitesController: Sendable {
    let store: InviteStore
    let authenticator: BearerAuthenticator
    let lifetime: Duration
    let now: @Sendable () -> Date

    func addRoutes(to router: Router<PlatformRequestContext>, internal internalGroup: RouterGroup<PlatformRequestContext>) {
        router.post("/v1/invites") { request, context in
            let inviter = try await authenticator.developerID(request)
            return try await create(request, context: context, invitedBy: inviter)
        }
        internalGroup.post("/v1/invites") { request, context in
            try await create(request, context: context, invitedBy: nil)
        }
    }

    private func create(_ request: Request, context: PlatformRequestContext, invitedBy: UUID?) async throws -> Response {
        let input = try await request.decodeJSON(as: InviteRequest.self, context: context)
        let email = input.email.trimmingCharacters(in: .whitespacesAndNewlines)
        guard RegistrationController.isPlausibleEmail(email) else {
            throw APIError.validation(field: "email", "The email address is not valid.")
        }
        let expiresAt = now().addingTimeInterval(Double(lifetime.components.seconds))
        let invite = try await store.create(email: email, invitedBy: invitedBy, expiresAt: expiresAt)
        context.logger.info("invite created", metadata: ["invite.id": "\(invite.id)"])
        return try jsonResponse(invite, status: .created, headers: [.cacheControl: "no-store"])
    }
}
