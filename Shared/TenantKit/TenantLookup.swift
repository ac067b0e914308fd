import Contracts
import Foundation
import ServiceKit

/// Registered tenants by slug, each read from the registry at most once per `ttl`: a service
/// that names the tenant of every request (storage's Storage API) reads its row once every few
/// seconds rather than once a request. Only tenants found are remembered, so a new tenant is
/// seen at once; a removed one may be seen for up to `ttl` more, during which its rows and its
/// files are already gone (reads find nothing, writes are refused as for an unknown tenant) —
/// as its API keys are remembered `API_KEY_CACHE_SECONDS` already.
public final class TenantLookup: Sendable {
    let registry: TenantRegistry
    private let cache: ExpiringCache<String, RegisteredTenant>

    public init(registry: TenantRegistry, ttl: Duration = .seconds(5)) {
        self.registry = registry
        self.cache = ExpiringCache(ttl: ttl)
    }

    public func tenant(slug: String) async throws -> RegisteredTenant? {
        if let cached = cache.get(slug) { return cached.value }
        guard let tenant = try await registry.tenant(slug: slug) else { return nil }
        cache.set(slug, tenant)
        return tenant
    }
}
