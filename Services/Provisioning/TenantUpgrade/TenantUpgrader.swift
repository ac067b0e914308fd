import Foundation
import Logging
import Resilience
import ServiceKit
import ServiceLifecycle

/// Brings every ready tenant's schema up to this binary's tenant migrations, in the background
/// after start-up: a new tenant migration reaches the tenants made before it without an
/// operator's command, and a project being made gets it from its saga.
///
/// - One tenant per transaction (`TenantUpgradeStore.upgradeNext`), so a kill loses at most the
///   tenant in hand, which the next start (or another instance) takes again; what each tenant
///   has is recorded in its own `_migrations` and in its project's `tenant_schema_version`.
/// - Instances share the work through `FOR UPDATE SKIP LOCKED`.
/// - When nothing is below the latest version, start-up costs one indexed query.
/// - A tenant that fails three times is left for the next start and logged as an error.
/// - Tenants made before memberships became transient lose their standing membership once
///   fully migrated (`TenantDatabase.dropStandingMembership`).
struct TenantUpgrader: Service {
    let store: TenantUpgradeStore
    let tenants: TenantDatabase
    let readiness: Readiness
    let backoff: Backoff
    let logger: Logger

    struct Report: Sendable, Equatable {
        var upgraded = 0
        var skipped: [UUID] = []
    }

    /// Upgrades once, then stays (a service that ends would stop the whole service group)
    /// until the graceful shutdown. Refuses to start (ending the group, as a failed migration
    /// does) when a role the tenants grant to does not exist: every tenant migration would fail.
    func run() async throws {
        let missing = await cancelWhenGracefulShutdown { () async -> [String] in
            while !readiness.migrationsApplied {
                try? await Task.sleep(for: .milliseconds(100))
                if Task.isCancelled { return [] }
            }
            // Unreadable now (the database away): the migrations' own errors will say it.
            let missing = (try? await tenants.missingGrantees()) ?? []
            if missing.isEmpty { _ = await upgradeAll() }
            return missing
        }
        if !missing.isEmpty {
            let message = "\(missing.joined(separator: ", ")) names no role of this database cluster: "
                + "tenants could not grant it what it uses (deploy/postgres/service-roles.sql makes the services' roles)"
            logger.critical("refusing to start: \(message)")
            throw ConfigurationError(description: message)
        }
        try? await gracefulShutdown()
    }

    /// Upgrades until no ready tenant is below the latest version (or `limit` tenants, for a
    /// test that stands for a kill part-way through).
    func upgradeAll(limit: Int = .max) async -> Report {
        let latest = tenants.latestVersion
        var report = Report()
        var failures: [UUID: Int] = [:]
        let started = ContinuousClock.now
        let remaining = (try? await store.remaining(below: latest)) ?? 0
        if remaining > 0 {
            logger.info("upgrading tenant schemas", metadata: ["tenants.remaining": "\(remaining)", "tenant.schema_version": "\(latest)"])
        }
        var attempt = 0
        while report.upgraded < limit, !Task.isCancelled {
            do {
                let upgraded = try await store.upgradeNext(below: latest, skipping: report.skipped) { _, slug in
                    try await upgrade(TenantNames(slug: slug))
                }
                guard upgraded != nil else { break }
                attempt = 0
                report.upgraded += 1
                if report.upgraded % 500 == 0 {
                    logger.info("upgrading tenant schemas", metadata: ["tenants.upgraded": "\(report.upgraded)"])
                }
            } catch let failure as TenantUpgradeStore.Failed {
                let count = failures[failure.projectID, default: 0] + 1
                failures[failure.projectID] = count
                logger.warning("tenant schema upgrade failed", metadata: [
                    "project.id": "\(failure.projectID)", "attempt": "\(count)", "error": "\(failure.underlying)",
                ])
                if count >= 3 {
                    report.skipped.append(failure.projectID)
                    logger.error("tenant schema left below the latest version until the next start",
                                 metadata: ["project.id": "\(failure.projectID)"])
                }
                try? await Task.sleep(for: backoff.delay(beforeRetry: count))
            } catch {
                // The claim itself failed (database unavailable): wait, then go on.
                attempt += 1
                logger.warning("tenant schema upgrade waits for the database", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff.delay(beforeRetry: attempt))
            }
        }
        if report.upgraded > 0 || !report.skipped.isEmpty {
            logger.info("tenant schemas upgraded", metadata: [
                "tenants.upgraded": "\(report.upgraded)", "tenants.skipped": "\(report.skipped.count)",
                "duration": "\(ContinuousClock.now - started)",
            ])
        }
        return report
    }

    /// One tenant: its migrations (as its role, through a transient membership), then the end
    /// of a standing membership once its grants to the platform role are in.
    private func upgrade(_ tenant: TenantNames) async throws -> Int {
        let version = try await tenants.migrate(tenant)
        if version >= tenants.latestVersion {
            try await tenants.dropStandingMembership(tenant)
        }
        return version
    }
}
