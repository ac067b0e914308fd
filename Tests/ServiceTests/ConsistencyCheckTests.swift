import Foundation
import HTTPClient
import Postgres
import TestSupport
import Testing

/// Storage's consistency check on the real service: the internal route and the `storage check`
/// command find files without rows, rows without files, stale uploads, a drifted quota use and
/// directories of tenants that are gone; they repair them only when asked, never touch a file
/// younger than the grace, and leave every other tenant and every sound object as it was.
@Suite("Storage consistency check", .serialized)
struct ConsistencyCheckTests {
    func consistency(_ platform: TestPlatform, _ body: [String: Any]) async throws -> [String: Any] {
        var headers = platform.tokenHeaders
        headers.add(name: "Content-Type", value: "application/json")
        let response = try await platform.client.execute(HTTPClientRequest(
            method: .post, url: platform.url("storage") + "/internal/v1/consistency", headers: headers,
            body: Array(try JSONSerialization.data(withJSONObject: body))))
        #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
        return try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    func upload(_ platform: TestPlatform, _ key: String, _ path: String, _ bytes: [UInt8]) async throws {
        let stored = try await platform.storageCall(.post, "/object/" + path, key: key, body: bytes,
                                                    headers: [("Content-Type", "application/octet-stream")])
        #expect(stored.status == 200)
    }

    /// The tenant's folder `sub` (`objects`, `uploads`) and its files.
    func folder(_ platform: TestPlatform, _ tenant: UUID, _ sub: String) -> URL {
        platform.storageRoot.appendingPathComponent(tenant.uuidString.lowercased()).appendingPathComponent(sub)
    }

    func files(_ folder: URL) -> Set<String> {
        Set((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
    }

    @Test("the route reports what is wrong, leaves files younger than the grace, repairs only on request, and touches no other tenant")
    func findsAndRepairs() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("cck")
            let bystander = try await platform.provisionTenant("ccb")
            for project in [tenant, bystander] {
                #expect(try await platform.storageCall(.post, "/bucket", key: project.keys.secret, json: ["name": "files"]).status == 200)
                try await upload(platform, project.keys.secret, "files/keep.txt", Array("keep".utf8))
            }
            try await upload(platform, tenant.keys.secret, "files/lost.txt", Array("lost!".utf8))
            let sound = try await consistency(platform, ["grace_seconds": 0])
            #expect(sound["consistent"] as? Bool == true && sound["tenants_checked"] as? Int == 2)

            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                // Break it: the bytes of lost.txt vanish; a version file and an upload file no row
                // names appear; the recorded use drifts; a directory of no tenant appears.
                let lost = try await pool.query("""
                    SELECT version FROM storage.objects WHERE tenant_id = \(tenant.id) AND name = 'lost.txt'
                    """).single().decode(at: 0, as: UUID.self)
                let objects = folder(platform, tenant.id, "objects"), uploads = folder(platform, tenant.id, "uploads")
                try FileManager.default.removeItem(at: objects.appendingPathComponent(lost.uuidString.lowercased()))
                let orphan = UUID().uuidString.lowercased(), stale = UUID().uuidString.lowercased()
                try Data("orphan".utf8).write(to: objects.appendingPathComponent(orphan))
                try FileManager.default.createDirectory(at: uploads, withIntermediateDirectories: true)
                try Data("half an upl".utf8).write(to: uploads.appendingPathComponent(stale))
                try await pool.query("UPDATE storage.tenants SET used_bytes = used_bytes + 7 WHERE id = \(tenant.id)")
                // A resumable upload abandoned past its expiry, and a resumable file with no upload.
                let metadata = ["bucketName": "files", "objectName": "later.bin"]
                    .map { $0.key + " " + Data($0.value.utf8).base64EncodedString() }.joined(separator: ",")
                let started = try await platform.storageCall(.post, "/upload/resumable", key: tenant.keys.secret, headers: [
                    ("Tus-Resumable", "1.0.0"), ("Upload-Length", "10"), ("Upload-Metadata", metadata)])
                #expect(started.status == 201)
                let abandoned = try #require(started.headers["Location"]?.split(separator: "/").last.map(String.init))
                try await pool.query("UPDATE storage.resumable_uploads SET expires_at = now() - interval '1 minute' WHERE tenant_id = \(tenant.id)")
                let resumable = folder(platform, tenant.id, "resumable"), stray = UUID().uuidString.lowercased()
                try Data("partial".utf8).write(to: resumable.appendingPathComponent(stray))
                // S3 multipart: a part file its upload's rows do not name, and a directory of no upload.
                let multipart = folder(platform, tenant.id, "multipart"), upload = UUID()
                try await pool.query("""
                    INSERT INTO storage.s3_multipart_uploads (id, tenant_id, bucket_id, name, content_type, cache_control)
                    VALUES (\(upload), \(tenant.id), 'files', 'big.bin', 'application/octet-stream', 'no-cache')
                    """)
                let strayPart = UUID().uuidString.lowercased(), goneUpload = UUID().uuidString.lowercased()
                for directory in [upload.uuidString.lowercased(), goneUpload] {
                    try FileManager.default.createDirectory(at: multipart.appendingPathComponent(directory), withIntermediateDirectories: true)
                }
                try Data("part".utf8).write(to: multipart.appendingPathComponent(upload.uuidString.lowercased()).appendingPathComponent(strayPart))
                try Data("part".utf8).write(to: multipart.appendingPathComponent(goneUpload).appendingPathComponent(UUID().uuidString.lowercased()))
                let gone = UUID().uuidString.lowercased()
                try FileManager.default.createDirectory(at: platform.storageRoot.appendingPathComponent(gone).appendingPathComponent("objects"),
                                                        withIntermediateDirectories: true)
                let bystanderFiles = files(folder(platform, bystander.id, "objects"))

                // With the default grace, the new files are left alone: they could be an upload
                // between its file and its row. The row without its bytes is found at once.
                let cautious = try await consistency(platform, [:])
                #expect(cautious["consistent"] as? Bool == false && cautious["repaired"] as? Bool == false)
                #expect((cautious["directories_without_tenants"] as? [String])?.isEmpty == true)
                let cautiousTenants = try #require(cautious["tenants"] as? [[String: Any]])
                #expect(cautiousTenants.count == 1 && cautiousTenants.first?["tenant"] as? String == tenant.id.uuidString.lowercased())
                #expect((cautiousTenants.first?["files_without_rows"] as? [String])?.isEmpty == true)
                #expect((cautiousTenants.first?["stale_uploads"] as? [String])?.isEmpty == true)

                // Every file judged: everything is reported, nothing is changed.
                let report = try await consistency(platform, ["grace_seconds": 0])
                let found = try #require((report["tenants"] as? [[String: Any]])?.first)
                #expect(found["files_without_rows"] as? [String] == [orphan])
                #expect(found["stale_uploads"] as? [String] == [stale])
                #expect(found["expired_resumable_uploads"] as? [String] == [abandoned])
                #expect(found["resumable_files_without_rows"] as? [String] == [stray])
                #expect(Set(found["multipart_files_without_rows"] as? [String] ?? [])
                    == [upload.uuidString.lowercased() + "/" + strayPart, goneUpload + "/"])
                let missing = try #require((found["rows_without_files"] as? [[String: Any]])?.first)
                #expect(missing["name"] as? String == "lost.txt" && missing["version"] as? String == lost.uuidString.lowercased())
                let usage = try #require(found["usage"] as? [String: Any])
                #expect(usage["recorded"] as? Int == 4 + 5 + 7 && usage["actual"] as? Int == 4 + 5)
                #expect(report["directories_without_tenants"] as? [String] == [gone])
                #expect(files(objects).contains(orphan) && files(uploads).contains(stale))

                // Repaired: the orphans go, the lost object's row goes (its bytes freed), the use
                // is the sum again; the sound object and the other tenant are as they were.
                let repaired = try await consistency(platform, ["grace_seconds": 0, "repair": true])
                #expect(repaired["repaired"] as? Bool == true && repaired["consistent"] as? Bool == false)
                #expect(!files(objects).contains(orphan) && !files(uploads).contains(stale))
                #expect(files(resumable).isEmpty)
                #expect(files(multipart) == [upload.uuidString.lowercased()])
                #expect(files(multipart.appendingPathComponent(upload.uuidString.lowercased())).isEmpty)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM storage.resumable_uploads WHERE tenant_id = \(tenant.id)") == 0)
                #expect(!FileManager.default.fileExists(atPath: platform.storageRoot.appendingPathComponent(gone).path))
                #expect(try await pool.scalar("SELECT used_bytes FROM storage.tenants WHERE id = \(tenant.id)") == 4)
                let lostNow = try await platform.storageCall(.get, "/object/files/lost.txt", key: tenant.keys.secret)
                #expect(lostNow.status == 404)
                #expect(try await platform.storageCall(.get, "/object/files/keep.txt", key: tenant.keys.secret).body == Array("keep".utf8))
                #expect(try await platform.storageCall(.get, "/object/files/keep.txt", key: bystander.keys.secret).body == Array("keep".utf8))
                #expect(files(folder(platform, bystander.id, "objects")) == bystanderFiles)
                let after = try await consistency(platform, ["grace_seconds": 0])
                #expect(after["consistent"] as? Bool == true)
            }
            // A malformed request is a 4xx, not a check.
            var headers = platform.tokenHeaders
            headers.add(name: "Content-Type", value: "application/json")
            let negative = try await platform.client.execute(HTTPClientRequest(
                method: .post, url: platform.url("storage") + "/internal/v1/consistency", headers: headers,
                body: Array(#"{"grace_seconds": -1}"#.utf8)))
            #expect(negative.status == 422)
            let unauthenticated = try await platform.client.execute(HTTPClientRequest(
                method: .post, url: platform.url("storage") + "/internal/v1/consistency", body: []))
            #expect(unauthenticated.status == 401)
        }
    }

    @Test("`storage check` reports with exit status 1, repairs with --repair, and refuses bad arguments with status 2")
    func command() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("ccm")
            #expect(try await platform.storageCall(.post, "/bucket", key: tenant.keys.secret, json: ["name": "files"]).status == 200)
            try await upload(platform, tenant.keys.secret, "files/a.txt", [1, 2, 3])
            let orphan = UUID().uuidString.lowercased()
            try Data("orphan".utf8).write(to: folder(platform, tenant.id, "objects").appendingPathComponent(orphan))

            func check(_ arguments: [String]) throws -> (status: Int32, output: [String: Any]) {
                let (status, data) = try runCommand(ServiceProcess.binaryDirectory.appendingPathComponent("storage"), ["check"] + arguments,
                                                    environment: ["DATABASE_URL": platform.databaseURL(for: "storage"), "STORAGE_ROOT": platform.storageRoot.path, "PATH": "/usr/bin:/bin",
                                                                 "INTERNAL_SERVICE_TOKEN": TestServices.internalToken])
                return (status, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
            }
            let young = try check([])
            #expect(young.status == 0 && young.output["consistent"] as? Bool == true)
            let found = try check(["--grace-seconds", "0", "--tenant", tenant.id.uuidString])
            #expect(found.status == 1)
            #expect((found.output["tenants"] as? [[String: Any]])?.first?["files_without_rows"] as? [String] == [orphan])
            #expect(files(folder(platform, tenant.id, "objects")).contains(orphan))
            let repaired = try check(["--grace-seconds", "0", "--repair"])
            #expect(repaired.status == 0 && repaired.output["repaired"] as? Bool == true)
            #expect(!files(folder(platform, tenant.id, "objects")).contains(orphan))
            #expect(try check(["--grace-seconds", "0"]).status == 0)
            #expect(try check(["--tenant", "not-a-uuid"]).status == 2)
            #expect(try check(["--sideways"]).status == 2)
            #expect(try await platform.storageCall(.get, "/object/files/a.txt", key: tenant.keys.secret).body == [1, 2, 3])
        }
    }

    @Test("kill -9 of storage mid-upload: nothing is visible after the restart (no object, no use), and the check removes the half-written upload file")
    func crashMidUpload() async throws {
        try await withTestPlatform(.processes) { platform, url in
            let tenant = try await platform.provisionTenant("cck9")
            let secret = tenant.keys.secret
            #expect(try await platform.storageCall(.post, "/bucket", key: secret, json: ["name": "files"]).status == 200)
            let port = try #require(URLComponents(string: platform.url("storage"))?.port)
            // An upload under way (its connection open, 300 kB of 1 MB sent) when the service dies.
            let connection = try RawSocket.connect(port: port)
            defer { close(connection) }
            try RawSocket.send(connection, Array(("POST /storage/v1/object/files/half.bin HTTP/1.1\r\nHost: 127.0.0.1\r\napikey: \(secret)\r\n"
                + "Authorization: Bearer \(secret)\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n").utf8)
                + Array(repeating: 7, count: 300_000))
            let uploads = folder(platform, tenant.id, "uploads")
            #expect(await eventually { files(uploads).count == 1 })
            try await platform.kill("storage")
            try await platform.start(["storage"])

            #expect(try await platform.storageCall(.get, "/object/files/half.bin", key: secret).status == 404)
            let listed = try await platform.storageCall(.post, "/object/list/files", key: secret, json: ["prefix": ""])
            #expect(listed.status == 200 && listed.list.isEmpty)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await pool.scalar("SELECT used_bytes FROM storage.tenants WHERE id = \(tenant.id)") == 0)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM storage.objects WHERE tenant_id = \(tenant.id)") == 0)
            }
            let leftover = try #require(files(uploads).first)
            let report = try await consistency(platform, ["grace_seconds": 0, "repair": true, "tenant": tenant.id.uuidString])
            #expect((report["tenants"] as? [[String: Any]])?.first?["stale_uploads"] as? [String] == [leftover])
            #expect(files(uploads).isEmpty && files(folder(platform, tenant.id, "objects")).isEmpty)
        }
    }
}
