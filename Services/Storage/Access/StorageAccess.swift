import Contracts
import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// Who calls a route on `/storage/v1/`, as Supabase's Storage decides it behind its gateway
/// (docs/protocols/storage-reference.md §1.1): the project from the `apikey` (or the host,
/// `ProjectResolver`); the caller from `Authorization: Bearer`, else from the key itself:
///
/// | bearer (or, without one, the `apikey`) | caller |
/// |---|---|
/// | the project's secret key | `service`: everything, no policy |
/// | the project's publishable key, or nothing (a public URL) | `anonymous`: reads public buckets |
/// | a user's access token of the project | `user`: by the bucket's policy (`BucketPolicy`) |
///
/// A token that does not verify, or a key or token of another project, is 403 `AccessDenied`.
struct StorageAccess: Sendable {
    let projects: ProjectResolver
    let tenants: TenantLookup
    let credentials: any TenantCredentialResolver

    /// Whom a request acts as.
    enum Principal: Sendable, Equatable {
        case service
        case anonymous
        case user(UUID)

        var userID: UUID? { if case .user(let id) = self { id } else { nil } }
    }

    struct Caller: Sendable {
        var tenant: RegisteredTenant
        var principal: Principal
    }

    /// The caller of a request. `requireKey: false` (public downloads) lets the host alone name
    /// the project.
    func caller(_ request: Request, requireKey: Bool = true) async throws -> Caller {
        let resolved = try await projects.resolve(request, requireKey: requireKey)
        guard let tenant = try await tenants.tenant(slug: resolved.slug) else {
            throw StorageError(.notFound, "TenantNotFound", error: "not_found", "No project has this host name.")
        }
        guard let bearer = ProjectResolver.bearer(request) else {
            return Caller(tenant: tenant, principal: resolved.apiKey?.kind == .secret ? .service : .anonymous)
        }
        if TenantAuthenticator.looksLikeAPIKey(bearer) {
            // supabase-js sends the key itself as the bearer.
            guard let key = try await credentials.apiKey(sha256: SecureToken.sha256Hex(bearer)) else {
                throw StorageError(.forbidden, "AccessDenied", error: "Unauthorized", "Invalid API key")
            }
            guard key.slug == tenant.slug else { throw Self.otherProject }
            return Caller(tenant: tenant, principal: key.kind == .secret ? .service : .anonymous)
        }
        guard let claims = try await credentials.userClaims(bearer) else {
            throw StorageError(.forbidden, "AccessDenied", error: "Unauthorized", "invalid JWT: unable to verify the token, or it has expired")
        }
        guard claims.ref == tenant.slug, let user = claims.userID else { throw Self.otherProject }
        return Caller(tenant: tenant, principal: .user(user))
    }

    /// The project of a request that carries a signed URL's token instead of credentials: the one
    /// its `apikey` or host names, else the one the token names (a link opened in a browser sends
    /// neither). The token is verified with this project's key afterwards, so naming another
    /// project than the key or host does gets nothing but a refusal.
    func tenant(signedBy token: String, _ request: Request) async throws -> RegisteredTenant {
        let named = SignedURLToken.project(of: token)
        let slug: String
        do {
            slug = try await projects.resolve(request, requireKey: false).slug
        } catch ProjectResolver.Failure.noAPIKey {
            guard let named else { throw SignedURLToken.Refusal.malformed }
            slug = named
        }
        if let named, named != slug { throw Self.otherProject }
        // A token naming a project that does not exist is only a bad token.
        guard ProjectSlug.isValid(slug), let tenant = try await tenants.tenant(slug: slug) else { throw SignedURLToken.Refusal.badSignature }
        return tenant
    }

    static let otherProject = StorageError(.forbidden, "AccessDenied", error: "tenant_mismatch", "The credentials belong to another project.")
}
