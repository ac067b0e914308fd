import Contracts
import Foundation
import HTTPClient
import ServiceClients
import ServiceKit

/// The saga's calls to the other services' internal tenant endpoints, through the clients in
/// `ServiceClients` (the libcurl kit underneath). Registration is a PUT (upsert), removal a
/// DELETE whose 404 means "already gone": both are safe to repeat, which is what lets the saga
/// retry and resume them. Failures stay the kit's `HTTPClientError`s, which the saga's retry
/// policy classifies.
struct ServiceRegistrar: Sendable {
    let client: CurlHTTPClient
    let urls: [ServiceName: String]
    let token: String

    private func registry(_ service: ServiceName) -> TenantRegistryClient {
        TenantRegistryClient(http: client, baseURL: urls[service] ?? "", serviceToken: token)
    }

    private var apiKeys: APIKeysClient {
        APIKeysClient(http: client, authURL: urls[.auth] ?? "", serviceToken: token)
    }

    func register(_ service: ServiceName, tenantID: UUID, tenant: TenantNames) async throws {
        let registration = TenantRegistration(slug: tenant.slug, schema: tenant.schema, role: tenant.role)
        _ = try await registry(service).register(tenantID, registration)
    }

    func deregister(_ service: ServiceName, tenantID: UUID) async throws {
        try await registry(service).remove(tenantID)
    }

    func storeAPIKeys(_ keys: APIKeySet, tenantID: UUID) async throws {
        _ = try await apiKeys.store(keys, tenantID: tenantID)
    }

    func revokeAPIKeys(tenantID: UUID) async throws {
        try await apiKeys.revoke(tenantID: tenantID)
    }

    /// A rotation's next set, active in auth beside the current one.
    func storeNextAPIKeys(_ keys: APIKeySet, tenantID: UUID) async throws {
        _ = try await apiKeys.storeNext(keys, tenantID: tenantID)
    }

    /// Revokes these keys only (a rotation's old set, or its next set when it is undone).
    func revokeAPIKeys(_ ids: [UUID], tenantID: UUID) async throws {
        guard !ids.isEmpty else { return }
        try await apiKeys.revoke(keyIDs: ids, tenantID: tenantID)
    }
}
