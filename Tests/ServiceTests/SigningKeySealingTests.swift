import Contracts
import Foundation
import HTTPClient
import JWTKit
import Postgres
import ServiceKit
import TestSupport
import Testing

/// Auth's signing keys are sealed at rest (AES-256-GCM under `SIGNING_KEY_ENCRYPTION_KEY`): a
/// dump of the database carries no private key, a rotation re-seals every key as it is loaded
/// and keeps the tokens they signed valid, and keys written before sealing are sealed on load.
@Suite("Signing keys sealed at rest", .serialized)
struct SigningKeySealingTests {
    func me(_ platform: TestPlatform, _ access: String) async throws -> Int {
        try await platform.client.execute(HTTPClientRequest(
            url: platform.url("auth") + "/v1/me", headers: HTTPClientHeaders([("Authorization", "Bearer " + access)]))).status
    }

    func sealedWith(_ pool: PostgresPool) async throws -> Set<String> {
        Set(try await pool.query("SELECT coalesce(sealed_with, 'clear') AS s FROM auth.signing_keys").map { try $0.decode("s", as: String.self) })
    }

    @Test("a dump of the database holds no signing key: every row is sealed, no PEM in the clear")
    func dumpCarriesNoKey() async throws {
        try await withTestPlatform { platform, url in
            let developer = try await platform.registerDeveloper("seal")
            #expect(try await me(platform, developer.accessToken) == 200)
            // A tenant's users' keys too.
            let tenant = try await platform.provisionTenant("seal")
            let signup = try await platform.tenantCall(.post, "auth", "/v1/tenants/\(tenant.slug)/signup", apikey: tenant.keys.publishable,
                                                       json: ["email": "user@example.com", "password": "correct horse battery staple"])
            #expect(signup.status == 201)
            let (rows, clear) = try await withPool(url: url) { pool in
                (try await pool.query("SELECT count(*) AS n FROM auth.signing_keys").single().decode("n", as: Int.self),
                 try await pool.query("SELECT count(*) AS n FROM auth.signing_keys WHERE private_key_pem IS NOT NULL").single().decode("n", as: Int.self))
            }
            #expect(rows >= 2 && clear == 0)
            let dump = try TestDatabase.dump(url)
            #expect(dump.contains("signing_keys"))
            #expect(!dump.contains("PRIVATE KEY"))
        }
    }

    @Test("rotating SIGNING_KEY_ENCRYPTION_KEY: with the old secret as previous, tokens still verify and every key is sealed again; then the old secret can go")
    func rotation() async throws {
        try await withTestPlatform { platform, url in
            let developer = try await platform.registerDeveloper("rot")
            let old = try await withPool(url: url) { try await sealedWith($0) }
            #expect(old.count == 1 && !old.contains("clear"))

            let newSecret = "rotated-" + UUID().uuidString + UUID().uuidString
            await platform.stop("auth")
            try await platform.start(["auth"], overrides: [
                "SIGNING_KEY_ENCRYPTION_KEY": newSecret, "SIGNING_KEY_ENCRYPTION_KEYS_PREVIOUS": TestServices.signingKeyEncryptionKey,
            ])
            #expect(try await me(platform, developer.accessToken) == 200)
            let resealed = try await withPool(url: url) { try await sealedWith($0) }
            #expect(resealed.count == 1 && resealed != old)

            // The old secret is no longer needed.
            await platform.stop("auth")
            try await platform.start(["auth"], overrides: ["SIGNING_KEY_ENCRYPTION_KEY": newSecret])
            #expect(try await me(platform, developer.accessToken) == 200)
            #expect(try await platform.registerDeveloper("rot2").accessToken.isEmpty == false)
        }
    }

    @Test("a key stored in the clear (before sealing) signs as before and is sealed when loaded")
    func legacyKeySealedOnLoad() async throws {
        try await withTestPlatform { platform, url in
            _ = try await platform.registerDeveloper("legacy")
            await platform.stop("auth")
            let legacy = ES256PrivateKey()
            let kid = "legacy-" + UUID().uuidString.lowercased()
            try await withPool(url: url) { pool in
                try await pool.query("UPDATE auth.signing_keys SET retired_at = now() WHERE retired_at IS NULL AND tenant_id IS NULL")
                try await pool.query("INSERT INTO auth.signing_keys (kid, private_key_pem) VALUES (\(kid), \(legacy.pemRepresentation))")
            }
            try await platform.start(["auth"])
            let signedIn = try await platform.registerDeveloper("legacy2")
            #expect(JWTKeyID.of(signedIn.accessToken) == kid)
            let sealed = try await withPool(url: url) { pool in
                try await pool.query("""
                    SELECT private_key_pem IS NULL AND sealed_with IS NOT NULL AS sealed FROM auth.signing_keys WHERE kid = \(kid)
                    """).single().decode("sealed", as: Bool.self)
            }
            #expect(sealed)
            #expect(try await me(platform, signedIn.accessToken) == 200)
        }
    }
}
