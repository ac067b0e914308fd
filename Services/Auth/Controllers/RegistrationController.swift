import Contracts
import Foundation
import Hummingbird
import Logging
import ServiceClients
import Passwords
import ServiceKit

/// `POST /v1/register`: a developer account and their first project, in one step.
///
/// The password is hashed (argon2id, on the hasher's own threads, holding no database
/// connection); then, in one transaction, the developer is inserted and provisioning is asked
/// to create the project (with the developer's id as `Idempotency-Key`, so a retried call
/// cannot create two). The transaction commits only when provisioning accepted the project:
/// a taken slug (409), a refused project (422) or an unreachable provisioning service (503)
/// leaves no developer behind. Answers `202 Accepted` with the ids and the status URL.
///
/// An invite is checked before any work and accepted, under a row lock, in the developer's
/// transaction: used exactly once, and left unused by a registration that fails.
///
/// Cost bounds: `REGISTRATION_RATE_LIMIT_PER_IP` registrations an hour per client address
/// (default 20) and `REGISTRATION_RATE_LIMIT_GLOBAL` a minute from everyone (default 60, per
/// replica: each registration starts a project's provisioning, which a flood from many
/// addresses would otherwise turn into unbounded database work), both 429 `rate_limited` with
/// `Retry-After`, counted before anything else; the password hashed in the hashing queue's
/// new-account lane (503 `busy` past it); provisioning's own limit of projects per developer.
struct RegistrationController: Sendable {
    let developers: DeveloperStore
    let hasher: HashingQueue
    /// Provisioning's `POST /internal/v1/projects`.
    let projects: ProjectsClient
    let invites: InviteStore
    /// `REGISTRATION_MODE=invite_only`: registering needs a valid invite for the email.
    let inviteOnly: Bool
    /// Length limits, the common-password list, not the email (`PasswordPolicy`).
    let passwords: PasswordPolicy
    /// Auth's clock, which decides whether an invite has expired.
    let now: @Sendable () -> Date
    /// Registrations per client address and hour.
    let perAddress: RateLimiter
    /// Registrations from everyone, per minute.
    let global: RateLimiter
    /// Whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    let proxies: TrustedProxies

    func addRoutes(to router: Router<PlatformRequestContext>) {
        router.post("/v1/register", use: register)
    }

    @Sendable func register(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try perAddress.check("ip:" + proxies.clientAddress(request, context: context)).enforce()
        try global.check("everyone").enforce()
        let input = try await request.decodeJSON(as: RegisterRequest.self, context: context)
        let email = input.email.trimmingCharacters(in: .whitespacesAndNewlines)
        guard Self.isPlausibleEmail(email) else {
            throw APIError.validation(field: "email", "The email address is not valid.")
        }
        try passwords.validate(input.password, email: email)
        let projectName = input.projectName.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(projectName.count) else {
            throw APIError.validation(field: "project_name", "The project name must be 1 to 200 characters.")
        }
        let slug: String
        if let given = input.slug {
            guard ProjectSlug.isValid(given) else { throw APIError.validation(field: "slug", "The slug must be \(ProjectSlug.rule).") }
            slug = given
        } else if let derived = ProjectSlug.derive(from: projectName) {
            slug = derived
        } else {
            throw APIError.validation(field: "slug", "No slug can be made from this project name; give one (\(ProjectSlug.rule)).")
        }

        // Invites are checked before any work; accepted below, in the developer's transaction.
        if let token = input.inviteToken {
            try check(try await invites.find(token), email: email)
        } else if inviteOnly {
            throw APIError(.forbidden, code: "invite_required", message: "Registration is by invite only.")
        }

        let passwordHash = try await hasher.hash(input.password, lane: .newAccount)
        let developerID = UUID()
        let accepted: ProjectAccepted
        do {
            accepted = try await developers.insert(id: developerID, email: email, passwordHash: passwordHash) { tx in
                if let token = input.inviteToken {
                    try check(try await invites.find(token, lockingOn: tx), email: email)
                    try await invites.markAccepted(token, by: developerID, on: tx)
                }
                return try await createProject(owner: developerID, name: projectName, slug: slug, logger: context.logger)
            }
        } catch is DeveloperStore.EmailTaken {
            throw APIError.conflict(code: "email_taken", "An account with this email address already exists.")
        }
        context.logger.info("developer registered", metadata: ["developer.id": "\(developerID)", "project.id": "\(accepted.projectId)"])
        var answer = accepted
        answer.developerId = developerID
        return try jsonResponse(answer, status: .accepted)
    }

    /// Throws the answer a registration gets when the invite cannot be used for `email`.
    private func check(_ invite: InviteStore.Stored?, email: String) throws {
        guard let invite, invite.email == email.lowercased() else {
            throw APIError(.forbidden, code: "invite_invalid", message: "The invite is not valid for this email address.")
        }
        guard !invite.accepted else { throw APIError(.gone, code: "invite_used", message: "The invite was already used.") }
        guard invite.expiresAt > now() else { throw APIError(.gone, code: "invite_expired", message: "The invite has expired.") }
    }

    /// Asks provisioning for the project (`ProjectsClient`, with the developer's id as
    /// `Idempotency-Key`), translating its answers into this endpoint's.
    private func createProject(owner: UUID, name: String, slug: String, logger: Logger) async throws -> ProjectAccepted {
        do {
            let accepted = try await projects.create(
                CreateProjectRequest(ownerId: owner, name: name, slug: slug),
                idempotencyKey: owner.uuidString.lowercased()
            )
            if accepted.replayed {
                logger.info("provisioning answered from an earlier call with the same idempotency key")
            }
            return accepted.project
        } catch ProjectsClient.Failure.conflict(let envelope) {
            throw APIError.conflict(code: envelope?.error.code ?? "slug_taken", envelope?.error.message ?? "The slug \(slug) is already taken.")
        } catch ProjectsClient.Failure.refused(let envelope) {
            throw APIError(.unprocessableContent, code: envelope?.error.code ?? "validation_failed",
                           message: envelope?.error.message ?? "The project was refused.", field: envelope?.error.field)
        } catch ProjectsClient.Failure.unavailable(let error) {
            logger.warning("provisioning did not accept the project", metadata: ["error": "\(error)"])
            throw APIError.serviceUnavailable(code: "provisioning_unavailable",
                                              "Projects cannot be created right now; nothing was saved. Try again shortly.")
        }
    }

    /// A deliberately loose check (one `@`, something before it, a dotted domain after it): the
    /// real proof of an address is a confirmation email.
    static func isPlausibleEmail(_ email: String) -> Bool {
        guard (3...254).contains(email.utf8.count), !email.contains(where: \.isWhitespace) else { return false }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...64).contains(parts[0].utf8.count) else { return false }
        let domain = parts[1]
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { !$0.isEmpty }
    }
}
