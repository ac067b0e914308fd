import Contracts
import Foundation
import Postgres
import ServiceKit

/// A tenant's end users, in the tenant's own schema (`tenant_<slug>.users`). The tables belong
/// to the tenant's role, which grants the platform's login role exactly the privileges used
/// here (tenant migration `0002_platform_access`); auth is a member of no tenant role, so its
/// privilege checks cost the same at 5 tenants and at 5,000 (docs/measurements/
/// tenant-ddl-roles.md). Every change appends to the tenant's hash-chained `audit_log` in the
/// same transaction: no change without its audit row, no audit row without its change.
///
/// Every query runs under the tenant's concurrency budget (`TenantConcurrency`): the pool is
/// shared by every tenant, so one tenant's flood of expensive reads is answered 429 once it
/// holds its share of connections, instead of making every tenant wait for the pool.
struct TenantUserStore: Sendable {
    let pool: PostgresPool
    let budget: TenantConcurrency

    /// The tenant's audit log and auth's witness of it.
    var auditLog: TenantAuditLog { TenantAuditLog(pool: pool, budget: budget) }

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
            return try await transaction(tenant) { tx in
                let user = try Self.user(try await tx.query("""
                    INSERT INTO \(identifier: tenant.schema).users
                        (email, email_normalized, password_hash, role, metadata, app_metadata, banned_until, last_sign_in_at)
                    VALUES (\(email), \(Self.normalized(email)), \(passwordHash), \(role), \(PostgresJSON(metadata)),
                            \(PostgresJSON(appMetadata)), \(bannedUntil), CASE WHEN \(signedIn) THEN now() END)
                    RETURNING \(unescaped: Self.columns)
                    """).single())
                try await TenantAuditLog.append(audit(user), target: user.id, tenant: tenant, on: tx)
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
            return try await transaction(tenant) { tx in
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
                try await TenantAuditLog.append(entry, target: id, tenant: tenant, on: tx)
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
        try await transaction(tenant) { tx in
            let deleted = try await tx.query("DELETE FROM \(identifier: tenant.schema).users WHERE id = \(id) RETURNING id")
            guard !deleted.isEmpty else { return false }
            try await TenantAuditLog.append(audit, target: id, tenant: tenant, on: tx)
            try await SessionStore.revokeAll(tenant: tenant.id, user: id, except: nil, reason: "user_deleted", on: tx)
            return true
        }
    }

    /// Stamps a successful sign-in.
    func recordSignIn(_ tenant: RegisteredTenant, id: UUID, audit: Audit) async throws -> TenantUser? {
        try await transaction(tenant) { tx in
            guard let row = try await tx.query("""
                UPDATE \(identifier: tenant.schema).users SET last_sign_in_at = now() WHERE id = \(id)
                RETURNING \(unescaped: Self.columns)
                """).first else { return nil }
            try await TenantAuditLog.append(audit, target: id, tenant: tenant, on: tx)
            return try Self.user(row)
        }
    }

    /// An audit row on its own (a sign-out).
    func record(_ tenant: RegisteredTenant, target: UUID, audit: Audit) async throws {
        try await transaction(tenant) { tx in try await TenantAuditLog.append(audit, target: target, tenant: tenant, on: tx) }
    }

    // MARK: Reads

    func user(_ tenant: RegisteredTenant, id: UUID) async throws -> TenantUser? {
        try await transaction(tenant) { tx in
            try await tx.query("SELECT \(unescaped: Self.columns) FROM \(identifier: tenant.schema).users WHERE id = \(id)")
                .first.map(Self.user)
        }
    }

    /// The user's password hash (nil: none set, or no such user): to refuse a new password that
    /// is the current one.
    func passwordHash(_ tenant: RegisteredTenant, id: UUID) async throws -> String? {
        try await transaction(tenant) { tx in
            try await tx.query("SELECT password_hash FROM \(identifier: tenant.schema).users WHERE id = \(id)").first?.decode("password_hash")
        }
    }

    /// The user with this email and their password hash, for a sign-in.
    func credentials(_ tenant: RegisteredTenant, email: String) async throws -> Credentials? {
        try await transaction(tenant) { tx in
            try await tx.query("""
                SELECT \(unescaped: Self.columns), password_hash FROM \(identifier: tenant.schema).users
                WHERE email_normalized = \(Self.normalized(email))
                """).first.map { Credentials(user: try Self.user($0), passwordHash: try $0.decode("password_hash")) }
        }
    }

    /// One page of users by page number, oldest first (newest first for GoTrue's admin list):
    /// `OFFSET`, for clients that ask for page N. Both orders walk the `(created_at, id)` index.
    /// A client that pages through (`next_cursor`) uses `list(after:)`, which skips nothing.
    func list(_ tenant: RegisteredTenant, page: Int, perPage: Int, newestFirst: Bool = false) async throws -> UserList {
        try await transaction(tenant) { tx in
            try Self.userList(try await tx.query("""
                SELECT \(unescaped: Self.listColumns) FROM \(identifier: tenant.schema).users
                ORDER BY \(unescaped: newestFirst ? "created_at DESC, id DESC" : "created_at, id")
                LIMIT \(perPage + 1) OFFSET \((page - 1) * perPage)
                """), limit: perPage)
        }
    }

    /// One page of users after `cursor` (nil: the first page) in the same orders, by keyset:
    /// the index is entered at the cursor, so page 1,000 costs what page 1 does.
    func list(_ tenant: RegisteredTenant, after cursor: UserCursor?, limit: Int, newestFirst: Bool = false) async throws -> UserList {
        try await transaction(tenant) { tx in
            let rows: PostgresResult
            switch (cursor, newestFirst) {
            case (nil, _):
                rows = try await tx.query("""
                    SELECT \(unescaped: Self.listColumns) FROM \(identifier: tenant.schema).users
                    ORDER BY \(unescaped: newestFirst ? "created_at DESC, id DESC" : "created_at, id") LIMIT \(limit + 1)
                    """)
            case (let cursor?, true):
                rows = try await tx.query("""
                    SELECT \(unescaped: Self.listColumns) FROM \(identifier: tenant.schema).users
                    WHERE (created_at, id) < (\(cursor.createdAt)::timestamptz, \(cursor.id))
                    ORDER BY created_at DESC, id DESC LIMIT \(limit + 1)
                    """)
            case (let cursor?, false):
                rows = try await tx.query("""
                    SELECT \(unescaped: Self.listColumns) FROM \(identifier: tenant.schema).users
                    WHERE (created_at, id) > (\(cursor.createdAt)::timestamptz, \(cursor.id))
                    ORDER BY created_at, id LIMIT \(limit + 1)
                    """)
            }
            return try Self.userList(rows, limit: limit)
        }
    }

    /// How many users the tenant has: exact up to `TenantUserPage.exactTotalLimit` (counting
    /// stops there, so the cost is bounded), past it the planner's estimate (`pg_class.reltuples`,
    /// as of the table's last ANALYZE, never less than what was counted).
    func count(_ tenant: RegisteredTenant) async throws -> (count: Int, estimated: Bool) {
        try await transaction(tenant) { tx in
            let cap = TenantUserPage.exactTotalLimit
            let counted: Int = try await tx.query("""
                SELECT count(*)::int8 AS n FROM (SELECT 1 FROM \(identifier: tenant.schema).users LIMIT \(cap + 1)) AS bounded
                """).single().decode("n")
            guard counted > cap else { return (counted, false) }
            let estimate: Int = try await tx.query("""
                SELECT greatest(c.reltuples, 0)::int8 AS n FROM pg_catalog.pg_class c
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = \(tenant.schema) AND c.relname = 'users'
                """).first?.decode("n") ?? 0
            return (max(estimate, counted), true)
        }
    }

    /// A page of users, and where the next one starts (nil: this was the last).
    struct UserList: Sendable {
        var users: [TenantUser]
        var next: UserCursor?
    }

    // MARK: Helpers

    /// Runs `body` in a transaction, under one of the tenant's concurrency permits.
    private func transaction<Result: Sendable>(_ tenant: RegisteredTenant,
                                               _ body: (PostgresConnection) async throws -> sending Result) async throws -> Result {
        try await budget.withPermit(tenant.id) {
            try await pool.withTransaction(body)
        }
    }

    /// The user columns and the keyset position of each row, `created_at` in full microseconds.
    private static let listColumns = columns + #", pg_catalog.to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_created_at"#

    /// Reads `limit + 1` rows: the extra one only says that another page follows.
    private static func userList(_ rows: PostgresResult, limit: Int) throws -> UserList {
        var users: [TenantUser] = []
        var last: UserCursor?
        var more = false
        for row in rows {
            guard users.count < limit else { more = true; break }
            let user = try Self.user(row)
            users.append(user)
            last = UserCursor(createdAt: try row.decode("cursor_created_at"), id: user.id)
        }
        return UserList(users: users, next: more ? last : nil)
    }

    // MARK: Helpers

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
