import Contracts
import Foundation
import HTTPClient

/// Provisioning's calls to auth's store of tenant API keys, which holds hashes and prefixes
/// only: `PUT /internal/v1/tenants/{id}/api-keys` stores a set, `DELETE` revokes every key of
/// the tenant; a rotation adds its next set (`PUT …/api-keys/next`) and retires the old one by
/// id (`POST …/api-keys/revoke`). Failures are the kit's `HTTPClientError`s, unchanged (`.status(409, …)`
/// `keys_exist` when another set is active, `.status(404, …)` for an unknown tenant).
public struct APIKeysClient: Sendable {
    public let authURL: String
    private let http: CurlHTTPClient
    private let serviceToken: String

    public init(http: CurlHTTPClient, authURL: String, serviceToken: String) {
        self.http = http
        self.authURL = authURL
        self.serviceToken = serviceToken
    }

    /// Auth's answer to a store: the tenant's active keys (hashes), and whether this call
    /// stored them (201) or found this very set already active (200, a re-run).
    public struct Stored: Sendable, Equatable {
        public var active: APIKeySet
        public var created: Bool
    }

    /// `PUT /internal/v1/tenants/{id}/api-keys`.
    public func store(_ keys: APIKeySet, tenantID: UUID) async throws -> Stored {
        let response = try await http.send(
            .put, InternalCall.tenantURL(authURL, tenantID) + "/api-keys", body: keys,
            headers: InternalCall.headers(token: serviceToken)
        )
        return Stored(active: try response.decode(APIKeySet.self), created: response.status == 201)
    }

    /// `DELETE /internal/v1/tenants/{id}/api-keys`: 204, also when there was nothing to revoke;
    /// a 404 (the tenant is gone, and its keys with it) counts as done too.
    public func revoke(tenantID: UUID) async throws {
        do {
            _ = try await http.send(.delete, InternalCall.tenantURL(authURL, tenantID) + "/api-keys",
                                    headers: InternalCall.headers(token: serviceToken))
        } catch HTTPClientError.status(404, _) {
            return
        }
    }

    /// `PUT /internal/v1/tenants/{id}/api-keys/next`: a rotation's next set, active beside the
    /// current one.
    public func storeNext(_ keys: APIKeySet, tenantID: UUID) async throws -> Stored {
        let response = try await http.send(
            .put, InternalCall.tenantURL(authURL, tenantID) + "/api-keys/next", body: keys,
            headers: InternalCall.headers(token: serviceToken)
        )
        return Stored(active: try response.decode(APIKeySet.self), created: response.status == 201)
    }

    /// `POST /internal/v1/tenants/{id}/api-keys/revoke`: retires these keys (204, also when
    /// they were retired already); a 404 (the tenant is gone, its keys with it) counts as done.
    public func revoke(keyIDs: [UUID], tenantID: UUID) async throws {
        do {
            _ = try await http.send(.post, InternalCall.tenantURL(authURL, tenantID) + "/api-keys/revoke",
                                    body: RevokeAPIKeysRequest(keyIds: keyIDs), headers: InternalCall.headers(token: serviceToken))
        } catch HTTPClientError.status(404, _) {
            return
        }
    }
}
