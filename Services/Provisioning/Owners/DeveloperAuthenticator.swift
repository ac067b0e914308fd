import Contracts
import Foundation
import Hummingbird
import HTTPTypes
import Logging
import ServiceClients
import ServiceKit

/// Tells the project API's callers apart (`ProjectCaller`):
///
/// - the platform's service token (`X-Service-Token`, or `Authorization: Bearer`) → the operator;
/// - a developer's access token (`Authorization: Bearer`, an ES256 JWT from auth's
///   `POST /v1/token`) → that developer. The signature and claims are verified offline against
///   auth's developer JWKS (`GET /.well-known/jwks.json`, cached for `JWKS_CACHE_SECONDS`,
///   refetched at most once a second for a key id it lacks, as realtime and storage verify
///   tenant tokens); then auth is asked whether the token's session is still live
///   (`GET /internal/v1/sessions/{sid}`), the answer cached for `SESSION_CACHE_SECONDS`
///   (default 5), so a logout ends access here within that time.
///
/// A missing or invalid token is 401; a wrong `X-Service-Token` 403; auth unreachable for an
/// answer that is not cached, 503 `auth_unavailable` (fails closed).
struct DeveloperAuthenticator: Sendable {
    private let serviceToken: [UInt8]
    private let keys: RemoteJWKS<String>
    private let auth: DeveloperCredentialsClient
    /// Session id → its developer while live, nil once ended (an ended session never comes back).
    private let sessions: ExpiringCache<UUID, UUID?>
    private let logger: Logger
    private static let owner = "developers"

    init(serviceToken: String, auth: DeveloperCredentialsClient, jwksTTL: Duration, sessionTTL: Duration, logger: Logger) {
        self.serviceToken = Array(serviceToken.utf8)
        self.auth = auth
        self.logger = logger
        keys = RemoteJWKS(ttl: jwksTTL, capacity: 1) { _ in try await auth.jwks() }
        sessions = ExpiringCache(ttl: sessionTTL)
    }

    func caller(_ request: Request) async throws -> ProjectCaller {
        if let presented = request.headers[HTTPField.Name(PlatformHeader.serviceToken)!] {
            guard constantTimeEquals(Array(presented.utf8), serviceToken) else {
                logger.warning("rejected a project API call with a wrong service token")
                throw APIError(.forbidden, code: "forbidden", message: "The service token is not valid.")
            }
            return .operatorToken
        }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw APIError.unauthorized("A bearer access token is required: sign in with POST /v1/token on auth.")
        }
        let token = String(header.dropFirst("bearer ".count))
        if constantTimeEquals(Array(token.utf8), serviceToken) { return .operatorToken }
        return .developer(try await developer(token))
    }

    /// The developer a verified access token of a live session names.
    private func developer(_ token: String) async throws -> UUID {
        let claims: DeveloperAccessClaims?
        do {
            claims = try await keys.verify(token, of: Self.owner, as: DeveloperAccessClaims.self)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw unavailable("\(error)")
        }
        guard let claims, let developer = claims.developer, let session = claims.session else {
            throw APIError.unauthorized("The access token is invalid or expired.")
        }
        guard try await liveDeveloper(of: session) == developer else {
            throw APIError.unauthorized("The session has ended.")
        }
        return developer
    }

    private func liveDeveloper(of session: UUID) async throws -> UUID? {
        if let cached = sessions.get(session) { return cached.value }
        let live: DeveloperSession?
        do { live = try await auth.session(session) } catch { throw unavailable(error.description) }
        sessions.set(session, live?.developerId)
        return live?.developerId
    }

    private func unavailable(_ reason: String) -> APIError {
        logger.error("developer token check failed", metadata: ["reason": "\(reason)"])
        return APIError.serviceUnavailable(code: "auth_unavailable", "Credentials cannot be checked right now; try again shortly.")
    }
}
