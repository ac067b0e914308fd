import Foundation
import JWTKit
import Postgres
import ServiceKit
import TenantKit
import Synchronization

/// The ES256 keys that sign and verify access tokens: developers' (`tenant` nil), or one
/// tenant's end users' (each tenant has its own keys and JWKS, so one tenant's keys can never
/// vouch for another's users).
///
/// The active key (one row without `retired_at`) signs; retired keys keep verifying until the
/// tokens they signed have expired (`retired_at + access TTL`), so rotation never logs anyone
/// out. Every replica reads the keys from auth's schema (cached for `reloadInterval`, and
/// reloaded when a token names an unknown key id, at most once per `unknownKIDInterval`:
/// callers wait for the next slot and share one load, so made-up key ids cannot turn requests
/// into database reads); the first replica to find no active key makes one, under an advisory
/// lock. Private keys are stored sealed (`SigningKeyCipher`): a row written before sealing, or
/// sealed with a secret since rotated out, is sealed with the current secret as it is loaded.
final class SigningKeys: Sendable {
    private struct Snapshot: Sendable {
        var keys: JWTKeyCollection
        var activeKID: String
        var publicKeys: [(kid: String, x: String, y: String)]
        var kids: Set<String>
        var loadedAt: ContinuousClock.Instant
    }

    private let pool: PostgresPool
    private let accessTTL: Duration
    private let cipher: SigningKeyCipher
    let tenant: UUID?
    private let reloadInterval: Duration = .seconds(30)
    private let unknownKIDInterval: Duration = .seconds(1)
    private let snapshot = Mutex<Snapshot?>(nil)
    private let loads = SingleFlight<Bool, Snapshot>()
    /// Called on every load from the database (a metric).
    private let onLoad: @Sendable () -> Void

    init(pool: PostgresPool, accessTTL: Duration, cipher: SigningKeyCipher, tenant: UUID? = nil, onLoad: @escaping @Sendable () -> Void = {}) {
        self.pool = pool
        self.accessTTL = accessTTL
        self.cipher = cipher
        self.tenant = tenant
        self.onLoad = onLoad
    }

    /// Signs `claims` with the active key; its id goes in the header.
    func sign(_ claims: some JWTPayload) async throws -> String {
        let current = try await current()
        return try await current.keys.sign(claims, kid: JWKIdentifier(string: current.activeKID))
    }

    /// Verifies a token's signature (by its `kid`) and claims.
    /// The token must name (`kid`) a key of this owner: jwt-kit alone would try its default key.
    func verify<Claims: JWTPayload>(_ token: String, as type: Claims.Type = DeveloperAccessClaims.self) async throws -> Claims {
        guard let kid = JWTKeyID.of(token) else { throw JWTError.missingKIDHeader }
        var current = try await current()
        if !current.kids.contains(kid) {
            // A key made (or rotated in) by another replica since the last load.
            current = try await reloaded(after: current.loadedAt)
            guard current.kids.contains(kid) else { throw JWTError.unknownKID(JWKIdentifier(string: kid)) }
        }
        return try await current.keys.verify(token, as: Claims.self)
    }

    /// The public keys as a JWKS document (`/.well-known/jwks.json`), each as GoTrue publishes
    /// its own: usable for signature verification only (`use`, `key_ops`).
    func jwks() async throws -> PublicKeySet {
        let current = try await current()
        return PublicKeySet(keys: current.publicKeys.map { PublicKeySet.Key(kid: $0.kid, x: $0.x, y: $0.y) })
    }

    /// Makes a new active key and retires the current one (which still verifies its tokens
    /// until they expire). Returns the new key id.
    func rotate() async throws -> String {
        let kid = try await pool.withTransaction { tx in
            try await lock(tx)
            try await tx.query("UPDATE auth.signing_keys SET retired_at = now() WHERE retired_at IS NULL AND tenant_id IS NOT DISTINCT FROM \(tenant)")
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

    /// A snapshot loaded after `seen`, waiting for the next unknown-kid slot.
    private func reloaded(after seen: ContinuousClock.Instant) async throws -> Snapshot {
        try await loads.run(true, after: seen, interval: unknownKIDInterval, fresh: {
            snapshot.withLock { $0 }.flatMap { $0.loadedAt > seen ? $0 : nil }
        }) { [self] in try await load() }
    }

    /// Loads the keys (one load at a time; concurrent callers share it).
    private func reload() async throws -> Snapshot {
        try await loads.run(true) { [self] in try await load() }
    }

    private func load() async throws -> Snapshot {
        onLoad()
        let rows = try await pool.withTransaction { tx in
            let live = try await loadRows(tx)
            if live.contains(where: { $0.retired == false }) { return live }
            try await lock(tx)
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
        let fresh = Snapshot(keys: keys, activeKID: active, publicKeys: publicKeys, kids: Set(rows.map(\.kid)), loadedAt: .now)
        snapshot.withLock { $0 = fresh }
        return fresh
    }

    /// The live keys, opened; a row in the clear (written before sealing) or sealed with a
    /// previous secret is sealed with the current one on the way.
    private func loadRows(_ tx: PostgresConnection) async throws -> [(kid: String, pem: String, retired: Bool)] {
        let seconds = Double(accessTTL.components.seconds)
        let rows = try await tx.query("""
            SELECT kid, private_key_pem, private_key_sealed, sealed_with, retired_at IS NOT NULL AS retired FROM auth.signing_keys
            WHERE tenant_id IS NOT DISTINCT FROM \(tenant)
              AND (retired_at IS NULL OR retired_at > now() - make_interval(secs => \(seconds)))
            ORDER BY created_at
            """)
        var keys: [(kid: String, pem: String, retired: Bool)] = []
        for row in rows {
            let kid: String = try row.decode("kid")
            let pem: String
            let sealedWith: String? = try row.decode("sealed_with")
            if let sealed: Data = try row.decode("private_key_sealed"), let sealedWith {
                pem = try cipher.open(sealed, with: sealedWith, kid: kid, tenant: tenant)
                if sealedWith != cipher.current.fingerprint { try await store(pem, kid: kid, on: tx) }
            } else {
                pem = try row.decode("private_key_pem")
                try await store(pem, kid: kid, on: tx)
            }
            keys.append((kid, pem, try row.decode("retired")))
        }
        return keys
    }

    /// Seals `pem` with the current secret into its row, clearing any PEM in the clear.
    private func store(_ pem: String, kid: String, on tx: PostgresConnection) async throws {
        let sealed = try cipher.seal(pem, kid: kid, tenant: tenant)
        try await tx.query("""
            UPDATE auth.signing_keys SET private_key_sealed = \(sealed.sealed), sealed_with = \(sealed.with), private_key_pem = NULL
            WHERE kid = \(kid)
            """)
    }

    private func insertKey(_ tx: PostgresConnection) async throws -> String {
        let key = ES256PrivateKey()
        let kid = UUID().uuidString.lowercased()
        let sealed = try cipher.seal(key.pemRepresentation, kid: kid, tenant: tenant)
        try await tx.query("""
            INSERT INTO auth.signing_keys (kid, private_key_sealed, sealed_with, tenant_id)
            VALUES (\(kid), \(sealed.sealed), \(sealed.with), \(tenant))
            """)
        return kid
    }

    /// Serialises key creation and rotation for this owner (developers, or one tenant).
    private func lock(_ tx: PostgresConnection) async throws {
        let key = "auth.signing_keys." + (tenant?.uuidString.lowercased() ?? "developers")
        try await tx.query("SELECT pg_advisory_xact_lock(hashtextextended(\(key), 0))")
    }
}

/// The developers' keys and, made on first use, each tenant's.
final class SigningKeyring: Sendable {
    let developers: SigningKeys
    private let pool: PostgresPool
    private let accessTTL: Duration
    private let cipher: SigningKeyCipher
    private let onLoad: @Sendable () -> Void
    private let tenants = Mutex<[UUID: SigningKeys]>([:])

    init(pool: PostgresPool, accessTTL: Duration, cipher: SigningKeyCipher, onLoad: @escaping @Sendable () -> Void = {}) {
        self.pool = pool
        self.accessTTL = accessTTL
        self.cipher = cipher
        self.onLoad = onLoad
        developers = SigningKeys(pool: pool, accessTTL: accessTTL, cipher: cipher, onLoad: onLoad)
    }

    func tenant(_ id: UUID) -> SigningKeys {
        tenants.withLock { tenants in
            if let keys = tenants[id] { return keys }
            let keys = SigningKeys(pool: pool, accessTTL: accessTTL, cipher: cipher, tenant: id, onLoad: onLoad)
            tenants[id] = keys
            return keys
        }
    }

    /// Forgets a removed tenant's cached keys (its rows went with it).
    func forget(_ id: UUID) {
        _ = tenants.withLock { $0.removeValue(forKey: id) }
    }
}

/// A JWKS document of P-256 public keys.
struct PublicKeySet: Codable, Sendable, Equatable {
    struct Key: Codable, Sendable, Equatable {
        var kty = "EC"
        var crv = "P-256"
        var alg = "ES256"
        var use = "sig"
        var keyOps = ["verify"]
        var kid: String
        var x: String
        var y: String

        init(kid: String, x: String, y: String) {
            self.kid = kid
            self.x = x
            self.y = y
        }

        enum CodingKeys: String, CodingKey {
            case kty, crv, alg, use, kid, x, y
            case keyOps = "key_ops"
        }
    }

    var keys: [Key]
}
