import Foundation
import ServiceKit
import Synchronization

/// The per-tenant limits (docs/realtime.md "Limits"): open sockets, joins per second, events
/// per second.
///
/// Sockets count across replicas: each replica publishes its counts on every beat
/// (`SocketCensus`), and a new socket is admitted while this replica's sockets plus the others'
/// last published ones stay under the cap, so the cap may be passed by what other replicas
/// opened since their last beat. The rates are counted per replica, as Supabase's are per node:
/// with N replicas a tenant can reach N times its rates.
final class RealtimeLimiter: Sendable {
    private let sockets = Mutex<[UUID: Int]>([:])
    /// The other replicas' sockets per tenant, as last published.
    private let elsewhere = Mutex<[UUID: Int]>([:])
    private let joins = RateLimiter(limit: 1, per: .seconds(1))
    private let events = RateLimiter(limit: 1, per: .seconds(1))

    /// Counts a new socket of `tenant`; false (and not counted) when it has `limit` open already,
    /// here and on the other replicas.
    func openSocket(_ tenant: UUID, limit: Int) -> Bool {
        let others = elsewhere.withLock { $0[tenant] ?? 0 }
        return sockets.withLock { sockets in
            let open = sockets[tenant] ?? 0
            guard open + others < limit else { return false }
            sockets[tenant] = open + 1
            return true
        }
    }

    func closeSocket(_ tenant: UUID) {
        sockets.withLock { sockets in
            let open = (sockets[tenant] ?? 1) - 1
            sockets[tenant] = open > 0 ? open : nil
        }
    }

    /// The tenant's sockets here and (as last published) on the other replicas.
    func openSockets(_ tenant: UUID) -> Int {
        sockets.withLock { $0[tenant] ?? 0 } + elsewhere.withLock { $0[tenant] ?? 0 }
    }

    /// This replica's sockets per tenant (to publish).
    var localSockets: [UUID: Int] { sockets.withLock { $0 } }

    /// The other replicas' sockets per tenant, as just read.
    func setElsewhere(_ counts: [UUID: Int]) { elsewhere.withLock { $0 = counts } }

    func allowJoin(_ tenant: UUID, limit: Int) -> Bool {
        joins.check(tenant.uuidString, limit: limit).allowed
    }

    /// One event sent by a client (a broadcast, a presence change) or over HTTP.
    func allowEvent(_ tenant: UUID, limit: Int, count: Int = 1) -> Bool {
        events.check(tenant.uuidString, limit: limit, cost: count).allowed
    }
}
