import Contracts
import Foundation
import HTTPClient
import ServiceClients
import Testing

/// Auth as a consumer: registration's call to provisioning (`ProjectsClient`, with the
/// developer's id as `Idempotency-Key`), driven against the Pact stub; writes
/// `auth-provisioning.json`.
@Suite("Pact consumer: auth")
struct AuthConsumerPacts {
    static let path = "/internal/v1/projects"
    static let key = Fixtures.developerID.uuidString.lowercased()
    static let headers: [(String, PactValue)] = [
        ("Content-Type", "application/json"),
        ("X-Service-Token", Fixtures.serviceTokenHeader),
        // Any key of 1 to 255 visible characters; registration sends the developer's id.
        ("Idempotency-Key", .term(regex: "^[!-~]{1,255}$", example: key)),
    ]
    /// As the consumer sends it: Foundation encodes a UUID upper-case (providers read either).
    static let body: PactValue = [
        "owner_id": .string(Fixtures.developerID.uuidString.lowercased()),
        "name": .string(Fixtures.projectName),
        "slug": .string(Fixtures.projectSlug),
    ]
    static var request: CreateProjectRequest {
        CreateProjectRequest(ownerId: Fixtures.developerID, name: Fixtures.projectName, slug: Fixtures.projectSlug)
    }
    /// What registration hands on to the developer: the ids, the slug, `pending`, and where to
    /// follow the project.
    static let acceptedBody: PactValue = [
        "project_id": .uuid(Fixtures.projectID.uuidString),
        "workflow_id": .uuid(Fixtures.workflowID.uuidString),
        "slug": .string(Fixtures.projectSlug),
        "status": "pending",
        "status_url": .term(
            regex: "^https?://[^/]+(/.*)?/v1/projects/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
            example: "http://127.0.0.1:8082/v1/projects/" + Fixtures.projectID.uuidString.lowercased()
        ),
    ]
    static let jsonHeaders: [(String, PactValue)] = [("Content-Type", Fixtures.jsonContentType)]
    static var projectParams: [(String, PactValue)] {
        [("slug", .string(Fixtures.projectSlug)), ("idempotency_key", .string(key))]
    }

    static func projects(_ url: String, _ http: CurlHTTPClient) -> ProjectsClient {
        ProjectsClient(http: http, provisioningURL: url, serviceToken: Fixtures.serviceToken)
    }

    @Test("auth → provisioning: create a developer's first project, idempotently")
    func provisioning() async throws {
        var pact = Pact(consumer: "auth", provider: "provisioning")

        try await pact.verify(Interaction(
            description: "a request to create a project for a new developer",
            states: [ProviderState(name: "no project has this slug or idempotency key", params: Self.projectParams)],
            request: .init(method: "POST", path: Self.path, headers: Self.headers, body: Self.body),
            response: .init(status: 202, headers: Self.jsonHeaders, body: Self.acceptedBody)
        )) { url in
            try await Fixtures.withClient { http in
                let accepted = try await Self.projects(url, http).create(Self.request, idempotencyKey: Self.key)
                try #require(!accepted.replayed)
                try #require(accepted.project.slug == Fixtures.projectSlug && accepted.project.status == .pending)
                try #require(accepted.project.statusUrl.hasSuffix("/v1/projects/" + accepted.project.projectId.uuidString.lowercased()))
            }
        }

        try await pact.verify(Interaction(
            description: "the same request again with the same idempotency key",
            states: [ProviderState(name: "a project was created with this idempotency key", params: Self.projectParams + [
                ("owner_id", .string(Fixtures.developerID.uuidString.lowercased())), ("name", .string(Fixtures.projectName)),
            ])],
            request: .init(method: "POST", path: Self.path, headers: Self.headers, body: Self.body),
            response: .init(status: 202, headers: Self.jsonHeaders + [("Idempotent-Replayed", "true")], body: Self.acceptedBody)
        )) { url in
            try await Fixtures.withClient { http in
                // A retried registration call gets the first answer back, not a second project.
                let accepted = try await Self.projects(url, http).create(Self.request, idempotencyKey: Self.key)
                try #require(accepted.replayed && accepted.project.slug == Fixtures.projectSlug)
            }
        }

        try await pact.verify(Interaction(
            description: "a request to create a project with a slug another project has",
            states: [ProviderState(name: "another project has this slug", params: Self.projectParams)],
            request: .init(method: "POST", path: Self.path, headers: Self.headers, body: Self.body),
            response: .init(status: 409, headers: Self.jsonHeaders, body: ["error": ["code": "slug_taken", "message": .like("The slug is taken.")]])
        )) { url in
            try await Fixtures.withClient { http in
                // Registration answers 409 slug_taken and keeps no developer.
                do {
                    _ = try await Self.projects(url, http).create(Self.request, idempotencyKey: Self.key)
                    throw PactFailure(messages: ["expected 409 slug_taken"])
                } catch ProjectsClient.Failure.conflict(let envelope) {
                    try #require(envelope?.error.code == "slug_taken")
                }
            }
        }

        try await pact.verify(Interaction(
            description: "a request reusing an idempotency key for a different project",
            states: [ProviderState(name: "the idempotency key was used for another project", params: [
                ("idempotency_key", .string(Self.key)), ("owner_id", .string(Fixtures.developerID.uuidString.lowercased())),
                ("name", "Another Project"), ("slug", "contract_another"),
            ])],
            request: .init(method: "POST", path: Self.path, headers: Self.headers, body: Self.body),
            response: .init(status: 422, headers: Self.jsonHeaders, body: [
                "error": ["code": "idempotency_key_reused", "message": .like("The key was used for another request.")],
            ])
        )) { url in
            try await Fixtures.withClient { http in
                // Registration answers 422 with provisioning's code and keeps no developer.
                do {
                    _ = try await Self.projects(url, http).create(Self.request, idempotencyKey: Self.key)
                    throw PactFailure(messages: ["expected 422 idempotency_key_reused"])
                } catch ProjectsClient.Failure.refused(let envelope) {
                    try #require(envelope?.error.code == "idempotency_key_reused")
                }
            }
        }

        try pact.write()
    }
}
