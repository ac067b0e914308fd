import Contracts
import Foundation
import Logging
import Postgres
import ServiceClients
import ServiceKit
import ServiceLifecycle

/// Deprovisions the projects of registrations that never committed. Auth asks for a
/// registration's project first and commits its developer afterwards, holding no transaction
/// across the call; should auth die, or its commit fail, in between, the project's owner never
/// comes to exist. Such projects carry `owner_unconfirmed_since`; every
/// `PROVISIONING_ORPHAN_CHECK_SECONDS` the reconciler takes those older than
/// `PROVISIONING_ORPHAN_GRACE_SECONDS` and asks auth about each owner
/// (`GET /internal/v1/developers/{id}`):
///
/// - the owner exists: the mark is cleared, and the project is never asked about again;
/// - there is no such developer: the project is deprovisioned like any deleted one (its slug
///   is free once it is `deleted`) and the registration's idempotency record is dropped, so the
///   same registration made again gets a new project rather than the old answer;
/// - auth cannot answer, or the project is still being provisioned: it is asked again next time.
///
/// Every replica runs it; deprovisioning is idempotent, so two replicas asking about the same
/// project start one deprovisioning.
struct OrphanReconciler: Service {
    let pool: PostgresPool
    let store: ProjectStore
    let auth: DeveloperCredentialsClient
    let doorbell: Doorbell
    let grace: Duration
    let interval: Duration
    let readiness: Readiness
    let logger: Logger

    func run() async throws {
        try await RecurringWork(every: interval, readiness: readiness, logger: logger, failure: "orphan check failed") {
            try await reconcile()
        }.run()
    }

    /// One pass over the projects due a check; returns how many were deprovisioned.
    @discardableResult
    func reconcile() async throws -> Int {
        let due = try await pool.query("""
            SELECT id, owner_id FROM provisioning.projects
            WHERE owner_unconfirmed_since < now() - make_interval(secs => \(Double(grace.components.seconds)))
            ORDER BY owner_unconfirmed_since LIMIT 100
            """).map { (project: try $0.decode("id", as: UUID.self), owner: try $0.decode("owner_id", as: UUID.self)) }
        var removed = 0
        for (project, owner) in due where !Task.isCancelled {
            let account: DeveloperAccount?
            do {
                account = try await auth.developer(owner)
            } catch {
                logger.warning("orphan check: auth did not answer", metadata: ["project.id": "\(project)", "error": "\(error)"])
                continue
            }
            if account != nil {
                try await pool.query("UPDATE provisioning.projects SET owner_unconfirmed_since = NULL WHERE id = \(project)")
                continue
            }
            do {
                _ = try await store.deprovision(projectID: project, owner: nil)
            } catch let error as APIError where error.code == "operation_in_progress" {
                continue  // still being provisioned: next time
            }
            doorbell.ring()
            try await pool.withTransaction { tx in
                try await tx.query("UPDATE provisioning.projects SET owner_unconfirmed_since = NULL WHERE id = \(project)")
                try await tx.query("""
                    DELETE FROM provisioning.idempotency_keys WHERE scope = 'POST /internal/v1/projects' AND key = \(owner.uuidString.lowercased())
                    """)
            }
            logger.warning("registration orphan deprovisioned: its owner never committed", metadata: [
                "project.id": "\(project)", "developer.id": "\(owner)",
            ])
            removed += 1
        }
        return removed
    }
}
