import Contracts
import Foundation
import HTTPClient
import Postgres
import Synchronization
import TestSupport
import Testing

/// `POST /v1/projects/{id}/api-keys/rotate`: the durable `rotate_keys` workflow, on the real
/// services and database, seen by a client that keeps calling auth, realtime and storage.
@Suite("API key rotation")
struct KeyRotationTests {
    /// One request to each of auth, storage and realtime with a project's keys; their statuses.
    static func callEverywhere(_ platform: TestPlatform, _ keys: TenantAPIKeys) async throws -> [Int] {
        let auth = try await platform.tenantCall(.get, "auth", "/auth/v1/settings", apikey: keys.publishable)
        let storage = try await platform.tenantCall(.get, "storage", "/storage/v1/bucket", apikey: keys.secret, bearer: keys.secret)
        let realtime = try await platform.tenantCall(.post, "realtime", "/realtime/v1/api/broadcast", apikey: keys.secret,
                                                     json: JSONValue.object(["messages": .array([.object([
                                                         "topic": .string("rotation"), "event": .string("tick"), "payload": .object(["n": .number(1)]),
                                                     ])])]))
        return [auth.status, storage.status, realtime.status]
    }

    @Test("a rotation keeps every request working: the new keys work beside the old ones for the grace period, then only they do")
    func rotationWithoutAFailedRequest() async throws {
        // Realtime and storage ask auth about every key (no cache), so revocation shows at once.
        try await withTestPlatform(provisioning: ["API_KEY_CACHE_SECONDS": "0"]) { platform, url in
            let dev = try await platform.registerDeveloper("rot")
            let project = dev.firstProject
            _ = try await platform.waitForProject(project, in: [.ready])
            let revealed = try await platform.projectsCall(.get, ProjectOwnerTests.path(project, "/api-keys"), token: dev.accessToken)
                .decode(ProjectAPIKeys.self)
            let old = TenantAPIKeys(publishable: try #require(revealed.key(.publishable)), secret: try #require(revealed.key(.secret)))

            // A client calls all three services in a loop with the keys it has, and switches to
            // the new ones as soon as it can read them.
            let keys = Mutex(old)
            let statuses = Mutex<[Int]>([])
            let stop = Mutex(false)
            let client = Task {
                while !stop.withLock({ $0 }) {
                    let answers = try await Self.callEverywhere(platform, keys.withLock { $0 })
                    statuses.withLock { $0 += answers }
                }
            }

            let rotate = try await platform.projectsCall(.post, ProjectOwnerTests.path(project, "/api-keys/rotate"), token: dev.accessToken,
                                                         json: RotateKeysRequest(graceSeconds: 3600))
            #expect(rotate.status == 202, "\(rotate)")
            let rotation = try rotate.decode(ProjectAccepted.self).workflowId

            // Once the next set works, its keys are revealed (once), the current ones retiring.
            var next: ProjectAPIKeys?
            try await waitUntil("the next keys work and are revealed") {
                let answer = try await platform.projectsCall(.get, ProjectOwnerTests.path(project, "/api-keys"), token: dev.accessToken)
                    .decode(ProjectAPIKeys.self)
                if answer.keys.contains(where: { $0.state == .next && $0.key != nil }) { next = answer }
                return next != nil
            }
            let shown = try #require(next)
            #expect(shown.keys.filter { $0.state == .retiring }.map(\.id) == revealed.keys.map(\.id))
            #expect(shown.keys.filter { $0.state == .retiring }.allSatisfy { $0.retiresAt != nil && $0.key == nil })
            let fresh = TenantAPIKeys(publishable: try #require(shown.key(.publishable)), secret: try #require(shown.key(.secret)))
            keys.withLock { $0 = fresh }

            // In the grace period both sets work everywhere.
            #expect(try await Self.callEverywhere(platform, old).allSatisfy { (200..<300).contains($0) })
            #expect(try await Self.callEverywhere(platform, fresh).allSatisfy { (200..<300).contains($0) })
            // The rotation sleeps (released, nobody holds it) until the grace period ends.
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await eventually {
                    try await pool.scalar("""
                        SELECT count(*)::int8 FROM provisioning.workflow_executions
                        WHERE id = \(rotation) AND lease_owner IS NULL AND lease_expires_at > now() + interval '1 minute'
                        """) == 1
                })
                // The operator ends the grace period now (as the clock would in an hour).
                try await pool.query("UPDATE provisioning.api_key_rotations SET grace_until = now() WHERE execution_id = \(rotation)")
                try await pool.query("UPDATE provisioning.workflow_executions SET lease_expires_at = now() WHERE id = \(rotation)")
            }
            try await waitUntil("the rotation succeeded") {
                let status = try await platform.project(project).decode(ProjectStatus.self)
                return status.workflow?.id == rotation && status.workflow?.status == "succeeded"
            }
            stop.withLock { $0 = true }
            try await client.value

            let seen = statuses.withLock { $0 }
            #expect(seen.count >= 6 && seen.allSatisfy { (200..<300).contains($0) }, "\(Dictionary(grouping: seen, by: { $0 }).mapValues(\.count))")
            // Afterwards: the old keys are refused everywhere, the new ones are the project's.
            #expect(try await Self.callEverywhere(platform, old).allSatisfy { $0 == 401 })
            #expect(try await Self.callEverywhere(platform, fresh).allSatisfy { (200..<300).contains($0) })
            let after = try await platform.projectsCall(.get, ProjectOwnerTests.path(project, "/api-keys"), token: dev.accessToken)
                .decode(ProjectAPIKeys.self)
            #expect(after.keys.map(\.id) == shown.keys.filter { $0.state == .next }.map(\.id))
            #expect(after.keys.allSatisfy { $0.state == .active && $0.key == nil })
            let status = try await platform.project(project).decode(ProjectStatus.self)
            #expect(status.status == .ready && status.workflow?.kind == "rotate_keys"
                    && status.workflow?.steps.map(\.name) == ["mint_keys", "store_keys", "await_grace", "revoke_old_keys", "switch_keys"])
        }
    }

    @Test("a rotation whose next set cannot be stored is undone: the old keys stay; one rotation at a time; only ready projects")
    func failedRotationIsUndone() async throws {
        try await withTestPlatform(provisioning: ["API_KEY_CACHE_SECONDS": "0"]) { platform, url in
            let dev = try await platform.registerDeveloper("undo")
            let project = dev.firstProject
            _ = try await platform.waitForProject(project, in: [.ready])
            let revealed = try await platform.projectsCall(.get, ProjectOwnerTests.path(project, "/api-keys"), token: dev.accessToken)
                .decode(ProjectAPIKeys.self)
            let old = TenantAPIKeys(publishable: try #require(revealed.key(.publishable)), secret: try #require(revealed.key(.secret)))

            let badGrace = try await platform.projectsCall(.post, ProjectOwnerTests.path(project, "/api-keys/rotate"), token: dev.accessToken,
                                                           json: RotateKeysRequest(graceSeconds: -1))
            #expect(badGrace.status == 422 && badGrace.errorEnvelope?.error.field == "grace_seconds")

            // Auth is down: store_keys cannot succeed, so the rotation is undone.
            await platform.stop("auth")
            let rotate = try await platform.projectsCall(.post, ProjectOwnerTests.path(project, "/api-keys/rotate"), token: nil,
                                                         headers: ProjectOwnerTests.operatorHeaders)
            #expect(rotate.status == 202)
            let rotation = try rotate.decode(ProjectAccepted.self).workflowId
            let second = try await platform.projectsCall(.post, ProjectOwnerTests.path(project, "/api-keys/rotate"), token: nil,
                                                         headers: ProjectOwnerTests.operatorHeaders)
            let secondID = try? second.decode(ProjectAccepted.self).workflowId
            #expect(second.status == 423 || (second.status == 202 && secondID == rotation))
            try await waitUntil("the undone rotation ended failed") {
                try await platform.project(project).decode(ProjectStatus.self).workflow?.status == "failed"
            }
            try await platform.start(["auth"])
            let status = try await platform.project(project).decode(ProjectStatus.self)
            #expect(status.status == .ready && status.workflow?.steps.first { $0.name == "store_keys" }?.status == "failed")
            #expect(try await Self.callEverywhere(platform, old).allSatisfy { (200..<300).contains($0) })
            let keys = try await platform.projectsCall(.get, ProjectOwnerTests.path(project, "/api-keys"), token: nil,
                                                       headers: ProjectOwnerTests.operatorHeaders).decode(ProjectAPIKeys.self)
            #expect(keys.keys.map(\.id) == revealed.keys.map(\.id) && keys.keys.allSatisfy { $0.state == .active })
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.api_key_rotations") == 0)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM provisioning.api_key_reveals") == 0)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM auth.api_keys WHERE tenant_id = \(project) AND revoked_at IS NULL") == 2)
            }
            // Another rotation can start now; a project that is not ready cannot rotate.
            #expect(try await platform.projectsCall(.delete, ProjectOwnerTests.path(project), token: dev.accessToken).status == 202)
            _ = try await platform.waitForProject(project, in: [.deleted])
            let gone = try await platform.projectsCall(.post, ProjectOwnerTests.path(project, "/api-keys/rotate"), token: dev.accessToken)
            #expect(gone.status == 409 && gone.errorEnvelope?.error.code == "not_ready")
        }
    }

    @Test("the next keys are neither listed nor revealed until auth accepts them")
    func nextKeysHiddenUntilStored() async throws {
        // Auth stays down while store_keys keeps retrying (many attempts), then comes back.
        try await withTestPlatform(provisioning: ["PROVISIONING_STEP_MAX_ATTEMPTS": "100", "PROVISIONING_RETRY_BASE_MS": "500", "PROVISIONING_RETRY_MAX_MS": "1000"]) { platform, _ in
            let dev = try await platform.registerDeveloper("hide")
            let project = dev.firstProject
            _ = try await platform.waitForProject(project, in: [.ready])
            let current = try await platform.apiKeys(project).decode(ProjectAPIKeys.self)
            await platform.stop("auth")
            let rotate = try await platform.projectsCall(.post, ProjectOwnerTests.path(project, "/api-keys/rotate"), token: nil,
                                                         headers: ProjectOwnerTests.operatorHeaders)
            #expect(rotate.status == 202)
            try await waitUntil("mint_keys succeeded and store_keys was attempted") {
                let steps = try await platform.project(project).decode(ProjectStatus.self).workflow?.steps ?? []
                return steps.first { $0.name == "mint_keys" }?.status == "succeeded" && (steps.first { $0.name == "store_keys" }?.attempts ?? 0) >= 1
            }
            let meanwhile = try await platform.apiKeys(project).decode(ProjectAPIKeys.self)
            #expect(meanwhile.keys.map(\.id) == current.keys.map(\.id) && meanwhile.keys.allSatisfy { $0.state == .active && $0.key == nil })
            try await platform.start(["auth"])
            var shown: ProjectAPIKeys?
            try await waitUntil("the next keys are listed once auth accepts them") {
                let answer = try await platform.apiKeys(project).decode(ProjectAPIKeys.self)
                if answer.keys.contains(where: { $0.state == .next }) { shown = answer }
                return shown != nil
            }
            #expect(shown?.keys.filter { $0.state == .next }.allSatisfy { $0.key != nil } == true)
            #expect(shown?.keys.filter { $0.state == .retiring }.map(\.id) == current.keys.map(\.id))
        }
    }
}
