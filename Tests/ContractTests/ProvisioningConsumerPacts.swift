import Contracts
import Foundation
import HTTPClient
import JWTKit
import ServiceClients
import ServiceKit
import Testing

/// Provisioning as a consumer: its saga's calls to the tenant registry of auth, realtime and
/// storage (`TenantRegistryClient`) and to auth's API-key store (`APIKeysClient`), driven
/// against the Pact stub; writes `provisioning-{auth,realtime,storage}.json`.
@Suite("Pact consumer: provisioning")
struct ProvisioningConsumerPacts {
    @Test("provisioning → realtime and storage: register and remove a tenant", arguments: ["realtime", "storage"])
    func registry(provider: String) async throws {
        var pact = Pact(consumer: "provisioning", provider: provider)
        try await Self.registryInteractions(&pact)
        try pact.write()
    }

    @Test("provisioning → auth: register and remove a tenant, store and revoke its API keys, check developers' tokens")
    func auth() async throws {
        var pact = Pact(consumer: "provisioning", provider: "auth")
        try await Self.registryInteractions(&pact)
        try await Self.apiKeyInteractions(&pact)
        try await Self.developerTokenInteractions(&pact)
        try pact.write()
    }

    // MARK: The tenant registry (auth, realtime, storage: one implementation, one contract)

    static let tenantPath = "/internal/v1/tenants/" + Fixtures.tenantID.uuidString.lowercased()
    static let tenant = ProviderState(name: "the tenant is registered", params: tenantParams)
    static let noTenant = ProviderState(name: "the tenant is not registered", params: tenantParams)
    static var tenantParams: [(String, PactValue)] {
        [("id", .string(Fixtures.tenantID.uuidString.lowercased())), ("slug", .string(Fixtures.slug))]
    }

    static let registrationBody: PactValue = [
        "slug": .string(Fixtures.slug), "schema": .string("tenant_" + Fixtures.slug), "role": .string("tenant_" + Fixtures.slug),
    ]
    /// What the saga reads back: the stored record (`RegisteredTenant`), the same names, and
    /// timestamps its decoder can read.
    static let registeredBody: PactValue = [
        "id": .uuid(Fixtures.tenantID.uuidString),
        "slug": .string(Fixtures.slug),
        "schema": .string("tenant_" + Fixtures.slug),
        "role": .string("tenant_" + Fixtures.slug),
        "created_at": .timestamp("2026-01-01T12:00:00Z"),
        "updated_at": .timestamp("2026-01-01T12:00:00Z"),
    ]
    static let putHeaders: [(String, PactValue)] = [("Content-Type", "application/json"), ("X-Service-Token", Fixtures.serviceTokenHeader)]
    static let tokenHeader: [(String, PactValue)] = [("X-Service-Token", Fixtures.serviceTokenHeader)]
    static let jsonHeaders: [(String, PactValue)] = [("Content-Type", Fixtures.jsonContentType)]

    static func errorBody(_ code: String) -> PactValue {
        ["error": ["code": .string(code), "message": .like("A message for people.")]]
    }

    static func registry(_ url: String, _ http: CurlHTTPClient) -> TenantRegistryClient {
        TenantRegistryClient(http: http, baseURL: url, serviceToken: Fixtures.serviceToken)
    }

    static func registryInteractions(_ pact: inout Pact) async throws {
        try await pact.verify(Interaction(
            description: "a request to register a tenant the service does not know yet",
            states: [noTenant],
            request: .init(method: "PUT", path: tenantPath, headers: putHeaders, body: registrationBody),
            response: .init(status: 201, headers: jsonHeaders, body: registeredBody)
        )) { url in
            try await Fixtures.withClient { http in
                let registered = try await registry(url, http).register(Fixtures.tenantID, Fixtures.registration)
                try #require(registered.created)
                try #require(registered.tenant.id == Fixtures.tenantID && registered.tenant.slug == Fixtures.slug)
            }
        }

        try await pact.verify(Interaction(
            description: "a request to register a tenant the service already knows",
            states: [tenant],
            request: .init(method: "PUT", path: tenantPath, headers: putHeaders, body: registrationBody),
            response: .init(status: 200, headers: jsonHeaders, body: registeredBody)
        )) { url in
            try await Fixtures.withClient { http in
                let registered = try await registry(url, http).register(Fixtures.tenantID, Fixtures.registration)
                try #require(!registered.created)
                try #require(registered.tenant.schema == Fixtures.registration.schema)
            }
        }

        try await pact.verify(Interaction(
            description: "a request to register a tenant with a slug another tenant holds",
            states: [noTenant, ProviderState(name: "another tenant holds the slug", params: [
                ("id", .string(Fixtures.otherTenantID.uuidString.lowercased())), ("slug", .string(Fixtures.slug)),
            ])],
            request: .init(method: "PUT", path: tenantPath, headers: putHeaders, body: registrationBody),
            response: .init(status: 409, headers: jsonHeaders, body: errorBody("slug_taken"))
        )) { url in
            try await Fixtures.withClient { http in
                // A permanent failure for the saga (it compensates); the code ends up in last_error.
                try await expectStatus(409, code: "slug_taken") {
                    _ = try await registry(url, http).register(Fixtures.tenantID, Fixtures.registration)
                }
            }
        }

        try await pact.verify(Interaction(
            description: "a request to remove a registered tenant",
            states: [tenant],
            request: .init(method: "DELETE", path: tenantPath, headers: tokenHeader),
            response: .init(status: 204)
        )) { url in
            try await Fixtures.withClient { http in
                try #require(try await registry(url, http).remove(Fixtures.tenantID))
            }
        }

        try await pact.verify(Interaction(
            description: "a request to remove a tenant that is already gone",
            states: [noTenant],
            request: .init(method: "DELETE", path: tenantPath, headers: tokenHeader),
            response: .init(status: 404)
        )) { url in
            try await Fixtures.withClient { http in
                // Done either way: the compensation's goal holds.
                try #require(try await registry(url, http).remove(Fixtures.tenantID) == false)
            }
        }
    }

    // MARK: API keys (auth only)

    static let keysPath = tenantPath + "/api-keys"

    /// As the consumer sends it: Foundation encodes a UUID upper-case (auth reads either).
    static func keySetValue(_ set: APIKeySet) -> PactValue {
        .object([("keys", .array(set.keys.map { key in
            [
                "id": .string(key.id.uuidString.lowercased()), "kind": .string(key.kind.rawValue),
                "prefix": .string(key.prefix), "sha256": .string(key.sha256),
            ]
        }))])
    }

    /// Auth answers with the tenant's active keys: one publishable and one secret, hashes only.
    static let activeKeysBody: PactValue = [
        "keys": .eachLike([
            "id": .uuid(Fixtures.publishableKeyID.uuidString),
            "kind": .term(regex: "^(publishable|secret)$", example: "publishable"),
            "prefix": .like(.string(String(Fixtures.publishableKey.prefix(12)))),
            "sha256": .term(regex: "^[0-9a-f]{64}$", example: Fixtures.keySet.keys[0].sha256),
        ], min: 2),
    ]

    static func keysState(_ set: APIKeySet) -> ProviderState {
        guard case .object(let pairs) = keySetValue(set) else { return ProviderState(name: "the tenant has active API keys") }
        return ProviderState(name: "the tenant has active API keys", params: tenantParams + pairs)
    }

    static func keys(_ url: String, _ http: CurlHTTPClient) -> APIKeysClient {
        APIKeysClient(http: http, authURL: url, serviceToken: Fixtures.serviceToken)
    }

    static func apiKeyInteractions(_ pact: inout Pact) async throws {
        try await pact.verify(Interaction(
            description: "a request to store a tenant's first API keys",
            states: [ProviderState(name: "the tenant is registered without API keys", params: tenantParams)],
            request: .init(method: "PUT", path: keysPath, headers: putHeaders, body: keySetValue(Fixtures.keySet)),
            response: .init(status: 201, headers: jsonHeaders, body: activeKeysBody)
        )) { url in
            try await Fixtures.withClient { http in
                let stored = try await keys(url, http).store(Fixtures.keySet, tenantID: Fixtures.tenantID)
                try #require(stored.created && stored.active.keys.count >= 2)
            }
        }

        try await pact.verify(Interaction(
            description: "a request to store the same API keys again",
            states: [keysState(Fixtures.keySet)],
            request: .init(method: "PUT", path: keysPath, headers: putHeaders, body: keySetValue(Fixtures.keySet)),
            response: .init(status: 200, headers: jsonHeaders, body: activeKeysBody)
        )) { url in
            try await Fixtures.withClient { http in
                // A re-run of the step: the same set is already there.
                try #require(try await keys(url, http).store(Fixtures.keySet, tenantID: Fixtures.tenantID).created == false)
            }
        }

        try await pact.verify(Interaction(
            description: "a request to store API keys while a different set is active",
            states: [keysState(Fixtures.otherKeySet)],
            request: .init(method: "PUT", path: keysPath, headers: putHeaders, body: keySetValue(Fixtures.keySet)),
            response: .init(status: 409, headers: jsonHeaders, body: errorBody("keys_exist"))
        )) { url in
            try await Fixtures.withClient { http in
                try await expectStatus(409, code: "keys_exist") {
                    _ = try await keys(url, http).store(Fixtures.keySet, tenantID: Fixtures.tenantID)
                }
            }
        }

        try await pact.verify(Interaction(
            description: "a request to store a rotation's next API keys beside the active ones",
            states: [keysState(Fixtures.keySet)],
            request: .init(method: "PUT", path: keysPath + "/next", headers: putHeaders, body: keySetValue(Fixtures.otherKeySet)),
            response: .init(status: 201, headers: jsonHeaders, body: activeKeysBody)
        )) { url in
            try await Fixtures.withClient { http in
                let stored = try await keys(url, http).storeNext(Fixtures.otherKeySet, tenantID: Fixtures.tenantID)
                try #require(stored.created && stored.active.keys.count >= 2)
            }
        }

        try await pact.verify(Interaction(
            description: "a request to revoke a rotation's old API keys by id",
            states: [keysState(Fixtures.keySet)],
            request: .init(method: "POST", path: keysPath + "/revoke", headers: putHeaders, body: [
                "key_ids": .array(Fixtures.keySet.keys.map { .string($0.id.uuidString.lowercased()) }),
            ]),
            response: .init(status: 204)
        )) { url in
            try await Fixtures.withClient { http in
                try await keys(url, http).revoke(keyIDs: Fixtures.keySet.keys.map(\.id), tenantID: Fixtures.tenantID)
            }
        }

        try await pact.verify(Interaction(
            description: "a request to revoke a tenant's API keys",
            states: [keysState(Fixtures.keySet)],
            request: .init(method: "DELETE", path: keysPath, headers: tokenHeader),
            response: .init(status: 204)
        )) { url in
            try await Fixtures.withClient { http in
                try await keys(url, http).revoke(tenantID: Fixtures.tenantID)
            }
        }
    }
}

extension ProvisioningConsumerPacts {
    // MARK: Developers' tokens (the project API's DeveloperAuthenticator)

    static let sessionID = UUID(uuidString: "9a4e6c2b-1f3d-4b5a-8c7e-0d2f4a6b8c1e")!
    static let endedSessionID = UUID(uuidString: "4c2a8e6f-3b1d-4f9a-a7c5-e1d3b5f7a9c2")!
    /// The owner of a registration's project that never committed (the orphan reconciler's case).
    static let orphanOwnerID = UUID(uuidString: "9d0c6b1e-5a2f-4e3d-8c7b-6a5f4e3d2c1b")!

    static func credentials(_ url: String, _ http: CurlHTTPClient) -> DeveloperCredentialsClient {
        DeveloperCredentialsClient(http: http, authURL: url, serviceToken: Fixtures.serviceToken)
    }

    /// A developer's access token signed with the fixture key.
    static func developerToken() async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: try ES256PrivateKey(pem: Fixtures.signingKeyPEM), kid: JWKIdentifier(string: Fixtures.signingKeyID))
        let claims = DeveloperAccessClaims(developer: Fixtures.developerID, session: sessionID, issuedAt: Date(), lifetime: .seconds(300))
        return try await keys.sign(claims, kid: JWKIdentifier(string: Fixtures.signingKeyID))
    }

    static func developerTokenInteractions(_ pact: inout Pact) async throws {
        try await pact.verify(Interaction(
            description: "a request for the developers' public keys",
            states: [],
            request: .init(method: "GET", path: "/.well-known/jwks.json"),
            response: .init(status: 200, headers: jsonHeaders, body: try Fixtures.jwksBody())
        )) { url in
            try await Fixtures.withClient { http in
                // A developer's token signed with a published key verifies offline.
                let client = credentials(url, http)
                let jwks = RemoteJWKS<String>(ttl: .zero) { _ in try await client.jwks() }
                let claims = try await jwks.verify(try await developerToken(), of: "developers", as: DeveloperAccessClaims.self)
                try #require(claims?.developer == Fixtures.developerID && claims?.session == sessionID)
            }
        }

        try await pact.verify(Interaction(
            description: "a request whether a developer's session is live",
            states: [ProviderState(name: "a developer session is live", params: [
                ("session_id", .string(sessionID.uuidString.lowercased())), ("developer_id", .string(Fixtures.developerID.uuidString.lowercased())),
            ])],
            request: .init(method: "GET", path: "/internal/v1/sessions/" + sessionID.uuidString.lowercased(), headers: tokenHeader),
            response: .init(status: 200, headers: jsonHeaders, body: [
                "session_id": .uuid(sessionID.uuidString),
                "developer_id": .uuid(Fixtures.developerID.uuidString),
            ])
        )) { url in
            try await Fixtures.withClient { http in
                try #require(try await credentials(url, http).session(sessionID) == DeveloperSession(sessionId: sessionID, developerId: Fixtures.developerID))
            }
        }

        try await pact.verify(Interaction(
            description: "a request whether an ended session is live",
            states: [ProviderState(name: "no live session has this id", params: [("session_id", .string(endedSessionID.uuidString.lowercased()))])],
            request: .init(method: "GET", path: "/internal/v1/sessions/" + endedSessionID.uuidString.lowercased(), headers: tokenHeader),
            response: .init(status: 404)
        )) { url in
            try await Fixtures.withClient { http in
                // Ended: the token is refused (401), not an outage (503).
                try #require(try await credentials(url, http).session(endedSessionID) == nil)
            }
        }

        try await pact.verify(Interaction(
            description: "a request whether a registration's developer account exists",
            states: [ProviderState(name: "a developer account exists", params: [("developer_id", .string(Fixtures.developerID.uuidString.lowercased()))])],
            request: .init(method: "GET", path: "/internal/v1/developers/" + Fixtures.developerID.uuidString.lowercased(), headers: tokenHeader),
            response: .init(status: 200, headers: jsonHeaders, body: ["developer_id": .uuid(Fixtures.developerID.uuidString)])
        )) { url in
            try await Fixtures.withClient { http in
                try #require(try await credentials(url, http).developer(Fixtures.developerID) == DeveloperAccount(developerId: Fixtures.developerID))
            }
        }

        try await pact.verify(Interaction(
            description: "a request whether a registration that never committed has a developer account",
            states: [ProviderState(name: "no developer account has this id", params: [("developer_id", .string(orphanOwnerID.uuidString.lowercased()))])],
            request: .init(method: "GET", path: "/internal/v1/developers/" + orphanOwnerID.uuidString.lowercased(), headers: tokenHeader),
            response: .init(status: 404)
        )) { url in
            try await Fixtures.withClient { http in
                // No account: the orphan reconciler deprovisions the project (not an outage).
                try #require(try await credentials(url, http).developer(orphanOwnerID) == nil)
            }
        }
    }
}

/// Runs `call` and requires it to fail with `HTTPClientError.status(status, …)` whose error
/// code is `code`.
func expectStatus(_ status: Int, code: String, _ call: () async throws -> Void) async throws {
    do {
        try await call()
    } catch HTTPClientError.status(let actual, let body) {
        let envelope = ErrorEnvelope(body: body)
        try #require(actual == status && envelope?.error.code == code, "got \(actual) \(envelope?.error.code ?? "no envelope")")
        return
    }
    throw PactFailure(messages: ["expected the call to fail with \(status) \(code); it succeeded"])
}
