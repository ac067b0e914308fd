import Contracts
import Foundation
import HTTPClient

/// Realtime's and storage's calls to auth about tenant credentials: an API key looked up by its
/// SHA-256 (`GET /internal/v1/api-keys/{sha256}`, never the key itself) and a tenant's public
/// signing keys (`GET /v1/tenants/{slug}/.well-known/jwks.json`). Caching and verification are
/// the caller's (TenantKit's `RemoteTenantCredentials`).
public struct TenantCredentialsClient: Sendable {
    public var authURL: String { auth.authURL }
    private let auth: AuthLookup
    private let serviceToken: String

    public init(http: CurlHTTPClient, authURL: String, serviceToken: String, timeout: Duration = .seconds(3)) {
        auth = AuthLookup(http: http, authURL: authURL, timeout: timeout)
        self.serviceToken = serviceToken
    }

    public typealias Unavailable = AuthUnavailable

    /// The key's identity (200), or nil when auth knows no such key (404).
    public func apiKey(sha256: String) async throws(Unavailable) -> APIKeyIdentity? {
        try await auth.find(APIKeyIdentity.self, at: "/internal/v1/api-keys/" + sha256, headers: InternalCall.headers(token: serviceToken),
                            what: "api key check")
    }

    /// The tenant's JWKS document as auth serves it (200), or nil when auth knows no such
    /// tenant (404).
    public func jwks(slug: String) async throws(Unavailable) -> [UInt8]? {
        let response = try await auth.get("/v1/tenants/\(slug)/.well-known/jwks.json")
        switch response.status {
        case 200: return response.body
        case 404: return nil
        default: throw Unavailable(description: "JWKS answered \(response.status)")
        }
    }
}
