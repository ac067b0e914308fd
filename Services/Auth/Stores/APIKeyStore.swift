import Contracts
import Foundation
import Postgres

/// Tenants' API keys in `auth.api_keys`: hashes and prefixes only. Auth never sees a whole key
/// here; provisioning mints the keys, hands them to the developer once, and sends only their
/// SHA-256 hex, so nothing stored can be used as a key.
struct APIKeyStore: Sendable {
    let pool: PostgresPool

    enum Outcome: Sendable {
        /// The set was stored now.
        case stored
        /// This exact set was already the tenant's active one (a repeated request).
        case alreadyActive
    }

    enum Failure: Error, Sendable {
        case tenantNotFound
        /// The tenant has a different active set; keys are never silently replaced.
        case differentSetActive
        /// A key id or hash is already stored for a revoked key or another tenant.
        case keyAlreadyUsed
    }

    /// Stores `set` as the tenant's active keys. The tenant's row is locked first, so concurrent
    /// PUTs for one tenant (and a concurrent DELETE of the tenant) run one after the other and
    /// each sees what the previous one left.
    func store(_ set: APIKeySet, tenantID: UUID) async throws -> Outcome {
        try await storing(set, tenantID: tenantID) { active in
            guard Self.sameSet(active, set.keys) else { throw Failure.differentSetActive }
        }
    }

    /// Stores `set` beside the tenant's active keys: a rotation's next set, active at once while
    /// the current one keeps working until it is revoked by id (`revoke(keyIDs:)`). At most two
    /// sets are active at a time; this exact set again is `alreadyActive`.
    func storeNext(_ set: APIKeySet, tenantID: UUID) async throws -> Outcome {
        try await storing(set, tenantID: tenantID) { active in
            guard active.count <= set.keys.count else { throw Failure.differentSetActive }
        }
    }

    /// The tenant's row locked, its active keys read: `set` already among them is
    /// `alreadyActive`; else `allowed` decides (throwing a `Failure`) whether it may be added
    /// to the non-empty active keys it is given; then each key is inserted.
    private func storing(_ set: APIKeySet, tenantID: UUID, allowed: ([APIKeyHash]) throws -> Void) async throws -> Outcome {
        try await pool.withTransaction { connection in
            let tenant = try await connection.query("SELECT id FROM auth.tenants WHERE id = \(tenantID) FOR UPDATE")
            guard !tenant.isEmpty else { throw Failure.tenantNotFound }
            let active = try await Self.activeKeys(tenantID: tenantID, on: connection)
            if set.keys.allSatisfy({ active.contains($0) }) { return .alreadyActive }
            if !active.isEmpty { try allowed(active) }
            for key in set.keys {
                // ON CONFLICT DO NOTHING: a clash with any unique key (id, hash) is reported as
                // such instead of aborting with a unique violation.
                let inserted = try await connection.query("""
                    INSERT INTO auth.api_keys (id, tenant_id, kind, prefix, sha256)
                    VALUES (\(key.id), \(tenantID), \(key.kind.rawValue), \(key.prefix), \(key.sha256))
                    ON CONFLICT DO NOTHING
                    RETURNING id
                    """)
                guard !inserted.isEmpty else { throw Failure.keyAlreadyUsed }
            }
            return .stored
        }
    }

    /// Revokes the tenant's active keys with these ids (a rotation's old set); returns how many
    /// were active.
    @discardableResult
    func revoke(keyIDs: [UUID], tenantID: UUID) async throws -> Int {
        try await pool.query("""
            UPDATE auth.api_keys SET revoked_at = now()
            WHERE tenant_id = \(tenantID) AND id = ANY (\(keyIDs)::uuid[]) AND revoked_at IS NULL
            """).affectedRows
    }

    /// Revokes every active key of the tenant; returns how many were active. Revoked rows stay
    /// (with `revoked_at`) as a record, and their hashes can never be stored again.
    @discardableResult
    func revokeAll(tenantID: UUID) async throws -> Int {
        try await pool.query(
            "UPDATE auth.api_keys SET revoked_at = now() WHERE tenant_id = \(tenantID) AND revoked_at IS NULL"
        ).affectedRows
    }

    /// The active key with this SHA-256 (lowercase hex) and its tenant; nil when there is none
    /// (unknown, or revoked: revocation takes effect here at once).
    func identity(sha256: String) async throws -> APIKeyIdentity? {
        guard let row = try await pool.query("""
            SELECT k.id, k.tenant_id, k.kind, t.slug FROM auth.api_keys k JOIN auth.tenants t ON t.id = k.tenant_id
            WHERE k.sha256 = \(sha256) AND k.revoked_at IS NULL
            """).first else { return nil }
        return APIKeyIdentity(keyId: try row.decode("id"), tenantId: try row.decode("tenant_id"), slug: try row.decode("slug"),
                              kind: try Self.kind(row))
    }

    func activeKeys(tenantID: UUID) async throws -> [APIKeyHash] {
        try await pool.withConnection { try await Self.activeKeys(tenantID: tenantID, on: $0) }
    }

    private static func activeKeys(tenantID: UUID, on connection: PostgresConnection) async throws -> [APIKeyHash] {
        try await connection.query("""
            SELECT id, kind, prefix, sha256 FROM auth.api_keys
            WHERE tenant_id = \(tenantID) AND revoked_at IS NULL
            ORDER BY kind
            """).map { row in
            APIKeyHash(id: try row.decode("id"), kind: try kind(row), prefix: try row.decode("prefix"), sha256: try row.decode("sha256"))
        }
    }

    private static func kind(_ row: PostgresRow) throws -> APIKeyHash.Kind {
        guard let kind = APIKeyHash.Kind(rawValue: try row.decode("kind", as: String.self)) else {
            throw PostgresError(.decoding, message: "column \"kind\" holds an unknown key kind", column: "kind")
        }
        return kind
    }

    /// Same keys, whatever the order.
    static func sameSet(_ a: [APIKeyHash], _ b: [APIKeyHash]) -> Bool {
        a.count == b.count && a.allSatisfy { key in b.contains(key) } && b.allSatisfy { key in a.contains(key) }
    }
}
