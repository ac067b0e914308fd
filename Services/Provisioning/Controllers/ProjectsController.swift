import Contracts
import Foundation
import Hummingbird
import Resilience
import ServiceKit

/// Projects, for their owners (a developer's access token) and the operator (the service
/// token, every project), and for auth's registration (internal):
///
/// - `POST /internal/v1/projects` — auth creates a developer's first project (202).
/// - `GET /v1/projects?limit=&cursor=&include_deleted=` — the caller's projects, newest first,
///   a page at a time (the operator sees everyone's, or one developer's with `owner_id=`).
/// - `POST /v1/projects {name, slug?}` — another project through the same saga (202); honours
///   `Idempotency-Key`; at most `PROVISIONING_PROJECTS_PER_DEVELOPER` per developer (403).
/// - `GET /v1/projects/{id}[?wait=30s]` — status, `is_active`, the latest execution with its
///   steps (attempts, errors); with `wait`, answered when the status changes (or the wait ends).
/// - `POST /v1/projects/{id}/retry` — a new provisioning attempt of a failed project (202).
/// - `DELETE /v1/projects/{id}` — deprovision: the saga in reverse, `deprovisioning → deleted` (202).
///
/// Another developer's project answers 404, exactly as a project that does not exist.
struct ProjectsController: Sendable {
    let store: ProjectStore
    let idempotency: IdempotencyStore
    let doorbell: Doorbell
    let authenticator: DeveloperAuthenticator
    let signals: ProjectSignals
    let settings: ProvisioningSettings

    /// The longest `?wait=` a status read may hold.
    static let longestWait: Duration = .seconds(50)  // below the gateway's 60 s proxy_read_timeout

    func addRoutes(internal internalGroup: RouterGroup<PlatformRequestContext>, projects: RouterGroup<PlatformRequestContext>) {
        internalGroup.post("/v1/projects", use: createForRegistration)
        projects.get(use: list)
        projects.post(use: create)
        projects.get("/{id}", use: show)
        projects.post("/{id}/retry", use: retry)
        projects.delete("/{id}", use: delete)
    }

    /// Honours `Idempotency-Key`: auth sends the developer's id, so a repeated call (a retry
    /// after a timeout) answers with the project the first call created.
    @Sendable func createForRegistration(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        try await idempotency.respond(to: request, context: context, scope: "POST /internal/v1/projects") { body in
            let input = try decodeJSON(CreateProjectRequest.self, from: body)
            return try await start(owner: input.ownerId, name: input.name, slug: input.slug, ownerUnconfirmed: true, context: context)
        }
    }

    /// A developer's own project, or (operator) one for the developer `owner_id` names. The
    /// idempotency scope is the caller's, so two developers' keys never meet.
    @Sendable func create(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        return try await idempotency.respond(to: request, context: context, scope: "POST /v1/projects " + caller.label) { body in
            let input = try decodeJSON(NewProjectRequest.self, from: body)
            let owner = try caller.owner(requested: input.ownerId, of: "projects")
            let name = input.name.trimmingCharacters(in: .whitespacesAndNewlines)
            let slug: String
            if let given = input.slug {
                slug = given
            } else if let derived = ProjectSlug.derive(from: name) {
                slug = derived
            } else {
                throw APIError.validation(field: "slug", "No slug can be made from this project name; give one (\(ProjectSlug.rule)).")
            }
            return try await start(owner: owner, name: input.name, slug: slug, context: context)
        }
    }

    private func start(owner: UUID, name rawName: String, slug: String, ownerUnconfirmed: Bool = false,
                       context: PlatformRequestContext) async throws -> IdempotentResponse {
        let name = rawName.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(name.count) else {
            throw APIError.validation(field: "name", "The project name must be 1 to 200 characters.")
        }
        guard ProjectSlug.isValid(slug) else {
            throw APIError.validation(field: "slug", "The slug must be \(ProjectSlug.rule).")
        }
        let created = try await store.createProject(ownerID: owner, name: name, slug: slug, limit: settings.projectsPerDeveloper,
                                                    ownerUnconfirmed: ownerUnconfirmed)
        doorbell.ring()
        context.logger.info("project accepted", metadata: ["project.id": "\(created.project)", "tenant.slug": "\(slug)"])
        return try .json(accepted(project: created.project, execution: created.execution, slug: slug, status: .pending), status: .accepted)
    }

    @Sendable func list(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        let query = request.uri.queryParameters
        let limit = try query.get("limit").map { text in
            guard let value = Int(text), (1...100).contains(value) else { throw APIError.validation(field: "limit", "limit must be 1 to 100.") }
            return value
        } ?? 20
        let cursor = try query.get("cursor").map { text in
            guard let id = UUID(uuidString: text) else { throw APIError.validation(field: "cursor", "cursor must be a next_cursor from an earlier page.") }
            return id
        }
        let includeDeleted = try query.get("include_deleted").map { text in
            guard let value = Bool(text) else { throw APIError.validation(field: "include_deleted", "include_deleted must be true or false.") }
            return value
        } ?? false
        var owner = caller.owner
        if caller == .operatorToken, let text = query.get("owner_id") {
            guard let id = UUID(uuidString: text) else { throw APIError.validation(field: "owner_id", "owner_id must be a UUID.") }
            owner = id
        }
        return try jsonResponse(try await store.list(owner: owner, includeDeleted: includeDeleted, limit: limit, after: cursor))
    }

    /// With `?wait=` (`30s`, `500ms`, or seconds; at most 50 s), answers once the status differs
    /// from the one the request found, or when the wait is over, whichever is first.
    @Sendable func show(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        let id = try Self.projectID(context)
        let wait = try request.uri.queryParameters.get("wait").map(Self.parseWait)
        guard let wait, wait > .zero else {
            guard let status = try await store.status(of: id, owner: caller.owner) else { throw APIError.notFound("project") }
            return try jsonResponse(status)
        }
        let status = try await signals.watching(id) { signal in
            guard var status = try await store.status(of: id, owner: caller.owner) else { throw APIError.notFound("project") }
            let found = status.status
            let deadline = ContinuousClock.now + wait
            while status.status == found, !signals.isClosed, !signal.isClosed, ContinuousClock.now < deadline {
                await signal.wait(upTo: deadline - ContinuousClock.now)
                guard let next = try await store.status(of: id, owner: caller.owner) else { throw APIError.notFound("project") }
                status = next
            }
            return status
        }
        return try jsonResponse(status)
    }

    /// Honours `Idempotency-Key` too: a repeated retry answers with the execution it started.
    @Sendable func retry(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        let id = try Self.projectID(context)
        let scope = "POST /v1/projects/\(id.uuidString.lowercased())/retry " + caller.label
        return try await idempotency.respond(to: request, context: context, scope: scope) { _ in
            let started = try await store.retry(projectID: id, owner: caller.owner)
            doorbell.ring()
            return try .json(accepted(project: id, execution: started.execution, slug: started.slug, status: .pending), status: .accepted)
        }
    }

    @Sendable func delete(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        let id = try Self.projectID(context)
        let started = try await store.deprovision(projectID: id, owner: caller.owner)
        doorbell.ring()
        return try jsonResponse(accepted(project: id, execution: started.execution, slug: started.slug, status: started.status), status: .accepted)
    }

    static func projectID(_ context: PlatformRequestContext) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else {
            throw APIError.validation(field: "id", "The project id must be a UUID.")
        }
        return id
    }

    /// `30s`, `500ms`, or a number of seconds; up to `longestWait`.
    static func parseWait(_ text: String) throws -> Duration {
        let invalid = APIError.validation(field: "wait", "wait must be a duration such as 30s or 500ms, at most 50s.")
        let duration: Duration
        if text.hasSuffix("ms"), let value = Int(text.dropLast(2)) {
            duration = .milliseconds(value)
        } else if let value = Int(text.hasSuffix("s") ? String(text.dropLast()) : text) {
            duration = .seconds(value)
        } else {
            throw invalid
        }
        guard duration >= .zero, duration <= longestWait else { throw invalid }
        return duration
    }

    private func accepted(project: UUID, execution: UUID, slug: String, status: ProjectState) -> ProjectAccepted {
        ProjectAccepted(
            projectId: project, workflowId: execution, slug: slug, status: status,
            statusUrl: "\(settings.publicURL)/v1/projects/\(project.uuidString.lowercased())"
        )
    }
}
