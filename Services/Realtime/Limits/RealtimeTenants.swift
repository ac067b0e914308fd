import Contracts
import Foundation
import ServiceKit
import TenantKit

/// A tenant's realtime limits, from its row in `realtime.tenants` (set at registration and by
/// `PATCH /v1/tenants/{slug}/limits`).
struct RealtimeLimits: Sendable, Equatable {
    var concurrentUsers: Int
    var eventsPerSecond: Int
    var channelsPerClient: Int
    var joinsPerSecond: Int

    static let columns = ["max_concurrent_users", "max_events_per_second", "max_channels_per_client", "max_joins_per_second"]

    init(concurrentUsers: Int, eventsPerSecond: Int, channelsPerClient: Int, joinsPerSecond: Int) {
        self.concurrentUsers = concurrentUsers
        self.eventsPerSecond = eventsPerSecond
        self.channelsPerClient = channelsPerClient
        self.joinsPerSecond = joinsPerSecond
    }

    init?(_ row: [String: Int]) {
        guard let users = row["max_concurrent_users"], let events = row["max_events_per_second"],
              let channels = row["max_channels_per_client"], let joins = row["max_joins_per_second"] else { return nil }
        self.init(concurrentUsers: users, eventsPerSecond: events, channelsPerClient: channels, joinsPerSecond: joins)
    }
}

/// Registered tenants with their limits, each read at most once per `ttl` (a limit changed by
/// the developer applies to new connections and joins within that time).
final class RealtimeTenants: Sendable {
    struct Tenant: Sendable {
        var registered: RegisteredTenant
        var limits: RealtimeLimits
    }

    let registry: TenantRegistry
    private let cache: ExpiringCache<String, Tenant>

    init(registry: TenantRegistry, ttl: Duration = .seconds(5)) {
        self.registry = registry
        cache = ExpiringCache(ttl: ttl)
    }

    /// Forgets a removed tenant at once (its next lookup finds it gone).
    func forget(_ id: UUID) {
        cache.removeValues { $0.registered.id == id }
    }

    func tenant(slug: String) async throws -> Tenant? {
        if let cached = cache.get(slug) { return cached.value }
        guard let registered = try await registry.tenant(slug: slug),
              let limits = try await registry.limits(slug: slug, columns: RealtimeLimits.columns).flatMap(RealtimeLimits.init)
        else { return nil }
        let tenant = Tenant(registered: registered, limits: limits)
        cache.set(slug, tenant)
        return tenant
    }
}
