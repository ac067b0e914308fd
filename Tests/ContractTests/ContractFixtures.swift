import Contracts
import Foundation
import HTTPClient
import JWTKit
import Logging
import ServiceKit

/// Fixed values the interactions use, so the pact files are the same on every run. The
/// provider side gets them back as provider-state params (and runs with `serviceToken` as its
/// `INTERNAL_SERVICE_TOKEN`).
enum Fixtures {
    /// The internal token in every recorded request (`deploy/scripts/contracts.sh` starts the
    /// providers with it).
    static let serviceToken = "contract-test-internal-token-0123456789"
    /// How a service token looks to the providers: at least 16 visible characters.
    static let serviceTokenHeader: PactValue = .term(regex: "^[!-~]{16,}$", example: serviceToken)
    /// What the providers answer JSON with (the charset may be given).
    static let jsonContentType: PactValue = .term(regex: "^application/json(;.*)?$", example: "application/json; charset=utf-8")

    // A tenant as provisioning registers it everywhere.
    static let tenantID = UUID(uuidString: "e220582a-be1d-41e2-9357-345acb6f639a")!
    static let slug = "contract_tenant"
    static var registration: TenantRegistration { TenantRegistration(slug: slug, schema: "tenant_" + slug, role: "tenant_" + slug) }
    /// Another tenant, holding `slug` in the slug-taken interaction.
    static let otherTenantID = UUID(uuidString: "fbe2afdd-3d9f-4a55-a523-bd2119f9b60b")!

    // The tenant's API keys, as provisioning mints them (the keys here are fixtures only).
    static let publishableKey = "pk_contract_publishable_key_0123456789"
    static let secretKey = "sk_contract_secret_key_0123456789abcdef"
    static let publishableKeyID = UUID(uuidString: "35de2790-75ed-4cb7-9436-4be5b4f534ed")!
    static let secretKeyID = UUID(uuidString: "57bc3209-5d51-48f1-ae91-7f8b0d2028a1")!
    static var keySet: APIKeySet {
        APIKeySet(keys: [
            APIKeyHash(id: publishableKeyID, kind: .publishable, prefix: String(publishableKey.prefix(12)), sha256: SecureToken.sha256Hex(publishableKey)),
            APIKeyHash(id: secretKeyID, kind: .secret, prefix: String(secretKey.prefix(12)), sha256: SecureToken.sha256Hex(secretKey)),
        ])
    }
    /// A different set, for the "another set is active" interaction.
    static var otherKeySet: APIKeySet {
        APIKeySet(keys: [
            APIKeyHash(id: UUID(uuidString: "7c0deb7d-2445-419a-ac34-ae3866730731")!, kind: .publishable,
                       prefix: "pk_contract_", sha256: SecureToken.sha256Hex("pk_contract_other_publishable")),
            APIKeyHash(id: UUID(uuidString: "dbad3790-ef62-4502-952a-4cd0039d7cb4")!, kind: .secret,
                       prefix: "sk_contract_", sha256: SecureToken.sha256Hex("sk_contract_other_secret")),
        ])
    }
    /// A key nobody minted: auth does not know its hash.
    static let unknownKeySHA256 = SecureToken.sha256Hex("pk_contract_unknown_key")

    // Registration (auth → provisioning).
    static let developerID = UUID(uuidString: "2877d038-2efd-4894-9a77-7ae0006c5c36")!
    static let projectName = "Contract Project"
    static let projectSlug = "contract_project"
    static let projectID = UUID(uuidString: "e558c95e-683a-487c-a945-8fb2028bd568")!
    static let workflowID = UUID(uuidString: "0c5e2b47-9f1d-4a8e-b3c6-2d7f8a9e1b04")!

    /// A tenant's ES256 signing key (a test fixture, signing nothing real), published in the
    /// JWKS interaction; the consumer test signs a user token with it.
    static let signingKeyPEM = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEsXL/n4sjmh+MZDo
        EcRYMNc06YulK4FzfIZ3c1klEGahRANCAATJSLM4nNl6M8VoUiSUtYrxl+q/Vjzl
        enSKDZ+pcNydxakEe7bMq/0q1GNX14cO8S79XU1yybNhzSsHNog3Jne8
        -----END PRIVATE KEY-----
        """
    static let signingKeyID = "3b8f6c1e-5d2a-4f7b-9e0c-8a1d2b3c4e5f"

    /// A JWKS document as auth publishes one (developers' or a tenant's): at least one P-256
    /// key, the fixture key's coordinates as the example (each 32 bytes, base64url unpadded).
    static func jwksBody() throws -> PactValue {
        let base64url = "^[A-Za-z0-9_-]{43}$"
        guard let publicKey = try ES256PrivateKey(pem: signingKeyPEM).publicKey.parameters else {
            throw PactFailure(messages: ["the fixture key has no public parameters"])
        }
        return [
            "keys": .eachLike([
                "kty": .exactly("EC"), "crv": .exactly("P-256"), "alg": .exactly("ES256"),
                "kid": .like(.string(signingKeyID)),
                "x": .term(regex: base64url, example: publicKey.x),
                "y": .term(regex: base64url, example: publicKey.y),
            ], min: 1),
        ]
    }
    /// A slug no tenant has.
    static let unknownSlug = "contract_nobody"

    static let logger: Logger = {
        var logger = Logger(label: "contract-tests")
        logger.logLevel = .critical
        return logger
    }()

    /// Runs `body` with a libcurl client (no retries: every request the consumer sends is one
    /// the stub sees), shut down afterwards whatever happens.
    static func withClient(_ body: (CurlHTTPClient) async throws -> Void) async throws {
        let client = try CurlHTTPClient(
            configuration: HTTPClientConfiguration(connectTimeout: .seconds(2), requestTimeout: .seconds(10), retry: .none),
            logger: logger
        )
        do {
            try await body(client)
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
    }
}
