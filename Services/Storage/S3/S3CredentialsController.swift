import Contracts
import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// A project's S3 access keys on storage's developer API, with the project's **secret** key
/// (as `apikey`, or as the bearer); 401/403 as `TenantAuthenticator` decides:
///
/// | route | answer |
/// |---|---|
/// | `POST /v1/tenants/{slug}/s3/credentials` `{description?}` | 201 the key with its `secret_access_key`, shown this once |
/// | `GET /v1/tenants/{slug}/s3/credentials` | `{"credentials": [...]}`, revoked ones with their `revoked_at`, no secrets |
/// | `DELETE /v1/tenants/{slug}/s3/credentials/{id}` | 204; the key is refused from the next request on (403 `InvalidAccessKeyId`) |
///
/// Requests signed with a key act as the project itself on `/storage/v1/s3` (`S3Access`).
struct S3CredentialsController: Sendable {
    let registry: TenantRegistry
    let authenticator: TenantAuthenticator
    let credentials: S3CredentialStore

    static let path = "/v1/tenants/:slug/s3/credentials"

    func addRoutes(to router: Router<PlatformRequestContext>) {
        router.post(RouterPath(Self.path), use: issue)
        router.get(RouterPath(Self.path), use: list)
        router.delete(RouterPath(Self.path + "/:id"), use: revoke)
    }

    struct Issue: Decodable {
        var description: String?
    }

    /// The answer to an issue: the key and, this once, its secret.
    struct Issued: Encodable {
        var credential: S3CredentialStore.Credential
        var secretAccessKey: String

        enum CodingKeys: String, CodingKey { case secretAccessKey = "secret_access_key" }

        func encode(to encoder: any Encoder) throws {
            try credential.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(secretAccessKey, forKey: .secretAccessKey)
        }
    }

    struct Listing: Encodable {
        var credentials: [S3CredentialStore.Credential]
    }

    static let maximumDescription = 256

    @Sendable func issue(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let tenant = try await tenant(request, context)
        let body = try await request.collectBody(context: context)
        let input = body.readableBytes == 0 ? Issue() : try decodeJSON(Issue.self, from: body)
        let description = input.description ?? ""
        guard description.count <= Self.maximumDescription, !description.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw APIError.validation(field: "description", "The description must be at most \(Self.maximumDescription) characters, without control characters.")
        }
        let (credential, secret) = try await credentials.issue(tenant: tenant.id, description: description)
        context.logger.notice("S3 access key issued", metadata: ["tenant.id": "\(tenant.id)", "s3.credential": "\(credential.id)"])
        return try jsonResponse(Issued(credential: credential, secretAccessKey: secret), status: .created, headers: [.cacheControl: "no-store"])
    }

    @Sendable func list(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let tenant = try await tenant(request, context)
        return try jsonResponse(Listing(credentials: try await credentials.list(tenant: tenant.id)))
    }

    @Sendable func revoke(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let tenant = try await tenant(request, context)
        guard let id = UUID(uuidString: try context.parameters.require("id")),
              try await credentials.revoke(id: id, tenant: tenant.id)
        else { throw APIError.notFound("S3 access key") }
        context.logger.notice("S3 access key revoked", metadata: ["tenant.id": "\(tenant.id)", "s3.credential": "\(id)"])
        return Response(status: .noContent)
    }

    /// The project the path names, for its secret key only.
    private func tenant(_ request: Request, _ context: PlatformRequestContext) async throws -> RegisteredTenant {
        let slug = try context.parameters.require("slug")
        _ = try await authenticator.authenticate(request, slug: slug, requiring: .secretKey)
        guard let tenant = try await registry.tenant(slug: slug) else { throw APIError.notFound("project") }
        return tenant
    }
}
