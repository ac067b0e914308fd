import Contracts
import Foundation
import HTTPClient
import ServiceKit

/// Provisioning's calls to the other services' internal tenant endpoints, through the libcurl
/// kit. Registration is a PUT (upsert), removal a DELETE whose 404 means "already gone": both
/// are safe to repeat, which is what lets the saga retry and resume them.
struct ServiceRegistrar: Sendable {
    let client: CurlHTTPClient
    let urls: [ServiceName: String]
    let token: String

    private var headers: HTTPClientHeaders {
        HTTPClientHeaders([(PlatformHeader.serviceToken, token)])
    }

    private func tenantURL(_ service: ServiceName, _ tenantID: UUID) -> String {
        (urls[service] ?? "") + "/internal/v1/tenants/" + tenantID.uuidString.lowercased()
    }

    func register(_ service: ServiceName, tenantID: UUID, tenant: TenantNames) async throws {
        let body = TenantRegistration(slug: tenant.slug, schema: tenant.schema, role: tenant.role)
        _ = try await client.send(.put, tenantURL(service, tenantID), body: body, headers: headers)
    }

    func deregister(_ service: ServiceName, tenantID: UUID) async throws {
        try await deleteTreatingMissingAsDone(tenantURL(service, tenantID))
    }

    func storeAPIKeys(_ keys: APIKeySet, tenantID: UUID) async throws {
        _ = try await client.send(.put, tenantURL(.auth, tenantID) + "/api-keys", body: keys, headers: headers)
    }

    func revokeAPIKeys(tenantID: UUID) async throws {
        try await deleteTreatingMissingAsDone(tenantURL(.auth, tenantID) + "/api-keys")
    }

    private func deleteTreatingMissingAsDone(_ url: String) async throws {
        do {
            _ = try await client.send(.delete, url, headers: headers)
        } catch HTTPClientError.status(404, _) {
            return  // already gone: the compensation's goal holds
        }
    }
}
