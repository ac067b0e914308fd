import Foundation
import ServiceKit

/// What keeps one tenant from starving the others on auth, from the configuration:
///
/// - `AUTH_TENANT_MAX_CONNECTIONS`: at most this many of auth's database connections at once
///   per tenant (`TenantConcurrency`, around every query of `TenantUserStore`); default a
///   quarter of `DB_POOL_MAX`, rounded up (3 of 10), so the others always find most of the pool
///   (a value above `DB_POOL_MAX` counts as `DB_POOL_MAX`). Past it: 429 `tenant_busy` with
///   `Retry-After`. Why a quarter and not half: the budget bounds connections, not the
///   database's CPU; on two cores, tenant B's sign-in p99 while A floods was 3.8 s with 5 of 10
///   and 0.5–0.6 s with 2 or 3 (deploy/scripts/bench-fairness.sh, docs/ARCHITECTURE.md).
/// - `AUTH_AUDIT_VERIFY_PER_MINUTE`: verifications of a tenant's audit chain per minute (per
///   replica; a full one counts as `fullVerificationCost`). Past it: 429 `rate_limited`.
struct TenantLimits: Sendable {
    let connections: TenantConcurrency
    let auditVerifications: RateLimiter

    /// What a full verification (`?full=true`, reading the whole chain) counts against the limit.
    static let fullVerificationCost = 5

    init(_ configuration: ServiceConfiguration) throws {
        // More than the pool would be no limit at all: it is the pool's size then.
        let connections = try configuration.integer("AUTH_TENANT_MAX_CONNECTIONS", default: max(1, (configuration.poolSize + 3) / 4), range: 1...500)
        self.connections = TenantConcurrency(limit: min(connections, configuration.poolSize))
        auditVerifications = RateLimiter(limit: try configuration.integer("AUTH_AUDIT_VERIFY_PER_MINUTE", default: 30, range: 1...100_000),
                                         per: .seconds(60))
    }

    /// Counts one verification of `tenant`'s chain; throws 429 past the limit.
    func checkAuditVerification(_ tenant: UUID, full: Bool) throws -> RateLimiter.Decision {
        let decision = auditVerifications.check("audit-verify:" + tenant.uuidString.lowercased(),
                                                cost: full ? min(Self.fullVerificationCost, auditVerifications.limit) : 1)
        try decision.enforce()
        return decision
    }
}
