import Foundation

// MARK: - API-key checks (realtime, storage → auth)
//
// `GET /internal/v1/api-keys/{sha256}` (service token) answers 200 with the `APIKeyIdentity` of
// the active key whose SHA-256 (64 lowercase hex digits) that is, or 404 `not_found` when no
// active key has it (unknown or revoked). Callers send the hash, never the key, and cache the
// answer (either way) for a bounded time.

/// Whose an active API key is.
public struct APIKeyIdentity: Codable, Sendable, Equatable {
    public var keyId: UUID
    public var tenantId: UUID
    public var slug: String
    public var kind: APIKeyHash.Kind

    public init(keyId: UUID, tenantId: UUID, slug: String, kind: APIKeyHash.Kind) {
        self.keyId = keyId
        self.tenantId = tenantId
        self.slug = slug
        self.kind = kind
    }

    enum CodingKeys: String, CodingKey {
        case slug, kind
        case keyId = "key_id"
        case tenantId = "tenant_id"
    }
}

// MARK: - Tenant end users (clients → auth, `/v1/tenants/{slug}/…`)

/// `POST /v1/tenants/{slug}/signup` body (publishable or secret key).
public struct TenantSignup: Codable, Sendable, Equatable {
    public var email: String
    public var password: String
    public var metadata: JSONValue?

    public init(email: String, password: String, metadata: JSONValue? = nil) {
        self.email = email
        self.password = password
        self.metadata = metadata
    }
}

/// A tenant's end user, as every user route shows them (never the password hash).
public struct TenantUser: Codable, Sendable, Equatable {
    public var id: UUID
    public var email: String
    public var role: String
    public var metadata: JSONValue
    /// What the project's admin set about the user (GoTrue's `app_metadata`); the user cannot
    /// change it.
    public var appMetadata: JSONValue
    public var createdAt: Date
    public var updatedAt: Date
    public var lastSignInAt: Date?
    public var bannedUntil: Date?

    public init(id: UUID, email: String, role: String, metadata: JSONValue, appMetadata: JSONValue = .emptyObject,
                createdAt: Date, updatedAt: Date, lastSignInAt: Date?, bannedUntil: Date?) {
        self.id = id
        self.email = email
        self.role = role
        self.metadata = metadata
        self.appMetadata = appMetadata
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.lastSignInAt = lastSignInAt
        self.bannedUntil = bannedUntil
    }

    enum CodingKeys: String, CodingKey {
        case id, email, role, metadata
        case appMetadata = "app_metadata"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case lastSignInAt = "last_sign_in_at"
        case bannedUntil = "banned_until"
    }
}

/// A tenant user's tokens (`signup`, `token`).
public typealias TenantTokenResponse = SessionTokens<TenantUser>

/// `PUT /v1/tenants/{slug}/user` body: what the signed-in user may change about themselves.
/// Absent fields stay as they are; `metadata` replaces the whole object.
public struct TenantUserUpdate: Codable, Sendable, Equatable {
    public var email: String?
    public var password: String?
    public var metadata: JSONValue?

    public init(email: String? = nil, password: String? = nil, metadata: JSONValue? = nil) {
        self.email = email
        self.password = password
        self.metadata = metadata
    }
}

/// `POST /v1/tenants/{slug}/admin/users` body (secret key). A user created without a password
/// cannot sign in until one is set.
public struct AdminUserCreate: Codable, Sendable, Equatable {
    public var email: String
    public var password: String?
    public var role: String?
    public var metadata: JSONValue?

    public init(email: String, password: String? = nil, role: String? = nil, metadata: JSONValue? = nil) {
        self.email = email
        self.password = password
        self.role = role
        self.metadata = metadata
    }
}

/// `PUT /v1/tenants/{slug}/admin/users/{id}` body (secret key). Absent fields stay as they are.
/// `ban_seconds` bans the user for that long from now (ending their sessions); 0 lifts a ban.
public struct AdminUserUpdate: Codable, Sendable, Equatable {
    public var email: String?
    public var password: String?
    public var role: String?
    public var metadata: JSONValue?
    public var banSeconds: Int?

    public init(email: String? = nil, password: String? = nil, role: String? = nil, metadata: JSONValue? = nil, banSeconds: Int? = nil) {
        self.email = email
        self.password = password
        self.role = role
        self.metadata = metadata
        self.banSeconds = banSeconds
    }

    enum CodingKeys: String, CodingKey {
        case email, password, role, metadata
        case banSeconds = "ban_seconds"
    }
}

/// `GET /v1/tenants/{slug}/admin/users`: one page of users, oldest first.
///
/// - By page number (`page=&per_page=`): `page` and `total` are set. `total` is exact up to
///   `TenantUserPage.exactTotalLimit` users; beyond that it is the database's estimate and
///   `total_estimated` is true, so no page counts a large table in full.
/// - By keyset (`cursor=&per_page=`, `cursor` empty for the first page): no `page`, no `total`;
///   nothing is counted and no row is skipped over.
///
/// Either way `next_cursor` (when more users follow) continues after the last user of this page.
public struct TenantUserPage: Codable, Sendable, Equatable {
    public var users: [TenantUser]
    public var page: Int?
    public var perPage: Int
    public var total: Int?
    public var totalEstimated: Bool?
    public var nextCursor: String?

    /// Up to this many users, `total` is an exact count; past it, an estimate.
    public static let exactTotalLimit = 10_000

    public init(users: [TenantUser], page: Int?, perPage: Int, total: Int?, totalEstimated: Bool? = nil, nextCursor: String? = nil) {
        self.users = users
        self.page = page
        self.perPage = perPage
        self.total = total
        self.totalEstimated = totalEstimated
        self.nextCursor = nextCursor
    }

    enum CodingKeys: String, CodingKey {
        case users, page, total
        case perPage = "per_page"
        case totalEstimated = "total_estimated"
        case nextCursor = "next_cursor"
    }
}

/// One row of a tenant's hash-chained audit log.
public struct AuditEntry: Codable, Sendable, Equatable {
    public var id: Int
    public var seq: Int
    public var occurredAt: Date
    public var actor: String
    public var action: String
    public var target: String?
    public var details: JSONValue
    public var prevHash: String
    public var hash: String

    public init(id: Int, seq: Int, occurredAt: Date, actor: String, action: String, target: String?, details: JSONValue,
                prevHash: String, hash: String) {
        self.id = id
        self.seq = seq
        self.occurredAt = occurredAt
        self.actor = actor
        self.action = action
        self.target = target
        self.details = details
        self.prevHash = prevHash
        self.hash = hash
    }

    enum CodingKeys: String, CodingKey {
        case id, seq, actor, action, target, details, hash
        case occurredAt = "occurred_at"
        case prevHash = "prev_hash"
    }
}

/// `GET /v1/tenants/{slug}/admin/audit?after_seq=&limit=`: entries in chain order;
/// `next_after_seq` is set when more follow.
public struct AuditPage: Codable, Sendable, Equatable {
    public var entries: [AuditEntry]
    public var nextAfterSeq: Int?

    public init(entries: [AuditEntry], nextAfterSeq: Int?) {
        self.entries = entries
        self.nextAfterSeq = nextAfterSeq
    }

    enum CodingKeys: String, CodingKey {
        case entries
        case nextAfterSeq = "next_after_seq"
    }
}

/// `GET /v1/tenants/{slug}/admin/audit/verify[?full=true]`: whether the chain holds, and if
/// not the id of the first row (in chain order) found broken and why.
///
/// By default a verification goes on from where the last one ended (auth's checkpoint: that
/// row must still hold the hash it had), so `checked` counts only the rows added since; `full`
/// walks the whole chain again, which also finds a row changed in place before the checkpoint.
public struct AuditVerification: Codable, Sendable, Equatable {
    public var valid: Bool
    /// Rows in the chain (the last row's `seq`).
    public var entries: Int
    public var firstBrokenId: Int?
    /// Rows read and hashed by this verification.
    public var checked: Int
    /// Why the chain does not hold (nil when it does): `chain_broken` (a row's hash or link is
    /// wrong), `rows_missing` (a gap, or rows gone that auth appended or verified),
    /// `checkpoint_mismatch` (a row no longer holds the hash auth recorded for it: the chain was
    /// rewritten and recomputed), `diverged` (an entry auth appended did not follow the one it
    /// appended before), `unreadable` (the audit log cannot be read as auth wrote it).
    public var reason: String?

    public init(valid: Bool, entries: Int, firstBrokenId: Int?, checked: Int, reason: String? = nil) {
        self.valid = valid
        self.entries = entries
        self.firstBrokenId = firstBrokenId
        self.checked = checked
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case valid, entries, checked, reason
        case firstBrokenId = "first_broken_id"
    }
}
