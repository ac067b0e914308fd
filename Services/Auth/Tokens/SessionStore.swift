import Foundation
import Postgres
import ServiceKit

/// Sessions and their rotating refresh tokens (stored as SHA-256 only), for developers and for
/// tenants' end users alike.
struct SessionStore: Sendable {
    /// Whose session it is.
    enum Subject: Sendable, Equatable {
        case developer(UUID)
        case tenantUser(tenant: UUID, user: UUID)

        var developer: UUID? { if case .developer(let id) = self { id } else { nil } }
        var tenant: UUID? { if case .tenantUser(let tenant, _) = self { tenant } else { nil } }
        var user: UUID? { if case .tenantUser(_, let user) = self { user } else { nil } }
    }

    let pool: PostgresPool
    let limits: Limits

    /// When sessions and their refresh tokens end, and how long a used token may be presented
    /// again (`TokenSettings`). Every limit is applied when a token is presented, to the instants
    /// auth's clock recorded, so a changed setting applies to sessions already open.
    struct Limits: Sendable {
        /// A session ends this long after its sign-in, however active (`SESSION_TIMEBOX_SECONDS`).
        var timebox: Duration
        /// A session ends once this long has passed without a refresh
        /// (`SESSION_INACTIVITY_TIMEOUT_SECONDS`).
        var inactivityTimeout: Duration
        /// A refresh token not used this long after it was issued is refused
        /// (`REFRESH_TOKEN_TTL_SECONDS`). Unlike the two above it does not end the session: its
        /// access tokens stay good until they expire, or until the inactivity timeout does.
        var refreshTokenTTL: Duration
        /// A used token presented again this soon after its first use gets the same child
        /// (`REFRESH_REUSE_GRACE_SECONDS`).
        var reuseGrace: Duration

        /// Why a session of this start and last refresh has ended at `now`; nil while it is live.
        func expiry(started: Date, refreshed: Date, at now: Date) -> Expiry? {
            if now >= started + timebox { return .timebox }
            if now >= refreshed + inactivityTimeout { return .inactivity }
            return nil
        }
    }

    /// Why a refresh token was refused for its age.
    enum Expiry: Sendable, Equatable {
        /// Its session is older than the timebox.
        case timebox
        /// Its session went unrefreshed longer than the inactivity timeout.
        case inactivity
        /// The token itself was issued longer ago than the refresh-token lifetime.
        case refreshToken
    }

    enum RefreshOutcome: Sendable {
        /// `started`: when the session began (its sign-in), which every token of it names.
        case rotated(session: UUID, started: Date, subject: Subject, refreshToken: String)
        /// Unknown, revoked, or reused outside the grace window (the family is now revoked).
        case rejected(reused: Bool)
        /// Past one of the `Limits`; the session is left as it is (an ended one stays ended).
        case expired(Expiry)
    }

    /// A new session (every sign-in gets its own) with its first refresh token, begun at `now`
    /// (auth's clock, which the session's limits are measured by).
    func open(_ subject: Subject, at now: Date) async throws -> (session: UUID, refreshToken: String) {
        let session = UUID()
        let token = Self.newToken()
        try await pool.withTransaction { tx in
            try await tx.query("""
                INSERT INTO auth.sessions (id, developer_id, tenant_id, user_id, started_at, refreshed_at)
                VALUES (\(session), \(subject.developer), \(subject.tenant), \(subject.user), \(now), \(now))
                """)
            try await tx.query("""
                INSERT INTO auth.refresh_tokens (session_id, token_sha256, issued_at) VALUES (\(session), \(Self.sha256(token)), \(now))
                """)
        }
        return (session, token)
    }

    /// Uses a refresh token at `now`: marks it used and issues its child. Only tokens of
    /// `tenant`'s sessions (nil: developers') count: another tenant's token is unknown here, and
    /// is left untouched. `now` comes from auth's clock, not the database's, so tests can step
    /// past the limits.
    ///
    /// - A session past its timebox or inactivity timeout, or an unused token past its
    ///   lifetime, is refused (`expired`).
    /// - A token used before is accepted again only inside the grace window after its first use
    ///   (two tabs refreshing at once, or a client that lost the answer), and then answers the
    ///   same child it got the first time, as GoTrue does, so the session stays one chain; past
    ///   the window its whole family (the session) is revoked.
    ///
    /// The same child without keeping it: tokens are stored as SHA-256 only, so the child is
    /// not drawn at random but derived, HMAC-SHA256 keyed by the parent token over a random
    /// `child_salt` kept in the parent's row (`SecureToken.derived`). Presenting the parent
    /// again re-derives the same child. Deriving it takes both halves: the database alone has
    /// no plaintext token, and a client (or a thief) holding the parent has no salt, so it can
    /// get the child only from this method, under the grace window and reuse detection; a
    /// stolen old token cannot be walked forward to the current one.
    func refresh(_ token: String, tenant: UUID?, at now: Date) async throws -> RefreshOutcome {
        try await pool.withTransaction { tx -> RefreshOutcome in
            let rows = try await tx.query("""
                SELECT r.id, r.session_id, r.issued_at, r.used_at, r.child_salt,
                       s.started_at, s.refreshed_at, s.developer_id, s.tenant_id, s.user_id, s.revoked_at IS NOT NULL AS revoked
                FROM auth.refresh_tokens r JOIN auth.sessions s ON s.id = r.session_id
                WHERE r.token_sha256 = \(Self.sha256(token)) AND s.tenant_id IS NOT DISTINCT FROM \(tenant)
                FOR UPDATE OF r, s
                """)
            guard let row = rows.first else { return .rejected(reused: false) }
            let session: UUID = try row.decode("session_id")
            guard try !row.decode("revoked", as: Bool.self) else { return .rejected(reused: false) }
            if let expiry = limits.expiry(started: try row.decode("started_at"), refreshed: try row.decode("refreshed_at"), at: now) {
                return .expired(expiry)
            }
            let id: Int = try row.decode("id")
            let child: String
            if let usedAt: Date = try row.decode("used_at") {
                guard now < usedAt + limits.reuseGrace else {
                    try await tx.query("""
                        UPDATE auth.sessions SET revoked_at = now(), revoked_reason = 'refresh_token_reused' WHERE id = \(session)
                        """)
                    return .rejected(reused: true)
                }
                // Used before 0008 gave tokens a salt: its child cannot be derived again.
                guard let salt: String = try row.decode("child_salt") else { return .rejected(reused: false) }
                child = SecureToken.derived(from: token, salt: salt)
                let issued = try await tx.query("""
                    SELECT 1 FROM auth.refresh_tokens WHERE parent_id = \(id) AND token_sha256 = \(Self.sha256(child))
                    """)
                guard issued.count == 1 else { return .rejected(reused: false) }
            } else {
                let issuedAt: Date = try row.decode("issued_at")
                guard now < issuedAt + limits.refreshTokenTTL else { return .expired(.refreshToken) }
                let salt = SecureToken.random()
                child = SecureToken.derived(from: token, salt: salt)
                try await tx.query("UPDATE auth.refresh_tokens SET used_at = \(now), child_salt = \(salt) WHERE id = \(id)")
                try await tx.query("""
                    INSERT INTO auth.refresh_tokens (session_id, token_sha256, parent_id, issued_at)
                    VALUES (\(session), \(Self.sha256(child)), \(id), \(now))
                    """)
            }
            // Replicas' clocks may differ a little: the last refresh never moves back.
            try await tx.query("UPDATE auth.sessions SET refreshed_at = greatest(refreshed_at, \(now)) WHERE id = \(session)")
            let subject: Subject
            if let developer: UUID = try row.decode("developer_id") {
                subject = .developer(developer)
            } else {
                subject = .tenantUser(tenant: try row.decode("tenant_id"), user: try row.decode("user_id"))
            }
            return .rotated(session: session, started: try row.decode("started_at"), subject: subject, refreshToken: child)
        }
    }

    /// True while the session has not been revoked, nor outlived its timebox or inactivity
    /// timeout at `now` (auth's clock).
    func isLive(_ session: UUID, at now: Date) async throws -> Bool {
        try await pool.query("""
            SELECT 1 FROM auth.sessions
            WHERE id = \(session) AND revoked_at IS NULL
              AND started_at > \(now - limits.timebox) AND refreshed_at > \(now - limits.inactivityTimeout)
            """).count == 1
    }

    /// The developer whose live session (as `isLive` judges it) this is; nil when the session is
    /// unknown, ended, or a tenant user's (provisioning's check of a developer's token).
    func liveDeveloper(of session: UUID, at now: Date) async throws -> UUID? {
        try await pool.query("""
            SELECT developer_id FROM auth.sessions
            WHERE id = \(session) AND revoked_at IS NULL AND developer_id IS NOT NULL
              AND started_at > \(now - limits.timebox) AND refreshed_at > \(now - limits.inactivityTimeout)
            """).first?.decode("developer_id")
    }

    /// How long an ended session stays before `purgeEnded` deletes it (GoTrue's clean-up keeps
    /// them a day too: `internal/models/cleanup.go`): long enough for an operator to look at
    /// what ended and why, and for a late refresh of it to be told it ended.
    static let keptAfterEnd: Duration = .seconds(86_400)

    /// Deletes up to `batch` sessions that ended — revoked, or past their timebox or inactivity
    /// timeout — more than `keptAfterEnd` before `now` (auth's clock), with their refresh
    /// tokens (ON DELETE CASCADE). Rows another transaction holds are skipped, so replicas
    /// purging at once share the work and a refresh in flight is never waited for. Returns how
    /// many went.
    func purgeEnded(at now: Date, batch: Int) async throws -> Int {
        let cutoff = now - Self.keptAfterEnd
        return try await pool.query("""
            WITH ended AS (
                SELECT id FROM auth.sessions
                WHERE revoked_at < \(cutoff) OR started_at < \(cutoff - limits.timebox) OR refreshed_at < \(cutoff - limits.inactivityTimeout)
                LIMIT \(batch) FOR UPDATE SKIP LOCKED
            )
            DELETE FROM auth.sessions s USING ended WHERE s.id = ended.id RETURNING s.id
            """).count
    }

    /// Which sessions a logout ends, seen from the session that asks.
    enum LogoutScope: String, Sendable {
        /// This session only.
        case local
        /// Every session of its subject.
        case global
        /// Every session of its subject but this one.
        case others
    }

    /// Ends the sessions `scope` names, relative to `session`.
    func revoke(session: UUID, scope: LogoutScope) async throws {
        switch scope {
        case .local:
            try await pool.query("UPDATE auth.sessions SET revoked_at = now(), revoked_reason = 'logout' WHERE id = \(session) AND revoked_at IS NULL")
        case .global, .others:
            try await pool.query("""
                UPDATE auth.sessions s SET revoked_at = now(), revoked_reason = \("logout_" + scope.rawValue)
                FROM auth.sessions this
                WHERE this.id = \(session) AND s.revoked_at IS NULL
                  AND (s.developer_id = this.developer_id OR (s.tenant_id = this.tenant_id AND s.user_id = this.user_id))
                  AND (\(scope == .global) OR s.id <> this.id)
                """)
        }
    }

    /// Ends every live session of a tenant's user (deleted, banned, or a new password), inside
    /// the caller's transaction when one is given.
    static func revokeAll(tenant: UUID, user: UUID, except keep: UUID?, reason: String, on connection: PostgresConnection) async throws {
        try await connection.query("""
            UPDATE auth.sessions SET revoked_at = now(), revoked_reason = \(reason)
            WHERE tenant_id = \(tenant) AND user_id = \(user) AND revoked_at IS NULL AND id IS DISTINCT FROM \(keep)
            """)
    }

    static func newToken() -> String { SecureToken.random() }

    static func sha256(_ token: String) -> String { SecureToken.sha256Hex(token) }
}

extension Date {
    /// This instant moved by a (whole-second) setting.
    fileprivate static func + (date: Date, duration: Duration) -> Date {
        date.addingTimeInterval(Double(duration.components.seconds))
    }

    fileprivate static func - (date: Date, duration: Duration) -> Date {
        date.addingTimeInterval(-Double(duration.components.seconds))
    }
}
