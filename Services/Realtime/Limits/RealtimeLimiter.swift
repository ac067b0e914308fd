import Foundation
import ServiceKit
import Synchronization

/// The per-tenant limits of this replica (docs/realtime.md "Limits"): open sockets, joins per
/// second, events per second. Counted per replica, as Supabase's are per node: with N replicas
/// a tenant can reach N times its rates, while its sockets are spread across them by the load
/// balancer.
final class RealtimeLimiter: Sendable {
    private let sockets = Mutex<[UUID: Int]>([:])
    private let joins = RateLimiter(limit: 1, per: .seconds(1))
    private let events = RateLimiter(limit: 1, per: .seconds(1))

    /// Counts a new socket of `tenant`; false (and not counted) when it has `limit` open already.
    func openSocket(_ tenant: UUID, limit: Int) -> Bool {
        sockets.withLock { sockets in
            let open = sockets[tenant] ?? 0
            guard open < limit else { return false }
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

    func openSockets(_ tenant: UUID) -> Int { sockets.withLock { $0[tenant] ?? 0 } }

    func allowJoin(_ tenant: UUID, limit: Int) -> Bool {
        joins.check(tenant.uuidString, limit: limit).allowed
    }

    /// One event sent by a client (a broadcast, a presence change) or over HTTP.
    func allowEvent(_ tenant: UUID, limit: Int, count: Int = 1) -> Bool {
        var allowed = true
        for _ in 0..<max(1, count) { allowed = events.check(tenant.uuidString, limit: limit).allowed && allowed }
        return allowed
    }
}
