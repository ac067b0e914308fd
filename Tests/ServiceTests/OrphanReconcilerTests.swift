import Contracts
import Foundation
import HTTPClient
import Postgres
@testable import Provisioning
import ServiceClients
import ServiceKit
import TestSupport
import Testing

/// Provisioning's orphan reconciler, one pass at a time against the real services: a
/// registration's project whose owner exists at auth is confirmed and left alone; one whose
/// owner never came to exist is deprovisioned and its idempotency record dropped. The grace
/// period is passed by backdating the projects' marks, not by waiting.
@Suite("Registration orphans")
struct OrphanReconcilerTests {
    @Test("a pass confirms projects whose owner exists and deprovisions those whose owner never committed")
    func reconcilePass() async throws {
        try await withTestPlatform { platform, url in
            let developer = try await platform.registerDeveloper("owned")
            let orphanOwner = UUID()
            let created = try await platform.createProject(owner: orphanOwner, name: "Orphan", slug: TestDatabase.uniqueName("orphan"),
                                                           idempotencyKey: orphanOwner.uuidString.lowercased())
            #expect(created.status == 202)
            let orphan = try created.decode(ProjectAccepted.self).projectId
            #expect(try await platform.waitForProject(orphan, in: [.ready, .failed]).status == .ready)

            try await withPool(url: url) { pool in
                let marked = try await pool.query("""
                    UPDATE provisioning.projects SET owner_unconfirmed_since = now() - interval '1 hour'
                    WHERE owner_unconfirmed_since IS NOT NULL RETURNING id
                    """).map { try $0.decode("id", as: UUID.self) }
                #expect(Set(marked) == [developer.firstProject, orphan])
                let reconciler = OrphanReconciler(
                    pool: pool, store: ProjectStore(pool: pool, vault: KeyVault(pool: pool)),
                    auth: DeveloperCredentialsClient(http: platform.client, authURL: platform.url("auth"), serviceToken: TestServices.internalToken),
                    doorbell: Doorbell(), grace: .seconds(60), interval: .seconds(60), readiness: Readiness(), logger: TestDatabase.logger
                )
                #expect(try await reconciler.reconcile() == 1)
                let left = try await pool.query("SELECT id FROM provisioning.projects WHERE owner_unconfirmed_since IS NOT NULL").count
                #expect(left == 0)
                let keys = try await pool.query("""
                    SELECT 1 FROM provisioning.idempotency_keys WHERE scope = 'POST /internal/v1/projects' AND key = \(orphanOwner.uuidString.lowercased())
                    """).count
                #expect(keys == 0)
                // Nothing more to do on the next pass.
                #expect(try await reconciler.reconcile() == 0)
            }
            #expect(try await platform.waitForProject(orphan, in: [.deleted]).status == .deleted)
            #expect(try await platform.project(developer.firstProject).decode(ProjectStatus.self).status == .ready)
        }
    }
}
