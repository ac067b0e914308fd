import Contracts
import Foundation
import Postgres

/// A project's API keys on provisioning's side: the key set as hashes (`api_key_sets`, kept for
/// the project's life, so a re-run of `generate_api_keys` re-sends the same set instead of
/// minting a second one) and the readable keys awaiting their one reveal (`api_key_reveals`,
/// deleted by the read that shows them). Kept in one type because the two tables are written
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

    /// The readable keys, taken out as they are shown: they are deleted in the caller's
    /// transaction (the project read), so only the first read that commits sees them.
    func takeReveal(of projectID: UUID, in tx: PostgresConnection) async throws -> IssuedAPIKeys? {
        let revealed = try await tx.query("""
            DELETE FROM provisioning.api_key_reveals WHERE project_id = \(projectID) RETURNING publishable, secret
            """)
        guard let row = revealed.first else { return nil }
        return IssuedAPIKeys(publishable: try row.decode("publishable"), secret: try row.decode("secret"))
    }

    /// Drops the readable keys unshown (the project is being deleted), in the caller's transaction.
    func discardReveal(of projectID: UUID, in tx: PostgresConnection) async throws {
        try await tx.query("DELETE FROM provisioning.api_key_reveals WHERE project_id = \(projectID)")
    }
}
