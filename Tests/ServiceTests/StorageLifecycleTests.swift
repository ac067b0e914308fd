import Foundation
import HTTPClient
import Postgres
import TestSupport
import Testing

/// A project's storage goes with the project: deprovisioning removes its buckets, objects, quota
/// row and files, and a removal stopped half-way (a crash in the middle of removing the files)
/// completes when it is asked again, with the same answers the saga's compensation expects.
@Suite("Storage tenant lifecycle", .serialized)
struct StorageLifecycleTests {
    func fill(_ platform: TestPlatform, _ tenant: ProvisionedTenant) async throws {
        #expect(try await platform.storageCall(.post, "/bucket", key: tenant.keys.secret, json: ["name": "files"]).status == 200)
        for index in 0..<5 {
            let stored = try await platform.storageCall(.post, "/object/files/dir/\(index).bin", key: tenant.keys.secret,
                                                        body: Array(repeating: UInt8(index), count: 1000 * (index + 1)),
                                                        headers: [("Content-Type", "application/octet-stream")])
            #expect(stored.status == 200)
        }
    }

    /// Rows of the tenant in storage's tables, and whether its directory exists.
    func footprint(_ pool: PostgresPool, _ platform: TestPlatform, _ tenant: UUID) async throws -> [Int] {
        [
            try await pool.scalar("SELECT count(*)::int8 FROM storage.tenants WHERE id = \(tenant)"),
            try await pool.scalar("SELECT count(*)::int8 FROM storage.buckets WHERE tenant_id = \(tenant)"),
            try await pool.scalar("SELECT count(*)::int8 FROM storage.objects WHERE tenant_id = \(tenant)"),
            FileManager.default.fileExists(atPath: platform.storageRoot.appendingPathComponent(tenant.uuidString.lowercased()).path) ? 1 : 0,
        ]
    }

    @Test("deprovisioning a project removes its buckets, objects, quota row and files, and no other project's")
    func deprovisioning() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("sld")
            let bystander = try await platform.provisionTenant("slk")
            try await fill(platform, tenant)
            try await fill(platform, bystander)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await footprint(pool, platform, tenant.id) == [1, 1, 5, 1])
                let deleted = try await platform.client.execute(HTTPClientRequest(
                    method: .delete, url: platform.url("provisioning") + "/v1/projects/\(tenant.id.uuidString.lowercased())",
                    headers: platform.tokenHeaders))
                #expect(deleted.status == 202)
                #expect(try await platform.waitForProject(tenant.id, in: [.deleted]).status == .deleted)
                #expect(try await footprint(pool, platform, tenant.id) == [0, 0, 0, 0])
                #expect(try await footprint(pool, platform, bystander.id) == [1, 1, 5, 1])
                let kept = try await platform.storageCall(.get, "/object/files/dir/4.bin", key: bystander.keys.secret)
                #expect(kept.status == 200 && kept.body.count == 5000)
                // The removed project's keys reach nothing any more.
                let after = try await platform.storageCall(.get, "/object/files/dir/4.bin", key: tenant.keys.secret)
                #expect(after.status == 401 || after.status == 404)
            }
        }
    }

    @Test("a removal stopped half-way through the files completes when asked again; again after that is 404, which the saga counts as done")
    func removalRepeats() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("slr")
            try await fill(platform, tenant)
            let directory = platform.storageRoot.appendingPathComponent(tenant.id.uuidString.lowercased())
            // A crash half-way through removing the directory: some version files gone, the rows
            // (whose transaction never committed) all still there.
            let objects = directory.appendingPathComponent("objects")
            for name in try FileManager.default.contentsOfDirectory(atPath: objects.path).sorted().prefix(3) {
                try FileManager.default.removeItem(at: objects.appendingPathComponent(name))
            }
            let path = platform.url("storage") + "/internal/v1/tenants/\(tenant.id.uuidString.lowercased())"
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await footprint(pool, platform, tenant.id) == [1, 1, 5, 1])
                let removed = try await platform.client.execute(HTTPClientRequest(method: .delete, url: path, headers: platform.tokenHeaders))
                #expect(removed.status == 204)
                #expect(try await footprint(pool, platform, tenant.id) == [0, 0, 0, 0])
                let again = try await platform.client.execute(HTTPClientRequest(method: .delete, url: path, headers: platform.tokenHeaders))
                #expect(again.status == 404)
            }
        }
    }

    @Test("a registration that died after making its directory but before its row committed: the compensating DELETE (404) removes the directory too")
    func removalWithoutRow() async throws {
        try await withTestPlatform { platform, url in
            // What a SIGKILL between the directory and the commit leaves: a directory, no row.
            let tenant = UUID()
            let directory = platform.storageRoot.appendingPathComponent(tenant.uuidString.lowercased())
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("objects"), withIntermediateDirectories: true)
            let path = platform.url("storage") + "/internal/v1/tenants/\(tenant.uuidString.lowercased())"
            let removed = try await platform.client.execute(HTTPClientRequest(method: .delete, url: path, headers: platform.tokenHeaders))
            #expect(removed.status == 404)
            #expect(!FileManager.default.fileExists(atPath: directory.path))
        }
    }
}
