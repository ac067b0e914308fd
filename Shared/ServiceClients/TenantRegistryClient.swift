import Contracts
import Foundation
import HTTPClient

/// Provisioning's calls to one service's tenant registry (auth, realtime or storage), through
/// the libcurl kit: `PUT /internal/v1/tenants/{id}` registers (or updates) a tenant,
/// `DELETE` removes it. Both are safe to repeat, which is what lets the saga retry and resume
/// them.
///
/// Failures are the kit's `HTTPClientError`s, unchanged, so the saga's retry policy can tell
/// transient ones (`HTTPClientError.isTransient`) from the rest: `.status(409, …)`
/// `slug_taken`, `.status(422, …)` naming a field, `.undecodableBody` when a 2xx answer is not
/// a `RegisteredTenant`.
public struct TenantRegistryClient: Sendable {
    public let baseURL: String
    private let http: CurlHTTPClient
    private let serviceToken: String

    public init(http: CurlHTTPClient, baseURL: String, serviceToken: String) {
        self.http = http
        self.baseURL = baseURL
        self.serviceToken = serviceToken
    }

    /// A registration's answer: the record as the service stored it, and whether this call
    /// created it (201) or found it there (200, updated to the given names).
    public struct Registered: Sendable, Equatable {
        public var tenant: RegisteredTenant
        public var created: Bool
    }

    /// `PUT /internal/v1/tenants/{id}` with the tenant's slug, schema and role.
    public func register(_ tenantID: UUID, _ registration: TenantRegistration) async throws -> Registered {
        let response = try await http.send(
            .put, InternalCall.tenantURL(baseURL, tenantID), body: registration,
            headers: InternalCall.headers(token: serviceToken)
        )
        return Registered(tenant: try response.decode(RegisteredTenant.self), created: response.status == 201)
    }

    /// `DELETE /internal/v1/tenants/{id}`: true when this call removed the tenant (204), false
    /// when it was already gone (404), which is done as well.
    @discardableResult
    public func remove(_ tenantID: UUID) async throws -> Bool {
        do {
            _ = try await http.send(.delete, InternalCall.tenantURL(baseURL, tenantID), headers: InternalCall.headers(token: serviceToken))
            return true
        } catch HTTPClientError.status(404, _) {
            return false  // already gone: the removal's goal holds
        }
    }
}
