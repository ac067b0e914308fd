import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit

/// Where a service looks credentials up: auth reads its own tables and keys; realtime and
/// storage ask auth, through caches (`RemoteTenantCredentials`).
public protocol TenantCredentialResolver: Sendable {
    /// The active API key whose SHA-256 (lowercase hex) this is; nil when unknown or revoked.
    func apiKey(sha256: String) async throws -> APIKeyIdentity?
    /// The claims of a tenant user's access token, verified with the keys of the tenant it
    /// names (signature, expiry, audience, issuer); nil when it does not verify.
    func userClaims(_ token: String) async throws -> TenantUserClaims?
}

/// What a tenant-facing request must carry, on top of "some valid credential of this tenant".
public struct TenantAccess: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// A publishable or secret API key (`apikey` header).
    public static let apiKey = TenantAccess(rawValue: 1)
    /// The secret key: admin routes.
    public static let secretKey = TenantAccess(rawValue: 2)
    /// A signed-in user's access token (`Authorization: Bearer`).
    public static let user = TenantAccess(rawValue: 4)
}

/// Who is calling a tenant's route, verified.
public struct TenantPrincipal: Sendable {
    public var slug: String
    public var apiKey: APIKeyIdentity?
    public var user: TenantUserClaims?

    public var isSecret: Bool { apiKey?.kind == .secret }

    /// How the tenant's audit log names this caller: the user when there is one, else the key.
    public var actor: String {
        if let user { return "user:" + user.sub.value }
        if let apiKey { return "\(apiKey.kind.rawValue)_key:" + apiKey.keyId.uuidString.lowercased() }
        return "anonymous"
    }
}

/// The one implementation of "may this request act on tenant `slug`", for auth, realtime and
/// storage alike:
///
/// - credentials: the tenant's publishable or secret key in the `apikey` header (or as the
///   bearer token: a `pk_…`/`sk_…` value there is read as a key), and/or a user's access token
///   as `Authorization: Bearer`;
/// - 401 when a required credential is missing, or a presented one is malformed, unknown,
///   revoked, expired or wrongly signed (`WWW-Authenticate: Bearer`);
/// - 403 when a valid credential belongs to another tenant (`tenant_mismatch`), or a
///   publishable key is used where the secret key is required (`secret_key_required`).
///
/// Every presented credential must be valid: a good key does not excuse a bad token.
public struct TenantAuthenticator: Sendable {
    public let resolver: any TenantCredentialResolver

    public init(resolver: any TenantCredentialResolver) {
        self.resolver = resolver
    }

    static let apiKeyField = HTTPField.Name(PlatformHeader.apiKey)!

    public func authenticate(_ request: Request, slug: String, requiring access: TenantAccess = []) async throws -> TenantPrincipal {
        var key = request.headers[Self.apiKeyField]
        var bearer: String?
        if let authorization = request.headers[.authorization] {
            guard authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else {
                throw Self.unauthorized("invalid_authorization", "The Authorization header must be `Bearer <token>`.")
            }
            let value = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            if Self.looksLikeAPIKey(value) {
                guard key == nil || key == value else {
                    throw Self.unauthorized("invalid_api_key", "The apikey header and the bearer key differ.")
                }
                key = value
            } else {
                bearer = value
            }
        }

        var principal = TenantPrincipal(slug: slug)
        if let key {
            guard Self.looksLikeAPIKey(key), let identity = try await resolver.apiKey(sha256: SecureToken.sha256Hex(key)) else {
                throw Self.unauthorized("invalid_api_key", "The API key is invalid or has been revoked.")
            }
            guard identity.slug == slug else { throw Self.tenantMismatch }
            principal.apiKey = identity
        }
        if let bearer {
            guard let claims = try await resolver.userClaims(bearer) else {
                throw Self.unauthorized("invalid_token", "The access token is invalid or expired.")
            }
            guard claims.ref == slug else { throw Self.tenantMismatch }
            principal.user = claims
        }

        if access.contains(.secretKey) || access.contains(.apiKey), principal.apiKey == nil {
            throw Self.unauthorized("api_key_required", "This route needs the project's API key in the apikey header.")
        }
        if access.contains(.secretKey), !principal.isSecret {
            throw APIError(.forbidden, code: "secret_key_required", message: "This route needs the project's secret key.")
        }
        if access.contains(.user), principal.user == nil {
            throw Self.unauthorized("user_token_required", "This route needs a signed-in user's access token (Authorization: Bearer).")
        }
        if principal.apiKey == nil, principal.user == nil {
            throw Self.unauthorized("credentials_required", "An API key (apikey header) or a user's access token is required.")
        }
        return principal
    }

    /// `pk_…` or `sk_…`, of a sane length and alphabet, before anything is looked up.
    public static func looksLikeAPIKey(_ value: String) -> Bool {
        (value.hasPrefix("pk_") || value.hasPrefix("sk_")) && (8...256).contains(value.utf8.count)
            && value.utf8.allSatisfy { $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0)
                || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
    }

    static func unauthorized(_ code: String, _ message: String) -> APIError {
        APIError(.unauthorized, code: code, message: message, headers: [.wwwAuthenticate: "Bearer"])
    }

    public static let tenantMismatch = APIError(.forbidden, code: "tenant_mismatch", message: "The credentials belong to another project.")
}
