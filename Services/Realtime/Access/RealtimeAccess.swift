import Contracts
import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// Whom a socket, a channel or an HTTP broadcast acts for.
///
/// The project comes from the `apikey` (query parameter or header) or the host
/// (`ProjectResolver`). The caller is the key's kind unless a user's access token of that
/// project is given (a channel's `access_token`, an HTTP `Authorization: Bearer`):
///
/// | credential | principal |
/// |---|---|
/// | the project's secret key | `service`: every channel |
/// | the project's publishable key | `anonymous`: public channels |
/// | a user's access token of the project | `user`: public and private channels, until it expires |
enum RealtimePrincipal: Sendable, Equatable {
    case service
    case anonymous
    /// `claims`: the token's claims as JSON, for the row-level security of database changes.
    case user(UUID, claims: String, expires: Date)

    /// Private channels are for signed-in users and the service.
    var mayUsePrivateChannels: Bool { self != .anonymous }

    /// The claims a database read acts for (`request.jwt.claims`); nil for the service, which
    /// reads everything.
    var claims: String? {
        switch self {
        case .service: nil
        case .anonymous: #"{"role":"anon"}"#
        case .user(_, let claims, _): claims
        }
    }
}

struct RealtimeAccess: Sendable {
    let services: RealtimeServices

    struct Caller: Sendable {
        var tenant: RealtimeTenants.Tenant
        var principal: RealtimePrincipal
    }

    /// The project and key of a request (the websocket upgrade, an HTTP broadcast).
    func caller(_ request: Request) async throws -> Caller {
        let resolved = try await services.projects.resolve(request)
        guard let tenant = try await services.tenants.tenant(slug: resolved.slug) else { throw RealtimeError.tenantNotFound }
        return Caller(tenant: tenant, principal: resolved.apiKey?.kind == .secret ? .service : .anonymous)
    }

    /// Why a token is refused, in the words of Supabase's join errors.
    enum TokenRefusal: Error, Equatable {
        case invalid
        case otherProject

        var reason: String {
            switch self {
            case .invalid: "InvalidJWTToken: The token is not valid for this project, or it has expired"
            case .otherProject: "Unauthorized: The token belongs to another project"
            }
        }
    }

    /// The principal a token gives within `tenant`; a key or no token leaves `connection`'s.
    func principal(token: String?, tenant: RealtimeTenants.Tenant, connection: RealtimePrincipal) async throws -> RealtimePrincipal {
        guard let token, !token.isEmpty else { return connection }
        if TenantAuthenticator.looksLikeAPIKey(token) {
            guard let key = try await services.credentials.apiKey(sha256: SecureToken.sha256Hex(token)) else { throw TokenRefusal.invalid }
            guard key.slug == tenant.registered.slug else { throw TokenRefusal.otherProject }
            return key.kind == .secret ? .service : .anonymous
        }
        guard let claims = try await services.credentials.userClaims(token), let user = claims.userID else { throw TokenRefusal.invalid }
        guard claims.ref == tenant.registered.slug else { throw TokenRefusal.otherProject }
        return .user(user, claims: Self.claimsJSON(claims), expires: claims.exp.value)
    }

    /// What row-level security policies read of a user (through the tenant's `auth_claims()`).
    /// Keys sorted: the same claims give the same text, so a change is checked once per user
    /// rather than once per way of writing them.
    static func claimsJSON(_ claims: TenantUserClaims) -> String {
        JSONText.serialize(.object([
            "sub": .string(claims.sub.value), "role": .string(claims.role), "email": .string(claims.email),
            "aud": .string(TenantUserClaims.audience), "session_id": .string(claims.sid), "aal": claims.aal.map(JSONValue.string) ?? .null,
            "is_anonymous": .bool(claims.isAnonymous ?? false), "app_metadata": claims.appMetadata ?? .emptyObject,
            "user_metadata": claims.userMetadata ?? .emptyObject,
        ]), sortedKeys: true)
    }
}
