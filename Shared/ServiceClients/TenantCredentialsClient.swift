import Contracts
import Foundation
import HTTPClient

/// Realtime's and storage's calls to auth about tenant credentials: an API key looked up by its
/// SHA-256 (`GET /internal/v1/api-keys/{sha256}`, never the key itself) and a tenant's public
/// signing keys (`GET /v1/tenants/{slug}/.well-known/jwks.json`). Caching and verification are
/// the caller's (TenantKit's `RemoteTenantCredentials`).
public struct TenantCredentialsClient: Sendable {
    public let authURL: String
    private let http: CurlHTTPClient
    private let serviceToken: String
    private let timeout: Duration

    public init(http: CurlHTTPClient, authURL: String, serviceToken: String, timeout: Duration = .seconds(3)) {
        self.http = http
        self.authURL = authURL
        self.serviceToken = serviceToken
        self.timeout = timeout
    }

    /// Auth could not give an answer: unreachable, or a status other than found / not found.
    public struct Unavailable: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The key's identity (200), or nil when auth knows no such key (404).
    public func apiKey(sha256: String) async throws(Unavailable) -> APIKeyIdentity? {
        let response = try await get("/internal/v1/api-keys/" + sha256, headers: InternalCall.headers(token: serviceToken))
        switch response.status {
        case 200:
            do { return try response.decode(APIKeyIdentity.self) } catch {
                throw Unavailable(description: "api key check answered an unreadable body: \(error)")
            }
        case 404: return nil
        default: throw Unavailable(description: "api key check answered \(response.status)")
        }
    }

    /// The tenant's JWKS document as auth serves it (200), or nil when auth knows no such
    /// tenant (404).
    public func jwks(slug: String) async throws(Unavailable) -> [UInt8]? {
        let response = try await get("/v1/tenants/\(slug)/.well-known/jwks.json", headers: HTTPClientHeaders())
        switch response.status {
        case 200: return response.body
        case 404: return nil
        default: throw Unavailable(description: "JWKS answered \(response.status)")
        }
    }

    private func get(_ path: String, headers: HTTPClientHeaders) async throws(Unavailable) -> HTTPClientResponse {
        do {
            return try await http.execute(HTTPClientRequest(url: authURL + path, headers: headers, timeout: timeout))
        } catch {
            throw Unavailable(description: "auth unreachable: \(error)")
        }
    }
}
