import Contracts
import Foundation
import HTTPClient

/// Provisioning's calls to auth about developers' access tokens: the developers' public
/// signing keys (`GET /.well-known/jwks.json`) and whether a session is live
/// (`GET /internal/v1/sessions/{id}`); and whether a developer account exists
/// (`GET /internal/v1/developers/{id}`, the orphan reconciler's question). Caching and
/// verification are the caller's (provisioning's `DeveloperAuthenticator`).
public struct DeveloperCredentialsClient: Sendable {
    private let auth: AuthLookup
    private let serviceToken: String

    public init(http: CurlHTTPClient, authURL: String, serviceToken: String, timeout: Duration = .seconds(3)) {
        auth = AuthLookup(http: http, authURL: authURL, timeout: timeout)
        self.serviceToken = serviceToken
    }

    /// The developers' JWKS document as auth serves it.
    public func jwks() async throws(AuthUnavailable) -> [UInt8] {
        let response = try await auth.get("/.well-known/jwks.json")
        guard response.status == 200 else { throw AuthUnavailable(description: "JWKS answered \(response.status)") }
        return response.body
    }

    /// The developer account (200), or nil when there is none (404).
    public func developer(_ id: UUID) async throws(AuthUnavailable) -> DeveloperAccount? {
        try await auth.find(DeveloperAccount.self, at: "/internal/v1/developers/" + id.uuidString.lowercased(),
                            headers: InternalCall.headers(token: serviceToken), what: "developer check")
    }

    /// The live developer session (200), or nil when it is unknown, ended, or not a developer's (404).
    public func session(_ id: UUID) async throws(AuthUnavailable) -> DeveloperSession? {
        try await auth.find(DeveloperSession.self, at: "/internal/v1/sessions/" + id.uuidString.lowercased(),
                            headers: InternalCall.headers(token: serviceToken), what: "session check")
    }
}
