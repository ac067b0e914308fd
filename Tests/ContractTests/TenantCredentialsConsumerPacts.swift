import Contracts
import Foundation
import HTTPClient
import JWTKit
import ServiceClients
import ServiceKit
import TenantKit
import Testing

/// Realtime and storage as consumers of auth: `RemoteTenantCredentials` (ServiceKit) checks an
/// API key by its hash and fetches a tenant's JWKS to verify user tokens offline. Both services
/// run this same code, so each gets the same interactions in its own pact file
/// (`realtime-auth.json`, `storage-auth.json`).
@Suite("Pact consumer: realtime and storage (tenant credentials)")
struct TenantCredentialsConsumerPacts {
    static let publishable = Fixtures.keySet.keys[0]
    static var tenantParams: [(String, PactValue)] {
        [("id", .string(Fixtures.tenantID.uuidString.lowercased())), ("slug", .string(Fixtures.slug))]
    }

    static func credentials(_ url: String, _ http: CurlHTTPClient) -> RemoteTenantCredentials {
        // No caching: every call reaches the stub.
        RemoteTenantCredentials(auth: TenantCredentialsClient(http: http, authURL: url, serviceToken: Fixtures.serviceToken),
                                apiKeyTTL: .zero, jwksTTL: .zero, logger: Fixtures.logger)
    }

    /// A user token of `slug`, signed with the fixture key.
    static func userToken(slug: String) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: try ES256PrivateKey(pem: Fixtures.signingKeyPEM), kid: JWKIdentifier(string: Fixtures.signingKeyID))
        let claims = TenantUserClaims(user: UUID(), session: UUID(), slug: slug, tenant: Fixtures.tenantID, role: "authenticated",
                                      email: "user@example.com", issuedAt: Date(), lifetime: .seconds(300))
        return try await keys.sign(claims, kid: JWKIdentifier(string: Fixtures.signingKeyID))
    }

    @Test("realtime and storage → auth: API keys by hash, tenant JWKS", arguments: ["realtime", "storage"])
    func auth(consumer: String) async throws {
        var pact = Pact(consumer: consumer, provider: "auth")

        try await pact.verify(Interaction(
            description: "a request for the tenant behind an API key's hash",
            states: [ProviderState(name: "an active API key has this hash", params: Self.tenantParams + [
                ("key_id", .string(Self.publishable.id.uuidString.lowercased())), ("kind", .string(Self.publishable.kind.rawValue)),
                ("prefix", .string(Self.publishable.prefix)), ("sha256", .string(Self.publishable.sha256)),
            ])],
            request: .init(method: "GET", path: "/internal/v1/api-keys/" + Self.publishable.sha256,
                           headers: [("X-Service-Token", Fixtures.serviceTokenHeader)]),
            response: .init(status: 200, headers: [("Content-Type", Fixtures.jsonContentType)], body: [
                // Which tenant the key belongs to and what it may do: the tenant check rests on these.
                "key_id": .uuid(Self.publishable.id.uuidString),
                "tenant_id": .uuid(Fixtures.tenantID.uuidString),
                "slug": .string(Fixtures.slug),
                "kind": "publishable",
            ])
        )) { url in
            try await Fixtures.withClient { http in
                let identity = try await Self.credentials(url, http).apiKey(sha256: Self.publishable.sha256)
                try #require(identity == APIKeyIdentity(keyId: Self.publishable.id, tenantId: Fixtures.tenantID, slug: Fixtures.slug, kind: .publishable))
            }
        }

        try await pact.verify(Interaction(
            description: "a request for an API key hash no active key has",
            states: [ProviderState(name: "no active API key has this hash", params: [("sha256", .string(Fixtures.unknownKeySHA256))])],
            request: .init(method: "GET", path: "/internal/v1/api-keys/" + Fixtures.unknownKeySHA256,
                           headers: [("X-Service-Token", Fixtures.serviceTokenHeader)]),
            response: .init(status: 404)
        )) { url in
            try await Fixtures.withClient { http in
                // Unknown or revoked: the presented key is refused (401), not an outage (503).
                try #require(try await Self.credentials(url, http).apiKey(sha256: Fixtures.unknownKeySHA256) == nil)
            }
        }

        try await pact.verify(Interaction(
            description: "a request for a tenant's public keys",
            states: [ProviderState(name: "the tenant is registered", params: Self.tenantParams)],
            request: .init(method: "GET", path: "/v1/tenants/\(Fixtures.slug)/.well-known/jwks.json"),
            response: .init(status: 200, headers: [("Content-Type", Fixtures.jsonContentType)], body: try Fixtures.jwksBody())
        )) { url in
            try await Fixtures.withClient { http in
                // A user token signed with a published key verifies offline.
                let claims = try await Self.credentials(url, http).userClaims(try await Self.userToken(slug: Fixtures.slug))
                try #require(claims?.ref == Fixtures.slug)
            }
        }

        try await pact.verify(Interaction(
            description: "a request for the public keys of an unknown tenant",
            states: [ProviderState(name: "no tenant has this slug", params: [("slug", .string(Fixtures.unknownSlug))])],
            request: .init(method: "GET", path: "/v1/tenants/\(Fixtures.unknownSlug)/.well-known/jwks.json"),
            response: .init(status: 404)
        )) { url in
            try await Fixtures.withClient { http in
                // Nothing verifies: the token is refused (401), not an outage (503).
                try #require(try await Self.credentials(url, http).userClaims(try await Self.userToken(slug: Fixtures.unknownSlug)) == nil)
            }
        }

        try pact.write()
    }
}
