import Foundation
import JWTKit
import Postgres
import Synchronization

/// The ES256 keys that sign and verify developers' access tokens.
///
/// The active key (one row without `retired_at`) signs; retired keys keep verifying until the
/// tokens they signed have expired (`retired_at + access TTL`), so rotation never logs anyone
/// out. Every replica reads the keys from auth's schema (cached for `reloadInterval`, and
/// reloaded at once when a token names an unknown key id); the first replica to find no active
/// key makes one, under an advisory lock.
final class SigningKeys: Sendable {
    private struct Snapshot: Sendable {
        var keys: JWTKeyCollection
        var activeKID: String
        var publicKeys: [(kid: String, x: String, y: String)]
        var loadedAt: ContinuousClock.Instant
    }

    private let pool: PostgresPool
    private let accessTTL: Duration
    private let reloadInterval: Duration = .seconds(30)
    private let snapshot = Mutex<Snapshot?>(nil)

    init(pool: PostgresPool, accessTTL: Duration) {
        self.pool = pool
        self.accessTTL = accessTTL
    }

    /// Signs `claims` with the active key; its id goes in the header.
    func sign(_ claims: AccessClaims) async throws -> String {
        let current = try await current()
        return try await current.keys.sign(claims, kid: JWKIdentifier(string: current.activeKID))
    }

    /// Verifies a token's signature (by its `kid`) and claims.
    func verify(_ token: String) async throws -> AccessClaims {
        let current = try await current()
        do {
            return try await current.keys.verify(token, as: AccessClaims.self)
        } catch let error as JWTError where error.errorType == .unknownKID {
            // A key made (or rotated in) by another replica since the last load.
            return try await reload().keys.verify(token, as: AccessClaims.self)
        }
    }

    /// The public keys as a JWKS document (`/.well-known/jwks.json`).
    func jwks() async throws -> [String: [[String: String]]] {
        let current = try await current()
        return ["keys": current.publicKeys.map { key in
            ["kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": key.kid, "x": key.x, "y": key.y]
        }]
    }

    /// Makes a new active key and retires the current one (which still verifies its tokens
    /// until they expire). Returns the new key id.
    func rotate() async throws -> String {
        let kid = try await pool.withTransaction { tx in
            try await tx.query("SELECT pg_advisory_xact_lock(hashtextextended('auth.signing_keys', 0))")
            try await tx.query("UPDATE auth.signing_keys SET retired_at = now() WHERE retired_at IS NULL")
            return try await insertKey(tx)
        }
        _ = try await reload()
        return kid
    }

    private func current() async throws -> Snapshot {
        if let loaded = snapshot.withLock({ $0 }), ContinuousClock.now - loaded.loadedAt < reloadInterval {
            return loaded
        }
        return try await reload()
    }

    private func reload() async throws -> Snapshot {
        let rows = try await pool.withTransaction { tx in
            let live = try await loadRows(tx)
            if live.contains(where: { $0.retired == false }) { return live }
            try await tx.query("SELECT pg_advisory_xact_lock(hashtextextended('auth.signing_keys', 0))")
            let again = try await loadRows(tx)
            if again.contains(where: { $0.retired == false }) { return again }
            _ = try await insertKey(tx)
            return try await loadRows(tx)
        }
        let keys = JWTKeyCollection()
        var active = ""
        var publicKeys: [(kid: String, x: String, y: String)] = []
        for row in rows {
            let key = try ES256PrivateKey(pem: row.pem)
            await keys.add(ecdsa: key, kid: JWKIdentifier(string: row.kid))
            if let parameters = key.publicKey.parameters {
                publicKeys.append((row.kid, parameters.x, parameters.y))
            }
            if !row.retired { active = row.kid }
        }
        let fresh = Snapshot(keys: keys, activeKID: active, publicKeys: publicKeys, loadedAt: .now)
        snapshot.withLock { $0 = fresh }
        return fresh
    }

    private func loadRows(_ tx: PostgresConnection) async throws -> [(kid: String, pem: String, retired: Bool)] {
        let seconds = Double(accessTTL.components.seconds)
        return try await tx.query("""
            SELECT kid, private_key_pem, retired_at IS NOT NULL AS retired FROM auth.signing_keys
            WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => \(seconds))
            ORDER BY created_at
            """).map { (try $0.decode("kid"), try $0.decode("private_key_pem"), try $0.decode("retired")) }
    }

    private func insertKey(_ tx: PostgresConnection) async throws -> String {
        let key = ES256PrivateKey()
        let kid = UUID().uuidString.lowercased()
        try await tx.query("INSERT INTO auth.signing_keys (kid, private_key_pem) VALUES (\(kid), \(key.pemRepresentation))")
        return kid
    }
}
