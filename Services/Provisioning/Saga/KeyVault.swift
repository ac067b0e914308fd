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
    /// kinds, prefixes, when they were made and their state; the readable keys too in exactly
    /// one answer, the first one while `reveal` (the project is ready), within `revealTTL` of
    /// minting and, for a rotation's next set, once auth accepts it. They are deleted in the
    /// caller's transaction, so only the first read that commits sees them.
    func apiKeys(of projectID: UUID, reveal: Bool, revealTTL: Duration, in tx: PostgresConnection) async throws -> ProjectAPIKeys {
        guard let current = try await tx.query("SELECT * FROM provisioning.api_key_sets WHERE project_id = \(projectID)").first else {
            return ProjectAPIKeys(keys: [])
        }
        let rotation = try await tx.query("""
            SELECT * FROM provisioning.api_key_rotations WHERE project_id = \(projectID) AND secret_id IS NOT NULL
            """).first
        let storedNext = try rotation?.decode("stored_at", as: Date?.self) != nil
        var readable: (secretID: UUID, publishable: String, secret: String)?
        if reveal {
            // The readable keys of the current set, or of a rotation's next set once it works.
            let usable: [UUID] = [try current.decode("secret_id")] + (storedNext ? [try rotation?.decode("secret_id", as: UUID.self)].compactMap { $0 } : [])
            let revealed = try await tx.query("""
                DELETE FROM provisioning.api_key_reveals
                WHERE project_id = \(projectID) AND secret_id = ANY (\(usable)::uuid[])
                  AND created_at > now() - make_interval(secs => \(Double(revealTTL.components.seconds)))
                RETURNING secret_id, publishable, secret
                """)
            if let row = revealed.first { readable = (try row.decode("secret_id"), try row.decode("publishable"), try row.decode("secret")) }
        }
        let retiresAt: Date? = storedNext ? try rotation?.decode("grace_until") : nil
        var keys = try Self.pair(current, state: retiresAt == nil ? .active : .retiring, retiresAt: retiresAt, readable: readable)
        if let rotation, storedNext {
            keys += try Self.pair(rotation, state: .next, retiresAt: nil, readable: readable)
        }
        return ProjectAPIKeys(keys: keys)
    }

    /// One set's two keys (a row of `api_key_sets` or `api_key_rotations`), readable when the
    /// revealed keys are this set's.
    private static func pair(_ row: PostgresRow, state: ProjectAPIKey.State, retiresAt: Date?,
                             readable: (secretID: UUID, publishable: String, secret: String)?) throws -> [ProjectAPIKey] {
        let secretID: UUID = try row.decode("secret_id")
        let mine = readable?.secretID == secretID ? readable : nil
        let createdAt: Date = try row.decode("created_at")
        return [
            ProjectAPIKey(id: try row.decode("publishable_id"), kind: .publishable, prefix: try row.decode("publishable_prefix"),
                          createdAt: createdAt, key: mine?.publishable, state: state, retiresAt: retiresAt),
            ProjectAPIKey(id: secretID, kind: .secret, prefix: try row.decode("secret_prefix"),
                          createdAt: createdAt, key: mine?.secret, state: state, retiresAt: retiresAt),
        ]
    }

    // MARK: Rotation

    /// A rotation as its steps see it.
    struct Rotation: Sendable {
        var next: APIKeySet?
        var graceUntil: Date?
    }

    func rotation(_ execution: UUID) async throws -> Rotation? {
        guard let row = try await pool.query("SELECT * FROM provisioning.api_key_rotations WHERE execution_id = \(execution)").first else {
            return nil
        }
        return Rotation(next: try Self.set(row), graceUntil: try row.decode("grace_until"))
    }

    /// The rotation's next set: the one an earlier attempt recorded, else `mint()`'s, recorded
    /// with its readable keys (which replace any unrevealed keys of the current set: the
    /// rotation retires those anyway).
    func nextKeySet(for execution: UUID, project: UUID, mint: @Sendable () -> MintedKeys) async throws -> APIKeySet {
        try await pool.withTransaction { tx in
            let row = try await tx.query("SELECT * FROM provisioning.api_key_rotations WHERE execution_id = \(execution) FOR UPDATE").single()
            if let recorded = try Self.set(row) { return recorded }
            let keys = mint()
            let set = keys.hashes
            let publishable = set.keys[0]
            let secret = set.keys[1]
            try await tx.query("""
                UPDATE provisioning.api_key_rotations
                SET publishable_id = \(publishable.id), publishable_prefix = \(publishable.prefix), publishable_sha256 = \(publishable.sha256),
                    secret_id = \(secret.id), secret_prefix = \(secret.prefix), secret_sha256 = \(secret.sha256)
                WHERE execution_id = \(execution)
                """)
            try await discardReveal(of: project, in: tx)
            try await tx.query("""
                INSERT INTO provisioning.api_key_reveals (project_id, publishable_id, publishable, secret_id, secret)
                VALUES (\(project), \(keys.publishableID), \(keys.publishable), \(keys.secretID), \(keys.secret))
                """)
            return set
        }
    }

    /// The next set is active in auth: the grace period starts (once); returns when it ends.
    func markNextStored(_ execution: UUID) async throws -> Date {
        try await pool.query("""
            UPDATE provisioning.api_key_rotations
            SET stored_at = coalesce(stored_at, now()),
                grace_until = coalesce(grace_until, now() + make_interval(secs => grace_seconds))
            WHERE execution_id = \(execution)
            RETURNING grace_until
            """).single().decode("grace_until")
    }

    /// Undoes `mint_keys`: the next set and its readable keys are forgotten.
    func forgetNextKeySet(_ execution: UUID, project: UUID) async throws {
        try await pool.withTransaction { tx in
            try await tx.query("""
                DELETE FROM provisioning.api_key_reveals r USING provisioning.api_key_rotations k
                WHERE k.execution_id = \(execution) AND r.project_id = \(project) AND r.secret_id = k.secret_id
                """)
            try await tx.query("""
                UPDATE provisioning.api_key_rotations
                SET publishable_id = NULL, publishable_prefix = NULL, publishable_sha256 = NULL,
                    secret_id = NULL, secret_prefix = NULL, secret_sha256 = NULL, stored_at = NULL, grace_until = NULL
                WHERE execution_id = \(execution)
                """)
        }
    }

    /// Removes an undone rotation's record (and any readable keys it left), so another can start.
    func endRotation(_ execution: UUID, project: UUID) async throws {
        try await forgetNextKeySet(execution, project: project)
        try await pool.query("DELETE FROM provisioning.api_key_rotations WHERE execution_id = \(execution)")
    }

    /// The ids of the project's current keys (the set a rotation retires).
    func currentKeyIDs(of project: UUID) async throws -> [UUID] {
        guard let row = try await pool.query("SELECT publishable_id, secret_id FROM provisioning.api_key_sets WHERE project_id = \(project)").first else {
            return []
        }
        return [try row.decode("publishable_id"), try row.decode("secret_id")]
    }

    /// The next set becomes the project's, the rotation's record goes, and the owner's
    /// endpoints get `project.keys_rotated` — in one transaction. A repeat finds no record and
    /// does nothing.
    func switchToNextKeySet(_ execution: UUID, project: UUID) async throws {
        try await pool.withTransaction { tx in
            let switched = try await tx.query("""
                UPDATE provisioning.api_key_sets s
                SET publishable_id = r.publishable_id, publishable_prefix = r.publishable_prefix, publishable_sha256 = r.publishable_sha256,
                    secret_id = r.secret_id, secret_prefix = r.secret_prefix, secret_sha256 = r.secret_sha256, created_at = r.created_at
                FROM provisioning.api_key_rotations r
                WHERE r.execution_id = \(execution) AND s.project_id = r.project_id AND r.secret_id IS NOT NULL
                RETURNING s.publishable_id, s.secret_id
                """)
            guard let row = switched.first else { return }
            try await tx.query("DELETE FROM provisioning.api_key_rotations WHERE execution_id = \(execution)")
            let publishable: UUID = try row.decode("publishable_id")
            let secret: UUID = try row.decode("secret_id")
            try await tx.query("""
                SELECT provisioning.enqueue_webhooks(\(project), 'project.keys_rotated', jsonb_build_object(
                    'project_id', \(project)::uuid, 'slug', (SELECT slug FROM provisioning.projects WHERE id = \(project)),
                    'publishable_key_id', \(publishable)::uuid, 'secret_key_id', \(secret)::uuid))
                """)
        }
    }

    private static func set(_ row: PostgresRow) throws -> APIKeySet? {
        guard let publishableID: UUID = try row.decode("publishable_id") else { return nil }
        return APIKeySet(keys: [
            APIKeyHash(id: publishableID, kind: .publishable, prefix: try row.decode("publishable_prefix"), sha256: try row.decode("publishable_sha256")),
            APIKeyHash(id: try row.decode("secret_id"), kind: .secret, prefix: try row.decode("secret_prefix"), sha256: try row.decode("secret_sha256")),
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
