import Contracts
import Foundation
import ServiceKit

/// Developers as `TokenIssuer` signs them in (`POST /v1/token`): found in `auth.developers`,
/// signed with the developers' keys (`DeveloperAccessClaims`).
struct DeveloperAccounts: TokenAccounts {
    let developers: DeveloperStore
    let keys: SigningKeys

    var rateLimitRealm: String { "email:" }
    var sessionTenant: UUID? { nil }

    func account(email: String) async throws -> (account: DeveloperStore.Developer, passwordHash: String?)? {
        try await developers.developer(email: email).map { ($0, $0.passwordHash) }
    }

    func signedIn(_ developer: DeveloperStore.Developer, at now: Date) async throws -> DeveloperStore.Developer {
        developer
    }

    func account(refreshing subject: SessionStore.Subject, at now: Date) async throws -> DeveloperStore.Developer? {
        guard let id = subject.developer else { return nil }
        return try await developers.developer(id: id)
    }

    func subject(of developer: DeveloperStore.Developer) -> SessionStore.Subject {
        .developer(developer.id)
    }

    func accessToken(for developer: DeveloperStore.Developer, session: UUID, started: Date, issuedAt: Date, lifetime: Duration) async throws -> String {
        try await keys.sign(DeveloperAccessClaims(developer: developer.id, session: session, issuedAt: issuedAt, lifetime: lifetime))
    }

    func profile(of developer: DeveloperStore.Developer) -> DeveloperProfile {
        DeveloperProfile(id: developer.id, email: developer.email, createdAt: developer.createdAt)
    }
}
