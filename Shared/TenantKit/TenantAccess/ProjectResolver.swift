import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit

/// Which project a request on a Supabase-protocol prefix (`/auth/v1/`, `/storage/v1/`,
/// `/realtime/v1/`) is for, as Supabase's gateway decides it: no slug in the path, but
///
/// - the `apikey` header (or `?apikey=` query parameter, which browser redirects and websockets
///   use): every key belongs to exactly one project;
/// - or the host name `<slug>.<PLATFORM_DOMAIN>`, as hosted Supabase addresses projects, when
///   `PLATFORM_DOMAIN` is set. A key of another project than the host names is refused.
///
/// A user token's own project is checked by each route against the one resolved here. The
/// failures are neutral (`Failure`): each protocol answers them in its own error shape.
public struct ProjectResolver: Sendable {
    let credentials: any TenantCredentialResolver
    /// Lower-cased, without a leading dot; nil when projects are not addressed by host.
    let domain: String?

    public init(credentials: any TenantCredentialResolver, domain: String?) {
        self.credentials = credentials
        let trimmed = domain?.trimmingCharacters(in: CharacterSet(charactersIn: ". ")).lowercased()
        self.domain = (trimmed?.isEmpty ?? true) ? nil : trimmed
    }

    /// With `PLATFORM_DOMAIN` from the service's configuration (unset or empty: no host names).
    public init(credentials: any TenantCredentialResolver, configuration: ServiceConfiguration) {
        self.init(credentials: credentials, domain: configuration.value("PLATFORM_DOMAIN"))
    }

    /// The project of a request and the key it presented (nil when only the host named it).
    public struct Resolved: Sendable {
        public var slug: String
        public var apiKey: APIKeyIdentity?
    }

    /// Why no project could be resolved.
    public enum Failure: Error, Equatable {
        /// No `apikey` (header or query) and no host naming a project, or a route that needs a key.
        case noAPIKey
        /// The key is malformed, unknown or revoked.
        case invalidAPIKey
        /// The key belongs to another project than the host names.
        case hostMismatch

        public var status: HTTPResponse.Status {
            self == .hostMismatch ? .forbidden : .unauthorized
        }
    }

    static let apiKeyField = HTTPField.Name(PlatformHeader.apiKey)!

    /// The request's project. With `requireKey` (every route but public documents such as the
    /// JWKS) a host name alone is not enough, as Supabase's gateway asks every request for a key.
    public func resolve(_ request: Request, requireKey: Bool = true) async throws -> Resolved {
        let hostSlug = slug(fromHost: request.head.authority)
        guard let key = Self.presentedKey(request) else {
            guard !requireKey, let hostSlug else { throw Failure.noAPIKey }
            return Resolved(slug: hostSlug, apiKey: nil)
        }
        guard TenantAuthenticator.looksLikeAPIKey(key),
              let identity = try await credentials.apiKey(sha256: SecureToken.sha256Hex(key))
        else { throw Failure.invalidAPIKey }
        if let hostSlug, hostSlug != identity.slug { throw Failure.hostMismatch }
        return Resolved(slug: identity.slug, apiKey: identity)
    }

    /// The API key a request presents: its `apikey` header, else its `?apikey=` parameter.
    public static func presentedKey(_ request: Request) -> String? {
        request.headers[apiKeyField] ?? request.uri.queryParameters.get("apikey")
    }

    /// The `Authorization: Bearer` value, if any (a key or a user's token: the protocol decides).
    public static func bearer(_ request: Request) -> String? {
        guard let authorization = request.headers[.authorization], authorization.count > 7,
              authorization.prefix(7).lowercased() == "bearer " else { return nil }
        let value = authorization.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return value.isEmpty ? nil : value
    }

    /// The slug a host name `<slug>.<domain>[:port]` names, when it is a valid slug.
    func slug(fromHost host: String?) -> String? {
        guard let domain, var host = host?.lowercased() else { return nil }
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") { host = String(host[..<colon]) }
        if host.hasSuffix(".") { host.removeLast() }
        guard host.hasSuffix("." + domain) else { return nil }
        let label = String(host.dropLast(domain.count + 1))
        return ProjectSlug.isValid(label) ? label : nil
    }
}
