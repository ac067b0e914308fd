import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// Projects: created by auth (internal), read, retried and deleted by operators.
///
/// - `POST /internal/v1/projects` — create a project and start provisioning it (202).
/// - `GET /v1/projects/{id}` — status, `is_active`, the latest execution with its steps
///   (attempts, errors), and the API keys in the first answer after they were minted.
/// - `POST /v1/projects/{id}/retry` — start a new provisioning attempt of a failed project (202).
/// - `DELETE /v1/projects/{id}` — deprovision: the saga in reverse, `deprovisioning → deleted` (202).
///
/// The operator routes take the platform's service token until developer tokens arrive (auth).
struct ProjectsController: Sendable {
    let store: ProjectStore
    let idempotency: IdempotencyStore
    let doorbell: Doorbell
    let publicURL: String

    func addRoutes(internal internalGroup: RouterGroup<PlatformRequestContext>, operator operatorGroup: RouterGroup<PlatformRequestContext>) {
        internalGroup.post("/v1/projects", use: create)
        operatorGroup.get("/{id}", use: show)
        operatorGroup.post("/{id}/retry", use: retry)
        operatorGroup.delete("/{id}", use: delete)
    }

    /// Honours `Idempotency-Key`: auth sends the developer's id, so a repeated call (a retry
    /// after a timeout) answers with the project the first call created.
    @Sendable func create(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await idempotency.respond(to: request, context: context, scope: "POST /internal/v1/projects") { body in
            let input = try decodeJSON(CreateProjectRequest.self, from: body)
            let name = input.name.trimmingCharacters(in: .whitespacesAndNewlines)
            guard (1...200).contains(name.count) else {
                throw APIError.validation(field: "name", "The project name must be 1 to 200 characters.")
            }
            guard ProjectSlug.isValid(input.slug) else {
                throw APIError.validation(field: "slug", "The slug must be \(ProjectSlug.rule).")
            }
            let created = try await store.createProject(ownerID: input.ownerId, name: name, slug: input.slug)
            doorbell.ring()
            context.logger.info("project accepted", metadata: ["project.id": "\(created.project)", "tenant.slug": "\(input.slug)"])
            return try .json(accepted(project: created.project, execution: created.execution, slug: input.slug, status: .pending), status: .accepted)
        }
    }

    @Sendable func show(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let id = try projectID(context)
        guard let status = try await store.status(of: id) else { throw APIError.notFound("project") }
        return try jsonResponse(status)
    }

    /// Honours `Idempotency-Key` too: a repeated retry answers with the execution it started.
    @Sendable func retry(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let id = try projectID(context)
        return try await idempotency.respond(to: request, context: context, scope: "POST /v1/projects/{id}/retry") { _ in
            let started = try await store.retry(projectID: id)
            doorbell.ring()
            return try .json(accepted(project: id, execution: started.execution, slug: started.slug, status: .pending), status: .accepted)
        }
    }

    @Sendable func delete(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let id = try projectID(context)
        let started = try await store.deprovision(projectID: id)
        doorbell.ring()
        return try jsonResponse(accepted(project: id, execution: started.execution, slug: started.slug, status: started.status), status: .accepted)
    }

    private func projectID(_ context: PlatformRequestContext) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else {
            throw APIError.validation(field: "id", "The project id must be a UUID.")
        }
        return id
    }

    private func accepted(project: UUID, execution: UUID, slug: String, status: ProjectState) -> ProjectAccepted {
        ProjectAccepted(
            projectId: project, workflowId: execution, slug: slug, status: status,
            statusUrl: "\(publicURL)/v1/projects/\(project.uuidString.lowercased())"
        )
    }
}
