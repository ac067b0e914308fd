import Contracts
import Foundation
import Postgres

/// A project's API keys on provisioning's side: the key set as hashes (`api_key_sets`, kept for
/// the project's life, so a re-run of `generate_api_keys` re-sends the same set instead of
/// minting a second one) and the readable keys awaiting their one reveal (`api_key_reveals`,
/// deleted by the read that shows them, or after `PROVISIONING_KEY_REVEAL_SECONDS` unread). Kept in one type because the two tables are written
/// together and the readable keys must never outlive the first read: every path to them is here.
struct KeyVault: Sendable {
    let pool: PostgresPool

    /// The project's key set, as hashes: the one recorded by an earlier attempt when there is
    /// one (a re-run never mints a second set), else `mint()`'s, recorded together with the
    /// readable keys awaiting their one reveal.
    func keySet(for projectID: UUID, mint: @Sendable () -> MintedKeys) async throws -> APIKeySet {
        try await pool.withTransaction { tx in
            try await tx.query("SELECT pg_advisory_xact_lock(hashtextextended(\(projectID.uuidString), 0))")
            if let row = try await tx.query("SELECT * FROM provisioning.api_key_sets WHERE project_id = \(projectID)").first {
                return APIKeySet(keys: [
                    APIKeyHash(id: try row.decode("publishable_id"), kind: .publishable,
                               prefix: try row.decode("publishable_prefix"), sha256: try row.decode("publishable_sha256")),
                    APIKeyHash(id: try row.decode("secret_id"), kind: .secret,
                               prefix: try row.decode("secret_prefix"), sha256: try row.decode("secret_sha256")),
                ])
            }
            let keys = mint()
            let set = keys.hashes
            let publishable = set.keys[0]
            let secret = set.keys[1]
            try await tx.query("""
                INSERT INTO provisioning.api_key_sets
                    (project_id, publishable_id, publishable_prefix, publishable_sha256, secret_id, secret_prefix, secret_sha256)
                VALUES (\(projectID), \(publishable.id), \(publishable.prefix), \(publishable.sha256),
                        \(secret.id), \(secret.prefix), \(secret.sha256))
                """)
            try await tx.query("""
                INSERT INTO provisioning.api_key_reveals (project_id, publishable_id, publishable, secret_id, secret)
                VALUES (\(projectID), \(keys.publishableID), \(keys.publishable), \(keys.secretID), \(keys.secret))
                ON CONFLICT (project_id) DO NOTHING
                """)
            return set
        }
    }

    /// Forgets the key set (after auth revoked it), so a later attempt mints a fresh one.
    func forgetKeys(for projectID: UUID) async throws {
        try await pool.withTransaction { tx in
            try await discardReveal(of: projectID, in: tx)
            try await tx.query("DELETE FROM provisioning.api_key_sets WHERE project_id = \(projectID)")
        }
    }

    /// The project's keys as its owner sees them (`GET /v1/projects/{id}/api-keys`): ids,
    /// kinds, prefixes and when they were made; the readable keys too in exactly one answer, the
    /// first one while `reveal` (the project is ready) and within `revealTTL` of minting. They
    /// are deleted in the caller's transaction, so only the first read that commits sees them.
    func apiKeys(of projectID: UUID, reveal: Bool, revealTTL: Duration, in tx: PostgresConnection) async throws -> ProjectAPIKeys {
        guard let set = try await tx.query("SELECT * FROM provisioning.api_key_sets WHERE project_id = \(projectID)").first else {
            return ProjectAPIKeys(keys: [])
        }
        var readable: (publishable: String, secret: String)?
        if reveal {
            let revealed = try await tx.query("""
                DELETE FROM provisioning.api_key_reveals
                WHERE project_id = \(projectID) AND created_at > now() - make_interval(secs => \(Double(revealTTL.components.seconds)))
                RETURNING publishable, secret
                """)
            if let row = revealed.first { readable = (try row.decode("publishable"), try row.decode("secret")) }
        }
        let createdAt: Date = try set.decode("created_at")
        return ProjectAPIKeys(keys: [
            ProjectAPIKey(id: try set.decode("publishable_id"), kind: .publishable, prefix: try set.decode("publishable_prefix"),
                          createdAt: createdAt, key: readable?.publishable),
            ProjectAPIKey(id: try set.decode("secret_id"), kind: .secret, prefix: try set.decode("secret_prefix"),
                          createdAt: createdAt, key: readable?.secret),
        ])
    }

    /// Deletes readable keys nobody took within `ttl` of minting; returns how many projects' keys
    /// went. (Reads ignore them from that moment anyway; this removes them from the database.)
    func purgeUnrevealed(olderThan ttl: Duration) async throws -> Int {
        try await pool.query("""
            DELETE FROM provisioning.api_key_reveals WHERE created_at <= now() - make_interval(secs => \(Double(ttl.components.seconds)))
            """).affectedRows
    }

    /// Drops the readable keys unshown (the project is being deleted), in the caller's transaction.
    func discardReveal(of projectID: UUID, in tx: PostgresConnection) async throws {
        try await tx.query("DELETE FROM provisioning.api_key_reveals WHERE project_id = \(projectID)")
    }
}
