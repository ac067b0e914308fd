import Contracts
import Foundation
import HTTPClient
import JWTKit
import Logging
import ServiceClients
import ServiceKit

/// Tenant credentials as realtime and storage check them, without calling auth on every
/// request:
///
/// - **API keys**: `GET {AUTH_URL}/internal/v1/api-keys/{sha256}` (the key's hash, never the
///   key), answer cached for `API_KEY_CACHE_SECONDS` (default 30), found or not. A revoked key
///   therefore stops working here at most that long after auth revoked it; with 0, every
///   request asks auth. Known keys (up to 10,000) and unknown ones (up to 1,000) are cached
///   apart, each evicting its least recently used, so random `pk_…` strings churn only the
///   small cache of misses and never push out the keys real clients use.
/// - **User tokens**: verified offline with the tenant's public keys, fetched from
///   `GET {AUTH_URL}/v1/tenants/{slug}/.well-known/jwks.json` and cached for
///   `JWKS_CACHE_SECONDS` (default 300); a token naming a key id the cached set lacks (a key
///   rotated in since) refetches it, at most once a second per tenant (callers wait for the
///   next slot, so a new key is accepted within a second of its first token). Offline checks cannot
///   see a logout: a user token is accepted here until it expires (`ACCESS_TOKEN_TTL_SECONDS`
///   on auth).
///
/// When auth cannot be reached for an answer that is not cached, the request fails closed with
/// 503 `auth_unavailable`.
public final class RemoteTenantCredentials: TenantCredentialResolver {
    private let auth: TenantCredentialsClient
    /// The clock the API-key cache ages by (injected by tests that check the revocation bound).
    private let now: @Sendable () -> ContinuousClock.Instant
    private let logger: Logger
    private let keys: ExpiringCache<String, APIKeyIdentity>
    private let unknownKeys: ExpiringCache<String, Bool>
    /// Tenants' public keys, by slug.
    private let jwks: RemoteJWKS<String>

    /// `knownKeys` / `unknownKeys`: how many found and not-found answers are cached.
    public init(
        auth: TenantCredentialsClient, apiKeyTTL: Duration, jwksTTL: Duration, logger: Logger,
        knownKeys: Int = 10_000, unknownKeys: Int = 1_000,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.auth = auth
        self.now = now
        self.logger = logger
        keys = ExpiringCache(ttl: apiKeyTTL, capacity: knownKeys)
        self.unknownKeys = ExpiringCache(ttl: apiKeyTTL, capacity: unknownKeys)
        // nil from auth: no such tenant, so nothing verifies.
        jwks = RemoteJWKS(ttl: jwksTTL) { slug in try await auth.jwks(slug: slug) }
    }

    /// Reads `API_KEY_CACHE_SECONDS` and `JWKS_CACHE_SECONDS` and calls auth at its `AUTH_URL`.
    public convenience init(configuration: ServiceConfiguration, client: CurlHTTPClient, logger: Logger) throws {
        self.init(
            auth: TenantCredentialsClient(http: client, authURL: configuration.serviceURLs[.auth] ?? "", serviceToken: configuration.internalToken),
            apiKeyTTL: .seconds(try configuration.integer("API_KEY_CACHE_SECONDS", default: 30, range: 0...3600)),
            jwksTTL: .seconds(try configuration.integer("JWKS_CACHE_SECONDS", default: 300, range: 0...86_400)),
            logger: logger
        )
    }

    public func apiKey(sha256: String) async throws -> APIKeyIdentity? {
        if let cached = keys.get(sha256, now: now()) { return cached.value }
        if unknownKeys.get(sha256, now: now()) != nil { return nil }
        let identity: APIKeyIdentity?
        do { identity = try await auth.apiKey(sha256: sha256) } catch { throw unavailable(error.description) }
        if let identity { keys.set(sha256, identity, now: now()) } else { unknownKeys.set(sha256, true, now: now()) }
        return identity
    }

    public func userClaims(_ token: String) async throws -> TenantUserClaims? {
        guard let slug = await TenantUserClaims.unverifiedTenant(of: token), ProjectSlug.isValid(slug) else { return nil }
        do {
            return try await jwks.verify(token, of: slug, as: TenantUserClaims.self)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw unavailable("\(error)")
        }
    }

    private func unavailable(_ reason: String) -> APIError {
        logger.error("tenant credential check failed", metadata: ["reason": "\(reason)"])
        return APIError.serviceUnavailable(code: "auth_unavailable", "Credentials cannot be checked right now; try again shortly.")
    }
}

extension ServiceRuntime {
    /// The authenticator realtime and storage check tenant credentials with: auth's answers,
    /// cached (`RemoteTenantCredentials`). The returned action shuts its HTTP client down.
    public func remoteTenantAuthenticator() throws -> (TenantAuthenticator, ShutdownAction) {
        let client = try CurlHTTPClient(
            configuration: HTTPClientConfiguration(connectTimeout: .seconds(1), requestTimeout: .seconds(3)),
            logger: logger
        )
        let credentials = try RemoteTenantCredentials(configuration: configuration, client: client, logger: logger)
        return (TenantAuthenticator(resolver: credentials), ShutdownAction { await client.shutdown() })
    }
}
