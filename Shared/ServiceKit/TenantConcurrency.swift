import Foundation
import HTTPTypes
import Synchronization

/// A per-tenant concurrency budget: at most `limit` pieces of database work of one tenant at
/// once, so that one tenant cannot take every connection of a pool all tenants share.
///
/// A tenant past its budget is answered at once, 429 `tenant_busy` with `Retry-After`, instead
/// of queueing for a connection: queued work would make every tenant's requests wait for the
/// pool, and time out together (`DB_ACQUIRE_TIMEOUT_MS`), which is exactly the starvation the
/// budget exists to prevent. A permit is held only while the work holds its connection, so a
/// refusal means "a connection of yours frees within a moment": `Retry-After: 1`.
///
/// Memory is bounded without eviction: a tenant has an entry only while it has work in flight
/// (the entry goes when its count returns to zero), so the map never holds more entries than
/// there are requests in flight, whatever the number of tenants.
///
/// Per process, like `RateLimiter`: with N replicas a tenant may hold up to N × `limit`
/// connections of the database, `limit` of each replica's pool.
public final class TenantConcurrency: Sendable {
    /// At most this many permits per tenant at once.
    public let limit: Int
    private let inFlight = Mutex<[UUID: Int]>([:])

    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Takes a permit for `tenant` if it has one left.
    public func tryAcquire(_ tenant: UUID) -> Bool {
        inFlight.withLock { inFlight in
            let current = inFlight[tenant, default: 0]
            guard current < limit else { return false }
            inFlight[tenant] = current + 1
            return true
        }
    }

    /// Gives back a permit `tryAcquire` granted.
    public func release(_ tenant: UUID) {
        inFlight.withLock { inFlight in
            let remaining = inFlight[tenant, default: 0] - 1
            inFlight[tenant] = remaining > 0 ? remaining : nil
        }
    }

    /// The permits `tenant` holds now.
    public func permits(of tenant: UUID) -> Int {
        inFlight.withLock { $0[tenant, default: 0] }
    }

    /// How many tenants hold a permit now (the size of the map).
    public var tenantsInFlight: Int {
        inFlight.withLock { $0.count }
    }

    /// Runs `work` holding one of `tenant`'s permits; throws `busy` (429, `Retry-After`) at once
    /// when the tenant has none left. The permit is given back however `work` ends.
    public func withPermit<Result>(
        _ tenant: UUID,
        isolation: isolated (any Actor)? = #isolation,
        _ work: () async throws -> sending Result
    ) async throws -> sending Result {
        guard tryAcquire(tenant) else { throw Self.busy }
        defer { release(tenant) }
        return try await work()
    }

    /// How long a refused tenant is asked to wait: a permit frees as soon as one of its queries
    /// ends.
    public static let retryAfterSeconds = 1

    /// The answer past the budget.
    public static let busy = APIError(
        .tooManyRequests, code: "tenant_busy",
        message: "This project has too many requests in progress; try again in \(retryAfterSeconds) second.",
        headers: [.retryAfter: String(retryAfterSeconds)]
    )
}
