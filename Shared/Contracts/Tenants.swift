import Foundation

// MARK: - Tenant registration (provisioning → auth, realtime, storage)
//
// `PUT /internal/v1/tenants/{id}` with a `TenantRegistration` registers (or updates) a tenant in
// the callee's own schema: 201 and the record when it was created, 200 when it already existed
// (same or updated settings). `GET` answers 200 with the record or 404; `DELETE` answers 204,
// and 404 `not_found` when it was already gone (callers treat that as done).

/// What provisioning tells a service about a tenant.
public struct TenantRegistration: Codable, Sendable, Equatable {
    /// The project's slug (`^[a-z][a-z0-9_]{2,39}$`).
    public var slug: String
    /// The tenant's PostgreSQL schema, `tenant_<slug>`.
    public var schema: String
    /// The tenant's PostgreSQL role (owns the schema; can use nothing else).
    public var role: String

    public init(slug: String, schema: String, role: String) {
        self.slug = slug
        self.schema = schema
        self.role = role
    }
}

/// A tenant as a service has stored it.
public struct RegisteredTenant: Codable, Sendable, Equatable {
    public var id: UUID
    public var slug: String
    public var schema: String
    public var role: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: UUID, slug: String, schema: String, role: String, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.slug = slug
        self.schema = schema
        self.role = role
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, slug, schema, role
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

// MARK: - API keys (provisioning → auth)
//
// `PUT /internal/v1/tenants/{id}/api-keys` with an `APIKeySet` stores the tenant's keys, as
// hashes only: 201 when stored, 200 when this exact set is already stored (a re-run), 409
// `keys_exist` when a different set is active (keys are never silently replaced).
// `DELETE` revokes every key of the tenant: 204 (also when there were none).

/// One key, as auth stores it: never the key itself.
public struct APIKeyHash: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case publishable
        case secret
    }

    public var id: UUID
    public var kind: Kind
    /// The key's first characters (`pk_…`/`sk_…` plus a few), to recognise it in lists.
    public var prefix: String
    /// Hex SHA-256 of the whole key.
    public var sha256: String

    public init(id: UUID, kind: Kind, prefix: String, sha256: String) {
        self.id = id
        self.kind = kind
        self.prefix = prefix
        self.sha256 = sha256
    }
}

public struct APIKeySet: Codable, Sendable, Equatable {
    public var keys: [APIKeyHash]

    public init(keys: [APIKeyHash]) {
        self.keys = keys
    }
}

// MARK: - Limits and signing keys (clients → realtime, storage; operators → auth)

/// `GET /v1/tenants/{slug}/limits` on realtime and storage: the limits the service keeps for
/// the project (realtime's `max_concurrent_users`, `max_events_per_second`,
/// `max_channels_per_client`, `max_joins_per_second`; storage's `quota_bytes`).
public struct TenantLimits: Codable, Sendable, Equatable {
    public var slug: String
    public var limits: [String: Int]

    public init(slug: String, limits: [String: Int]) {
        self.slug = slug
        self.limits = limits
    }
}

/// `201` answer of auth's `POST /internal/v1/signing-keys/rotate` and
/// `POST /internal/v1/tenants/{id}/signing-keys/rotate`: the new signing key's id.
public struct RotatedSigningKey: Codable, Sendable, Equatable {
    public var kid: String

    public init(kid: String) {
        self.kid = kid
    }
}

/// Realtime's `GET /v1/tenants/{slug}/realtime/tables` (and the answer of `PUT …/{table}`): the
/// project's tables whose row changes realtime delivers (`postgres_changes`).
public struct RealtimeTables: Codable, Sendable, Equatable {
    public var slug: String
    public var tables: [String]

    public init(slug: String, tables: [String]) {
        self.slug = slug
        self.tables = tables
    }
}

/// `POST /internal/v1/tenants/{id}/api-keys/revoke` on auth: the keys (by id) a rotation retires.
public struct RevokeAPIKeysRequest: Codable, Sendable, Equatable {
    public var keyIds: [UUID]

    public init(keyIds: [UUID]) {
        self.keyIds = keyIds
    }

    enum CodingKeys: String, CodingKey {
        case keyIds = "key_ids"
    }
}
