import Foundation
import Hummingbird
import Postgres
import ServiceKit

/// Turns `Authorization: Bearer <access token>` into the verified claims of a live session, or a
/// 401 (a 503 when the database cannot be asked): for every route a signed-in developer calls. Expiry is judged by auth's clock (`now`),
/// the one that stamped the token.
struct BearerAuthenticator: Sendable {
    let keys: SigningKeys
    let sessions: SessionStore
    let now: @Sendable () -> Date

    func authenticate(_ request: Request) async throws -> DeveloperAccessClaims {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw APIError.unauthorized("A bearer access token is required.")
        }
        let token = String(header.dropFirst("bearer ".count))
        let claims: DeveloperAccessClaims
        do {
            claims = try await keys.verify(token)
            try claims.exp.verifyNotExpired(currentDate: now())
        } catch let error as PostgresError {
            // The signing keys could not be read: the database's failure (503), not the token's.
            throw error
        } catch {
            throw APIError.unauthorized("The access token is invalid or expired.")
        }
        guard let session = UUID(uuidString: claims.sid), try await sessions.isLive(session, at: now()) else {
            throw APIError.unauthorized("The session has ended.")
        }
        return claims
    }

    /// The signed-in developer's id.
    func developerID(_ request: Request) async throws -> UUID {
        guard let id = UUID(uuidString: try await authenticate(request).sub.value) else {
            throw APIError.unauthorized("The token does not name a developer.")
        }
        return id
    }
}
