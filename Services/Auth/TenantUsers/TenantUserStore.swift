import Contracts
import Foundation
import Postgres

/// A tenant's end users, in the tenant's own schema (`tenant_<slug>.users`). The tables belong
/// to the tenant's role, which grants the platform's login role exactly the privileges used
/// here (tenant migration `0002_platform_access`); auth is a member of no tenant role, so its
/// privilege checks cost the same at 5 tenants and at 5,000 (docs/measurements/
/// tenant-ddl-roles.md). Every change appends to the tenant's hash-chained `audit_log` in the
/// same transaction: no change without its audit row, no audit row without its change.
struct TenantUserStore: Sendable {
    let pool: PostgresPool

    /// Another user of this tenant has the email.
    struct EmailTaken: Error {}

    /// One audit row: who did what to whom; `details` never holds a secret.
    struct Audit: Sendable {
        var actor: String
        var action: String
        var details: [String: JSONValue] = [:]
    }

    /// A change to a user; nil fields stay as they are.
    struct Changes: Sendable {
        var email: String?
        var passwordHash: String?
        var role: String?
        /// Replaces the user's metadata.
        var metadata: JSONValue?
        /// Merged into the user's metadata, key by key, as GoTrue does: a key set to `null`
        /// removes it, the others replace or add theirs.
        var metadataPatch: JSONValue?
        /// Merged into `app_metadata` the same way.
        var appMetadataPatch: JSONValue?
        /// `.some(nil)` lifts a ban.
        var bannedUntil: Date??

        var fieldNames: [String] {
            [email.map { _ in "email" }, passwordHash.map { _ in "password" }, role.map { _ in "role" },
             (metadata ?? metadataPatch).map { _ in "metadata" }, appMetadataPatch.map { _ in "app_metadata" },
             bannedUntil.map { _ in "banned_until" }].compactMap { $0 }
        }
        var isEmpty: Bool { fieldNames.isEmpty }
    }

    struct Credentials: Sendable {
        var user: TenantUser
        var passwordHash: String?
    }

    private static let columns = "id, email, role, metadata, app_metadata, created_at, updated_at, last_sign_in_at, banned_until"

    // MARK: Writes

    /// Inserts a user (signup, or an admin's create); `signedIn`: a signup that signs in at once
    /// stamps `last_sign_in_at`.
    func insert(_ tenant: RegisteredTenant, email: String, passwordHash: String?, role: String, metadata: JSONValue,
                appMetadata: JSONValue = .emptyObject, bannedUntil: Date? = nil, signedIn: Bool = false,
                audit: @escaping @Sendable (TenantUser) -> Audit) async throws -> TenantUser {
        do {
            return try await pool.withTransaction { tx in
                let user = try Self.user(try await tx.query("""
                    INSERT INTO \(identifier: tenant.schema).users
                        (email, email_normalized, password_hash, role, metadata, app_metadata, banned_until, last_sign_in_at)
                    VALUES (\(email), \(Self.normalized(email)), \(passwordHash), \(role), \(PostgresJSON(metadata)),
                            \(PostgresJSON(appMetadata)), \(bannedUntil), CASE WHEN \(signedIn) THEN now() END)
                    RETURNING \(unescaped: Self.columns)
                    """).single())
                try await Self.append(audit(user), target: user.id, schema: tenant.schema, on: tx)
                return user
            }
        } catch let error as PostgresError where error.kind == .uniqueViolation {
            throw EmailTaken()
        }
    }

    /// Applies `changes` to the user; nil when there is no such user. Ends the user's sessions
    /// (all but `keepSession`) when the password changes or a ban starts.
    func update(_ tenant: RegisteredTenant, id: UUID, _ changes: Changes, keepSession: UUID? = nil,
                audit: Audit) async throws -> TenantUser? {
        do {
            return try await pool.withTransaction { tx in
                var bannedUntil: Date?
                let banned = changes.bannedUntil.map { value in bannedUntil = value; return true } ?? false
                guard let row = try await tx.query("""
                    UPDATE \(identifier: tenant.schema).users SET
                        email = coalesce(\(changes.email), email),
                        email_normalized = coalesce(\(changes.email.map(Self.normalized)), email_normalized),
                        password_hash = coalesce(\(changes.passwordHash), password_hash),
                        role = coalesce(\(changes.role), role),
                        metadata = coalesce(\(changes.metadata.map(PostgresJSON.init)),
                                            (metadata || \(changes.metadataPatch.map(PostgresJSON.init)))
                                            - ARRAY(SELECT key FROM jsonb_each(\(changes.metadataPatch.map(PostgresJSON.init)))
                                                    WHERE value = 'null'::jsonb),
                                            metadata),
                        app_metadata = coalesce((app_metadata || \(changes.appMetadataPatch.map(PostgresJSON.init)))
                                                - ARRAY(SELECT key FROM jsonb_each(\(changes.appMetadataPatch.map(PostgresJSON.init)))
                                                        WHERE value = 'null'::jsonb),
                                                app_metadata),
                        banned_until = CASE WHEN \(banned) THEN \(bannedUntil) ELSE banned_until END,
                        updated_at = now()
                    WHERE id = \(id)
                    RETURNING \(unescaped: Self.columns)
                    """).first else { return nil }
                let user = try Self.user(row)
                // A merge can grow the metadata past its limit; throwing rolls the change back.
                if changes.metadataPatch != nil { _ = try TenantUserRules.validMetadata(user.metadata) }
                if changes.appMetadataPatch != nil { _ = try TenantUserRules.validMetadata(user.appMetadata, field: "app_metadata") }
                var entry = audit
                entry.details["fields"] = .array(changes.fieldNames.map(JSONValue.string))
                try await Self.append(entry, target: id, schema: tenant.schema, on: tx)
                // A ban is always set in the future (now + ban_seconds); nil lifts it.
                let banStarts = bannedUntil != nil
                if changes.passwordHash != nil || banStarts {
                    try await SessionStore.revokeAll(tenant: tenant.id, user: id, except: keepSession,
                                                     reason: banStarts ? "banned" : "password_changed", on: tx)
                }
                return user
            }
        } catch let error as PostgresError where error.kind == .uniqueViolation {
            throw EmailTaken()
        }
    }

    /// Deletes the user and ends their sessions; false when there was no such user.
    func delete(_ tenant: RegisteredTenant, id: UUID, audit: Audit) async throws -> Bool {
        try await pool.withTransaction { tx in
            let deleted = try await tx.query("DELETE FROM \(identifier: tenant.schema).users WHERE id = \(id) RETURNING id")
            guard !deleted.isEmpty else { return false }
            try await Self.append(audit, target: id, schema: tenant.schema, on: tx)
            try await SessionStore.revokeAll(tenant: tenant.id, user: id, except: nil, reason: "user_deleted", on: tx)
            return true
        }
    }

    /// Stamps a successful sign-in.
    func recordSignIn(_ tenant: RegisteredTenant, id: UUID, audit: Audit) async throws -> TenantUser? {
        try await pool.withTransaction { tx in
            guard let row = try await tx.query("""
                UPDATE \(identifier: tenant.schema).users SET last_sign_in_at = now() WHERE id = \(id)
                RETURNING \(unescaped: Self.columns)
                """).first else { return nil }
            try await Self.append(audit, target: id, schema: tenant.schema, on: tx)
            return try Self.user(row)
        }
    }

    /// An audit row on its own (a sign-out).
    func record(_ tenant: RegisteredTenant, target: UUID, audit: Audit) async throws {
        try await pool.withTransaction { tx in try await Self.append(audit, target: target, schema: tenant.schema, on: tx) }
    }

    // MARK: Reads

    func user(_ tenant: RegisteredTenant, id: UUID) async throws -> TenantUser? {
        try await pool.withTransaction { tx in
            try await tx.query("SELECT \(unescaped: Self.columns) FROM \(identifier: tenant.schema).users WHERE id = \(id)")
                .first.map(Self.user)
        }
    }

    /// The user's password hash (nil: none set, or no such user): to refuse a new password that
    /// is the current one.
    func passwordHash(_ tenant: RegisteredTenant, id: UUID) async throws -> String? {
        try await pool.withTransaction { tx in
            try await tx.query("SELECT password_hash FROM \(identifier: tenant.schema).users WHERE id = \(id)").first?.decode("password_hash")
        }
    }

    /// The user with this email and their password hash, for a sign-in.
    func credentials(_ tenant: RegisteredTenant, email: String) async throws -> Credentials? {
        try await pool.withTransaction { tx in
            try await tx.query("""
                SELECT \(unescaped: Self.columns), password_hash FROM \(identifier: tenant.schema).users
                WHERE email_normalized = \(Self.normalized(email))
                """).first.map { Credentials(user: try Self.user($0), passwordHash: try $0.decode("password_hash")) }
        }
    }

    /// One page of users, oldest first (newest first for GoTrue's admin list), and how many
    /// there are. Both orders walk the `(created_at, id)` index.
    func list(_ tenant: RegisteredTenant, page: Int, perPage: Int, newestFirst: Bool = false) async throws -> (users: [TenantUser], total: Int) {
        try await pool.withTransaction { tx in
            let users = try await tx.query("""
                SELECT \(unescaped: Self.columns) FROM \(identifier: tenant.schema).users
                ORDER BY \(unescaped: newestFirst ? "created_at DESC, id DESC" : "created_at, id")
                LIMIT \(perPage) OFFSET \((page - 1) * perPage)
                """).map(Self.user)
            let total: Int = try await tx.query("SELECT count(*)::int8 AS n FROM \(identifier: tenant.schema).users").single().decode("n")
            return (users, total)
        }
    }

    /// Audit rows in chain order after `afterSeq`.
    func audit(_ tenant: RegisteredTenant, afterSeq: Int, limit: Int) async throws -> [AuditEntry] {
        try await pool.withTransaction { tx in
            try await tx.query("""
                SELECT id, seq, occurred_at, actor, action, target, details, prev_hash, hash
                FROM \(identifier: tenant.schema).audit_log WHERE seq > \(afterSeq) ORDER BY seq LIMIT \(limit)
                """).map { row in
                AuditEntry(id: try row.decode("id"), seq: try row.decode("seq"), occurredAt: try row.decode("occurred_at"),
                           actor: try row.decode("actor"), action: try row.decode("action"), target: try row.decode("target"),
                           details: try row.decode("details", as: PostgresJSON<JSONValue>.self).value,
                           prevHash: try row.decode("prev_hash"), hash: try row.decode("hash"))
            }
        }
    }

    /// Walks the chain (`audit_log_verify()`): the first row whose link is broken, if any.
    func verifyAudit(_ tenant: RegisteredTenant) async throws -> AuditVerification {
        try await pool.withTransaction { tx in
            let row = try await tx.query("""
                SELECT \(identifier: tenant.schema).audit_log_verify() AS broken,
                       (SELECT count(*)::int8 FROM \(identifier: tenant.schema).audit_log) AS entries
                """).single()
            let broken: Int? = try row.decode("broken")
            return AuditVerification(valid: broken == nil, entries: try row.decode("entries"), firstBrokenId: broken)
        }
    }

    // MARK: Helpers

    private static func append(_ audit: Audit, target: UUID, schema: String, on tx: PostgresConnection) async throws {
        try await tx.query("""
            INSERT INTO \(identifier: schema).audit_log (actor, action, target, details)
            VALUES (\(audit.actor), \(audit.action), \(target.uuidString.lowercased()), \(PostgresJSON(JSONValue.object(audit.details))))
            """)
    }

    static func normalized(_ email: String) -> String {
        email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    private static func user(_ row: PostgresRow) throws -> TenantUser {
        TenantUser(id: try row.decode("id"), email: try row.decode("email"), role: try row.decode("role"),
                   metadata: try row.decode("metadata", as: PostgresJSON<JSONValue>.self).value,
                   appMetadata: try row.decode("app_metadata", as: PostgresJSON<JSONValue>.self).value,
                   createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"),
                   lastSignInAt: try row.decode("last_sign_in_at"), bannedUntil: try row.decode("banned_until"))
    }
}
