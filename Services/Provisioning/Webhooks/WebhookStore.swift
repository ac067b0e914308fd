import Contracts
import Foundation
import Postgres
import ServiceKit

/// Webhook endpoints and their deliveries (`provisioning.webhook_endpoints`,
/// `webhook_deliveries`, migration 8): what the API reads and writes, and what the dispatcher
/// claims and records. The deliveries themselves are written by migration 8's trigger, in the
/// transaction of the project's change.
struct WebhookStore: Sendable {
    let pool: PostgresPool
    /// Woken when deliveries are written (every instance).
    static let channel = "provisioning_webhooks"
    /// Endpoints one developer may have.
    static let endpointsPerOwner = 20

    // MARK: Endpoints

    func create(owner: UUID, url: String, events: [WebhookEvent], secret: String) async throws -> WebhookEndpoint {
        try await pool.withTransaction { tx in
            try await tx.query("SELECT pg_advisory_xact_lock(hashtextextended(\("provisioning.webhooks.owner." + owner.uuidString), 0))")
            let count = try await tx.query("SELECT count(*)::int8 AS n FROM provisioning.webhook_endpoints WHERE owner_id = \(owner)")
                .single().decode("n", as: Int.self)
            guard count < Self.endpointsPerOwner else {
                throw APIError(.forbidden, code: "webhook_limit_reached",
                               message: "A developer may have at most \(Self.endpointsPerOwner) webhook endpoints; delete one first.")
            }
            let row = try await tx.query("""
                INSERT INTO provisioning.webhook_endpoints (id, owner_id, url, secret, events)
                VALUES (\(UUID()), \(owner), \(url), \(secret), \(events.map(\.rawValue))::text[])
                RETURNING \(unescaped: Self.endpointColumns)
                """).single()
            var endpoint = try Self.endpoint(row)
            endpoint.secret = secret
            return endpoint
        }
    }

    /// `owner`'s endpoints (nil: everyone's), oldest first.
    func list(owner: UUID?) async throws -> [WebhookEndpoint] {
        try await pool.query("""
            SELECT \(unescaped: Self.endpointColumns) FROM provisioning.webhook_endpoints
            WHERE (\(owner)::uuid IS NULL OR owner_id = \(owner)) ORDER BY created_at, id
            """).map(Self.endpoint)
    }

    /// False when there is no such endpoint of `owner`'s.
    func delete(_ id: UUID, owner: UUID?) async throws -> Bool {
        try await pool.query("""
            DELETE FROM provisioning.webhook_endpoints WHERE id = \(id) AND (\(owner)::uuid IS NULL OR owner_id = \(owner))
            """).affectedRows == 1
    }

    /// Clears a disabled endpoint's state, so deliveries resume; nil when there is no such
    /// endpoint of `owner`'s.
    func enable(_ id: UUID, owner: UUID?) async throws -> WebhookEndpoint? {
        try await pool.query("""
            UPDATE provisioning.webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, consecutive_failures = 0
            WHERE id = \(id) AND (\(owner)::uuid IS NULL OR owner_id = \(owner))
            RETURNING \(unescaped: Self.endpointColumns)
            """).first.map(Self.endpoint)
    }

    private static let endpointColumns = "id, owner_id, url, events, created_at, disabled_at, disabled_reason"

    private static func endpoint(_ row: PostgresRow) throws -> WebhookEndpoint {
        let names: [String] = try row.decode("events")
        return WebhookEndpoint(
            id: try row.decode("id"), ownerId: try row.decode("owner_id"), url: try row.decode("url"),
            events: names.compactMap(WebhookEvent.init(rawValue:)), secret: nil, createdAt: try row.decode("created_at"),
            disabledAt: try row.decode("disabled_at"), disabledReason: try row.decode("disabled_reason")
        )
    }

    // MARK: Deliveries, as the API shows them

    /// The endpoint's latest deliveries, newest first; nil when there is no such endpoint of `owner`'s.
    func deliveries(of endpoint: UUID, owner: UUID?, limit: Int) async throws -> [WebhookDelivery]? {
        try await pool.withTransaction { tx in
            guard try await owned(endpoint, owner: owner, tx) else { return nil }
            return try await tx.query("""
                SELECT id, event_type, project_id, status, attempts::int8 AS attempts, last_status::int8 AS last_status, last_error,
                       CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at, created_at, delivered_at
                FROM provisioning.webhook_deliveries WHERE endpoint_id = \(endpoint)
                ORDER BY created_at DESC, id LIMIT \(limit)
                """).map { row in
                WebhookDelivery(
                    id: try row.decode("id"), eventType: WebhookEvent(rawValue: try row.decode("event_type")) ?? .projectReady,
                    projectId: try row.decode("project_id"),
                    status: WebhookDelivery.Status(rawValue: try row.decode("status")) ?? .pending,
                    attempts: try row.decode("attempts"), lastStatus: try row.decode("last_status"), lastError: try row.decode("last_error"),
                    nextAttemptAt: try row.decode("next_attempt_at"), createdAt: try row.decode("created_at"),
                    deliveredAt: try row.decode("delivered_at")
                )
            }
        }
    }

    enum Redelivery {
        case queued
        case noSuchDelivery
        case endpointDisabled
    }

    /// Queues a delivery again, as it was (same id, same payload), due now.
    func redeliver(_ delivery: UUID, of endpoint: UUID, owner: UUID?) async throws -> Redelivery {
        try await pool.withTransaction { tx in
            let rows = try await tx.query("""
                SELECT disabled_at IS NOT NULL AS disabled FROM provisioning.webhook_endpoints
                WHERE id = \(endpoint) AND (\(owner)::uuid IS NULL OR owner_id = \(owner))
                """)
            guard let row = rows.first else { return .noSuchDelivery }
            guard try !row.decode("disabled", as: Bool.self) else { return .endpointDisabled }
            let updated = try await tx.query("""
                UPDATE provisioning.webhook_deliveries SET status = 'pending', next_attempt_at = now()
                WHERE id = \(delivery) AND endpoint_id = \(endpoint)
                """).affectedRows
            guard updated == 1 else { return .noSuchDelivery }
            try await tx.query("SELECT pg_notify(\(Self.channel), '')")
            return .queued
        }
    }

    private func owned(_ endpoint: UUID, owner: UUID?, _ tx: PostgresConnection) async throws -> Bool {
        try await !tx.query("""
            SELECT 1 FROM provisioning.webhook_endpoints WHERE id = \(endpoint) AND (\(owner)::uuid IS NULL OR owner_id = \(owner))
            """).isEmpty
    }

    // MARK: Dispatching

    /// A due delivery this instance claimed, with its endpoint.
    struct Claimed: Sendable {
        var id: UUID
        var endpoint: UUID
        var payload: String
        var attempts: Int
        var url: String
        var secret: String
        var disabledReason: String?
    }

    /// Claims up to `limit` due deliveries: each counts an attempt, and its due time moves
    /// `lease` ahead, so another instance takes it over only if this one dies mid-attempt.
    func claimDue(limit: Int, lease: Duration) async throws -> [Claimed] {
        try await pool.query("""
            UPDATE provisioning.webhook_deliveries d
            SET attempts = d.attempts + 1, last_attempt_at = now(),
                next_attempt_at = now() + make_interval(secs => \(Double(lease.components.seconds)))
            FROM provisioning.webhook_endpoints e
            WHERE e.id = d.endpoint_id AND d.id IN (
                SELECT id FROM provisioning.webhook_deliveries
                WHERE status = 'pending' AND next_attempt_at <= now()
                ORDER BY next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
            )
            RETURNING d.id, d.endpoint_id, d.payload, d.attempts::int8 AS attempts, e.url, e.secret, e.disabled_reason
            """).map { row in
            Claimed(id: try row.decode("id"), endpoint: try row.decode("endpoint_id"), payload: try row.decode("payload"),
                    attempts: try row.decode("attempts"), url: try row.decode("url"), secret: try row.decode("secret"),
                    disabledReason: try row.decode("disabled_reason"))
        }
    }

    /// The endpoint answered 2xx: the delivery is done and the endpoint's failures reset.
    func delivered(_ delivery: Claimed, status: Int) async throws {
        try await pool.withTransaction { tx in
            try await tx.query("""
                UPDATE provisioning.webhook_deliveries
                SET status = 'delivered', delivered_at = now(), last_status = \(status), last_error = NULL WHERE id = \(delivery.id)
                """)
            try await tx.query("UPDATE provisioning.webhook_endpoints SET consecutive_failures = 0 WHERE id = \(delivery.endpoint)")
        }
    }

    /// An attempt failed. The delivery is due again after `retryIn`, unless that is past
    /// `window` from its creation (or `final`): then it has failed for good. The endpoint counts
    /// the failure; at `disableAfter` in a row it is disabled, naming the last error.
    func failed(_ delivery: Claimed, status: Int?, error: String, retryIn: Duration, window: Duration, final: Bool,
                disableAfter: Int) async throws {
        try await pool.withTransaction { tx in
            try await tx.query("""
                UPDATE provisioning.webhook_deliveries
                SET last_status = \(status), last_error = \(error),
                    next_attempt_at = now() + make_interval(secs => \(Self.seconds(retryIn))),
                    status = CASE WHEN \(final) OR created_at + make_interval(secs => \(Self.seconds(window)))
                                                   < now() + make_interval(secs => \(Self.seconds(retryIn)))
                                  THEN 'failed' ELSE 'pending' END
                WHERE id = \(delivery.id)
                """)
            guard delivery.disabledReason == nil else { return }
            let reason = "\(disableAfter) deliveries in a row failed; the last: \(error)"
            try await tx.query("""
                UPDATE provisioning.webhook_endpoints
                SET consecutive_failures = consecutive_failures + 1,
                    disabled_at = CASE WHEN consecutive_failures + 1 >= \(disableAfter) THEN now() END,
                    disabled_reason = CASE WHEN consecutive_failures + 1 >= \(disableAfter) THEN \(String(reason.prefix(500))) END
                WHERE id = \(delivery.endpoint) AND disabled_at IS NULL
                """)
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
