import Crypto
import Foundation
import HTTPClient
import Hummingbird
import Postgres
@testable import Storage
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Resumable uploads (TUS 1.0) on `/storage/v1/upload/resumable`, on the real services and
/// PostgreSQL: what tuspy and tus-js-client send (docs/protocols/storage-reference.md §6), the
/// object committed only with its last byte, under the same limits and policies as a REST
/// upload. tuspy itself runs against it in deploy/scripts/sdk/test_resumable.py.
@Suite("Resumable uploads", .serialized)
struct ResumableUploadTests {
    typealias Answer = StorageAnswer

    /// A TUS request: `Tus-Resumable: 1.0.0` unless `version` says otherwise.
    func tus(_ platform: TestPlatform, _ method: HTTPMethod, _ path: String = "/upload/resumable", key: String?, bearer: String? = nil,
             body: [UInt8]? = nil, headers extra: [(String, String)] = [], version: String? = "1.0.0") async throws -> Answer {
        var headers = extra
        if let version { headers.append(("Tus-Resumable", version)) }
        return try await platform.storageCall(method, path, key: key, bearer: bearer, body: body, headers: headers)
    }

    static func metadata(_ pairs: [String: String]) -> String {
        pairs.map { $0.key + " " + Data($0.value.utf8).base64EncodedString() }.joined(separator: ",")
    }

    /// Creates an upload of `length` bytes for `bucket/name`; the answer.
    func create(_ platform: TestPlatform, _ key: String, bearer: String? = nil, _ bucket: String, _ name: String, length: Int,
                type: String = "application/octet-stream", upsert: Bool = false, extra: [String: String] = [:],
                body: [UInt8]? = nil) async throws -> Answer {
        var pairs = ["bucketName": bucket, "objectName": name, "contentType": type, "cacheControl": "60"]
        pairs.merge(extra) { _, new in new }
        var headers = [("Upload-Length", String(length)), ("Upload-Metadata", Self.metadata(pairs)), ("x-upsert", upsert ? "true" : "false")]
        if body != nil { headers.append(("Content-Type", "application/offset+octet-stream")) }
        return try await tus(platform, .post, key: key, bearer: bearer, body: body, headers: headers)
    }

    /// The path under `/storage/v1` of a created upload (its relative `Location`).
    static func path(_ created: Answer) throws -> String {
        let location = try #require(created.headers["Location"])
        #expect(location.hasPrefix("/storage/v1/upload/resumable/"))
        return String(location.dropFirst("/storage/v1".count))
    }

    func patch(_ platform: TestPlatform, _ key: String, bearer: String? = nil, _ path: String, offset: Int, _ bytes: [UInt8],
               type: String = "application/offset+octet-stream") async throws -> Answer {
        try await tus(platform, .patch, path, key: key, bearer: bearer, body: bytes,
                      headers: [("Upload-Offset", String(offset)), ("Content-Type", type)])
    }

    func bucket(_ platform: TestPlatform, _ secret: String, _ id: String, public isPublic: Bool = false, extra: [String: Any] = [:]) async throws {
        var body: [String: Any] = ["name": id, "public": isPublic]
        body.merge(extra) { _, new in new }
        #expect(try await platform.storageCall(.post, "/bucket", key: secret, json: body).status == 200)
    }

    static func random(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    static func files(_ platform: TestPlatform, _ tenant: UUID, _ folder: String) -> [String] {
        let url = platform.storageRoot.appendingPathComponent(tenant.uuidString.lowercased()).appendingPathComponent(folder)
        return ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
    }

    static func fileSize(_ platform: TestPlatform, _ tenant: UUID, _ path: String) -> Int? {
        let id = String(path.split(separator: "/").last ?? "")
        let url = platform.storageRoot.appendingPathComponent(tenant.uuidString.lowercased()).appendingPathComponent("resumable/" + id)
        return (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? nil
    }

    // MARK: The protocol

    @Test("create, PATCH in chunks, HEAD's durable offset, 409/412/413/415 refusals, and the object only with its last byte")
    func chunks() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("tus")
            let secret = tenant.keys.secret
            try await bucket(platform, secret, "files")
            let bytes = Self.random(300_000)

            let options = try await tus(platform, .options, key: nil, version: nil)
            #expect(options.status == 204 && options.headers["Tus-Version"] == "1.0.0")
            #expect(options.headers["Tus-Extension"]?.contains("creation-with-upload") == true && options.headers["Tus-Max-Size"] != nil)

            let created = try await create(platform, secret, "files", "dir/a.bin", length: bytes.count)
            #expect(created.status == 201 && created.headers["Tus-Resumable"] == "1.0.0" && created.headers["Upload-Expires"] != nil)
            let path = try Self.path(created)
            #expect(try await platform.storageCall(.get, "/object/info/files/dir/a.bin", key: secret).status == 404)

            let head = try await tus(platform, .head, path, key: secret)
            #expect(head.status == 200 && head.headers["Upload-Offset"] == "0" && head.headers["Upload-Length"] == "300000")
            #expect(head.headers["Cache-Control"] == "no-store" && head.headers["Upload-Metadata"]?.contains("bucketName ") == true)

            let first = try await patch(platform, secret, path, offset: 0, Array(bytes[0..<100_000]))
            #expect(first.status == 204 && first.headers["Upload-Offset"] == "100000" && first.headers["Tus-Complete"] == nil)
            #expect(Self.fileSize(platform, tenant.id, path) == 100_000)
            // The same chunk again: the offset has moved on.
            let again = try await patch(platform, secret, path, offset: 0, Array(bytes[0..<100_000]))
            #expect(again.status == 409 && String(decoding: again.body, as: UTF8.self) == "Upload-Offset conflict\n")
            #expect(try await patch(platform, secret, path, offset: 100_000, [1], type: "application/octet-stream").status == 415)
            let noVersion = try await tus(platform, .patch, path, key: secret, body: [1],
                                          headers: [("Upload-Offset", "100000"), ("Content-Type", "application/offset+octet-stream")], version: nil)
            #expect(noVersion.status == 412)
            #expect(try await tus(platform, .patch, path, key: secret, body: [1], headers: [("Content-Type", "application/offset+octet-stream")]).status == 403)
            #expect(try await patch(platform, secret, path, offset: -1, [1]).status == 400)
            // Past Upload-Length: refused whole; the durable offset and the file stay as they were.
            let beyond = try await patch(platform, secret, path, offset: 100_000, Array(repeating: 7, count: 200_001))
            #expect(beyond.status == 413)
            #expect(try await tus(platform, .head, path, key: secret).headers["Upload-Offset"] == "100000")
            #expect(Self.fileSize(platform, tenant.id, path) == 100_000)

            // What a crash between a PATCH's fsync and its row's update leaves: bytes past the
            // recorded offset. HEAD does not count them, and the next PATCH writes over them.
            let partial = platform.storageRoot.appendingPathComponent(tenant.id.uuidString.lowercased())
                .appendingPathComponent("resumable/" + String(path.split(separator: "/").last ?? ""))
            let handle = try FileHandle(forWritingTo: partial)
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(repeating: 0xEE, count: 5000))
            try handle.close()
            #expect(Self.fileSize(platform, tenant.id, path) == 105_000)
            #expect(try await tus(platform, .head, path, key: secret).headers["Upload-Offset"] == "100000")
            #expect(try await patch(platform, secret, path, offset: 100_000, Array(bytes[100_000..<200_000])).headers["Upload-Offset"] == "200000")
            #expect(Self.fileSize(platform, tenant.id, path) == 200_000)
            #expect(try await platform.storageCall(.get, "/object/info/files/dir/a.bin", key: secret).status == 404)
            let last = try await patch(platform, secret, path, offset: 200_000, Array(bytes[200_000...]))
            #expect(last.status == 204 && last.headers["Upload-Offset"] == "300000" && last.headers["Tus-Complete"] == "1")

            let fetched = try await platform.storageCall(.get, "/object/files/dir/a.bin", key: secret)
            #expect(fetched.status == 200 && fetched.body == bytes)
            #expect(fetched.headers["ETag"] == "\"" + Self.sha256(bytes) + "\"" && fetched.headers["Cache-Control"] == "max-age=60")
            // The upload is gone with its commit; nothing is left beside the object's one file.
            #expect(try await tus(platform, .head, path, key: secret).status == 404)
            #expect(try await patch(platform, secret, path, offset: 300_000, []).status == 404)
            #expect(Self.files(platform, tenant.id, "resumable").isEmpty && Self.files(platform, tenant.id, "uploads").isEmpty)
            #expect(Self.files(platform, tenant.id, "objects").count == 1)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await pool.scalar("SELECT used_bytes FROM storage.tenants WHERE id = \(tenant.id)") == 300_000)
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM storage.resumable_uploads") == 0)
            }
            // Ids that name nothing.
            #expect(try await tus(platform, .head, "/upload/resumable/" + UUID().uuidString.lowercased(), key: secret).status == 404)
            #expect(try await tus(platform, .head, "/upload/resumable/not-an-id", key: secret).status == 404)

            // creation-with-upload: the whole object in the POST; an empty object on the POST alone.
            let small = Self.random(5000)
            let withBody = try await create(platform, secret, "files", "inline.bin", length: small.count, body: small)
            #expect(withBody.status == 201 && withBody.headers["Upload-Offset"] == "5000" && withBody.headers["Tus-Complete"] == "1")
            #expect(try await platform.storageCall(.get, "/object/files/inline.bin", key: secret).body == small)
            let empty = try await create(platform, secret, "files", "empty.bin", length: 0)
            #expect(empty.status == 201 && empty.headers["Tus-Complete"] == "1")
            let emptyInfo = try await platform.storageCall(.get, "/object/info/files/empty.bin", key: secret)
            #expect(emptyInfo.status == 200 && emptyInfo.json["size"] as? Int == 0)
        }
    }

    @Test("bad creations are clear 4xx: no version, no length, bad metadata, bad names, unknown buckets")
    func badCreations() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("tub")
            let secret = tenant.keys.secret
            try await bucket(platform, secret, "files")
            let good = Self.metadata(["bucketName": "files", "objectName": "a.bin"])
            func post(_ headers: [(String, String)], version: String? = "1.0.0") async throws -> Int {
                try await tus(platform, .post, key: secret, headers: headers, version: version).status
            }
            #expect(try await post([("Upload-Length", "1"), ("Upload-Metadata", good)], version: nil) == 412)
            #expect(try await post([("Upload-Length", "1"), ("Upload-Metadata", good)], version: "0.2.2") == 412)
            #expect(try await post([("Upload-Metadata", good)]) == 400)
            #expect(try await post([("Upload-Defer-Length", "1"), ("Upload-Metadata", good)]) == 400)
            for length in ["-1", "abc", "1.5", "99999999999999999999"] {
                #expect(try await post([("Upload-Length", length), ("Upload-Metadata", good)]) == 400, "\(length)")
            }
            #expect(try await post([("Upload-Length", "1")]) == 400)
            for metadata in ["bucketName !!!", "bucketName Zm9v,bucketName Zm9v", "a b c", ",", "objectName YS5iaW4="] {
                #expect(try await post([("Upload-Length", "1"), ("Upload-Metadata", metadata)]) == 400, "\(metadata)")
            }
            let traversal = try await create(platform, secret, "files", "../escape", length: 1)
            #expect(traversal.status == 422)
            #expect(try await create(platform, secret, "missing", "a.bin", length: 1).status == 404)
            #expect(try await create(platform, secret, "files", "a.bin", length: 1, extra: ["metadata": "[1]"]).status == 400)
            #expect(try await create(platform, secret, "files", "a.bin", length: 1, extra: ["cacheControl": "\"x"]).status == 400)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM storage.resumable_uploads") == 0)
            }
            #expect(Self.files(platform, tenant.id, "resumable").isEmpty)
        }
    }

    @Test("the bucket's size limit and MIME types, and the project's quota: 413/415 at creation and at the commit, nothing left")
    func limits() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("tul")
            let secret = tenant.keys.secret
            try await bucket(platform, secret, "small", extra: ["file_size_limit": 1000])
            try await bucket(platform, secret, "images", extra: ["allowed_mime_types": ["image/*"]])
            try await bucket(platform, secret, "open")
            #expect(try await create(platform, secret, "small", "big.bin", length: 1001).status == 413)
            let fits = try await create(platform, secret, "small", "fits.bin", length: 1000)
            #expect(fits.status == 201)
            let textInImages = try await create(platform, secret, "images", "a.txt", length: 1, type: "text/plain")
            #expect(textInImages.status == 415 && String(decoding: textInImages.body, as: UTF8.self) == "mime type text/plain is not supported\n")
            let png = try await create(platform, secret, "images", "a.png", length: 1, type: "image/png")
            #expect(png.status == 201)
            for created in [fits, png] { #expect(try await tus(platform, .delete, try Self.path(created), key: secret).status == 204) }

            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                try await pool.query("UPDATE storage.tenants SET quota_bytes = 500000 WHERE id = \(tenant.id)")
                let count = { @Sendable () async throws -> Int in
                    try await pool.scalar("SELECT count(*)::int8 FROM storage.resumable_uploads WHERE tenant_id = \(tenant.id)")
                }
                // Beyond the quota: refused before a byte is taken.
                let over = try await create(platform, secret, "open", "over.bin", length: 500_001)
                #expect(over.status == 413 && String(decoding: over.body, as: UTF8.self).contains("quota"))
                #expect(try await count() == 0)
                // Two uploads that would pass it together: the second is refused while the first lives.
                let first = try await create(platform, secret, "open", "first.bin", length: 300_000)
                #expect(first.status == 201)
                #expect(try await create(platform, secret, "open", "second.bin", length: 300_000).status == 413)
                // The quota lowered under a live upload: its commit is refused, and nothing is left.
                try await pool.query("UPDATE storage.tenants SET quota_bytes = 100000 WHERE id = \(tenant.id)")
                let path = try Self.path(first)
                let refused = try await patch(platform, secret, path, offset: 0, Self.random(300_000))
                #expect(refused.status == 413)
                #expect(try await platform.storageCall(.get, "/object/info/open/first.bin", key: secret).status == 404)
                #expect(try await tus(platform, .head, path, key: secret).status == 404)
                #expect(try await count() == 0)
                #expect(try await pool.scalar("SELECT used_bytes FROM storage.tenants WHERE id = \(tenant.id)") == 0)
                #expect(Self.files(platform, tenant.id, "objects").isEmpty && Self.files(platform, tenant.id, "uploads").isEmpty)
                #expect(Self.files(platform, tenant.id, "resumable").isEmpty)
            }
        }
    }

    @Test("x-upsert: an existing key is 409 without it and replaced with it; a key taken during the upload is 409 at the commit")
    func upsert() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("tuu")
            let secret = tenant.keys.secret
            try await bucket(platform, secret, "files")
            #expect(try await platform.storageCall(.post, "/object/files/taken.bin", key: secret, body: [1, 2, 3],
                                                   headers: [("Content-Type", "application/octet-stream")]).status == 200)
            let conflict = try await create(platform, secret, "files", "taken.bin", length: 4)
            #expect(conflict.status == 409 && String(decoding: conflict.body, as: UTF8.self) == "The resource already exists\n")
            let replacing = try await create(platform, secret, "files", "taken.bin", length: 4, upsert: true)
            #expect(replacing.status == 201)
            #expect(try await patch(platform, secret, try Self.path(replacing), offset: 0, [4, 5, 6, 7]).status == 204)
            #expect(try await platform.storageCall(.get, "/object/files/taken.bin", key: secret).body == [4, 5, 6, 7])
            #expect(Self.files(platform, tenant.id, "objects").count == 1)

            // Someone else takes the name while the upload runs (no upsert): 409 at the end, nothing left.
            let racing = try await create(platform, secret, "files", "race.bin", length: 2)
            #expect(try await platform.storageCall(.post, "/object/files/race.bin", key: secret, body: [9],
                                                   headers: [("Content-Type", "application/octet-stream")]).status == 200)
            #expect(try await patch(platform, secret, try Self.path(racing), offset: 0, [1, 2]).status == 409)
            #expect(try await platform.storageCall(.get, "/object/files/race.bin", key: secret).body == [9])
            #expect(Self.files(platform, tenant.id, "resumable").isEmpty && Self.files(platform, tenant.id, "uploads").isEmpty)
            #expect(Self.files(platform, tenant.id, "objects").count == 2)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                #expect(try await pool.scalar("SELECT used_bytes FROM storage.tenants WHERE id = \(tenant.id)") == 5)
            }
        }
    }

    @Test("who may: the secret key, a user for their own upload (owning the object), never the publishable key alone, another user or another project")
    func access() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("tua")
            let other = try await platform.provisionTenant("tuo")
            let (secret, publishable) = (tenant.keys.secret, tenant.keys.publishable)
            try await bucket(platform, secret, "private")
            try await bucket(platform, secret, "pub", public: true)
            func user(_ email: String) async throws -> (token: String, id: String) { try await platform.signUpUser(tenant, email) }
            let ada = try await user("ada@example.test"), bob = try await user("bob@example.test")

            // The publishable key alone writes nowhere.
            #expect(try await create(platform, publishable, "private", "a.bin", length: 1).status == 404)
            let anonymous = try await create(platform, publishable, "pub", "a.bin", length: 1)
            #expect(anonymous.status == 403)

            // Ada's upload: hers and the project's (secret key) to see; nobody else's.
            let created = try await create(platform, publishable, bearer: ada.token, "private", "ada.bin", length: 4)
            #expect(created.status == 201)
            let path = try Self.path(created)
            #expect(try await tus(platform, .head, path, key: publishable, bearer: ada.token).status == 200)
            #expect(try await tus(platform, .head, path, key: secret).status == 200)
            #expect(try await tus(platform, .head, path, key: publishable, bearer: bob.token).status == 404)
            #expect(try await tus(platform, .head, path, key: publishable).status == 404)
            #expect(try await patch(platform, publishable, bearer: bob.token, path, offset: 0, [1]).status == 404)
            #expect(try await tus(platform, .delete, path, key: publishable, bearer: bob.token).status == 404)
            // Another project: its secret key finds nothing, and its key with this project's token is refused.
            #expect(try await tus(platform, .head, path, key: other.keys.secret).status == 404)
            #expect(try await patch(platform, other.keys.secret, path, offset: 0, [1]).status == 404)
            #expect(try await tus(platform, .delete, path, key: other.keys.secret).status == 404)
            #expect(try await tus(platform, .head, path, key: other.keys.publishable, bearer: ada.token).status == 403)

            #expect(try await patch(platform, publishable, bearer: ada.token, path, offset: 0, [1, 2, 3, 4]).status == 204)
            #expect(try await platform.storageCall(.get, "/object/private/ada.bin", key: publishable, bearer: ada.token).body == [1, 2, 3, 4])
            #expect(try await platform.storageCall(.get, "/object/private/ada.bin", key: publishable, bearer: bob.token).status == 404)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                let owner: UUID? = try await pool.query("SELECT owner FROM storage.objects WHERE tenant_id = \(tenant.id) AND name = 'ada.bin'")
                    .single().decode("owner")
                #expect(owner?.uuidString.lowercased() == ada.id.lowercased())
            }
            // Bob cannot replace Ada's object through TUS either.
            #expect(try await create(platform, publishable, bearer: bob.token, "private", "ada.bin", length: 1, upsert: true).status == 403)
        }
    }

    @Test("termination, expiry (410, listed for the consistency check), and the tenant's removal take the uploads with them")
    func terminationAndExpiry() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("tut")
            let secret = tenant.keys.secret
            try await bucket(platform, secret, "files")
            let terminated = try Self.path(try await create(platform, secret, "files", "t.bin", length: 10))
            #expect(try await patch(platform, secret, terminated, offset: 0, [1, 2, 3]).status == 204)
            #expect(try await tus(platform, .delete, terminated, key: secret).status == 204)
            #expect(try await tus(platform, .head, terminated, key: secret).status == 404)
            #expect(try await tus(platform, .delete, terminated, key: secret).status == 404)
            #expect(Self.files(platform, tenant.id, "resumable").isEmpty)

            let expiring = try Self.path(try await create(platform, secret, "files", "e.bin", length: 10))
            let live = try Self.path(try await create(platform, secret, "files", "l.bin", length: 10))
            let expiringID = try #require(UUID(uuidString: String(expiring.split(separator: "/").last ?? "")))
            let liveID = try #require(UUID(uuidString: String(live.split(separator: "/").last ?? "")))
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                // Its window passed (set in the database, whose clock decides; no waiting).
                try await pool.query("UPDATE storage.resumable_uploads SET expires_at = now() - interval '1 second' WHERE id = \(expiringID)")
                let gone = try await tus(platform, .head, expiring, key: secret)
                #expect(gone.status == 410)
                let patched = try await patch(platform, secret, expiring, offset: 0, [1])
                #expect(patched.status == 410 && String(decoding: patched.body, as: UTF8.self) == "The file for this url no longer exists\n")
                #expect(try await tus(platform, .head, live, key: secret).status == 200)

                // What the consistency check calls.
                let store = ResumableUploadStore(pool: pool)
                let files = ResumableFiles(files: ObjectFiles(root: platform.storageRoot))
                #expect(try await store.expired(tenant: tenant.id) == [expiringID])
                #expect(try await store.liveIDs(tenant: tenant.id) == [expiringID, liveID])
                #expect(Set(try await files.inventory(tenant: tenant.id).map(\.id)) == [expiringID, liveID])
                for id in try await store.removeExpired(tenant: tenant.id) { await files.remove(id, tenant: tenant.id) }
                #expect(try await store.expired(tenant: tenant.id).isEmpty)
                #expect(try await tus(platform, .head, expiring, key: secret).status == 404)
                #expect(try await files.inventory(tenant: tenant.id).map(\.id) == [liveID])

                // The tenant's removal cascades to its uploads.
                try await pool.query("DELETE FROM storage.tenants WHERE id = \(tenant.id)")
                #expect(try await pool.scalar("SELECT count(*)::int8 FROM storage.resumable_uploads WHERE tenant_id = \(tenant.id)") == 0)
            }
        }
    }

    @Test("a connection cut mid-PATCH keeps exactly the durable bytes: HEAD and the file agree, and the upload resumes to the right bytes")
    func cutConnection() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("tuc")
            let secret = tenant.keys.secret
            try await bucket(platform, secret, "files")
            let bytes = Self.random(1_000_000)
            let path = try Self.path(try await create(platform, secret, "files", "cut.bin", length: bytes.count))
            let port = Int(platform.url("storage").split(separator: ":").last ?? "") ?? 0
            try Self.sendAndHangUp(port: port, path: "/storage/v1" + path, key: secret, head: [
                "Tus-Resumable: 1.0.0", "Upload-Offset: 0", "Content-Type: application/offset+octet-stream", "Content-Length: \(bytes.count)",
            ], body: Array(bytes[0..<400_000]))
            // The server notices the closed connection and records what arrived (state, not time).
            var offset = 0
            #expect(await eventually {
                offset = Int((try? await tus(platform, .head, path, key: secret))?.headers["Upload-Offset"] ?? "") ?? 0
                return offset > 0
            })
            #expect(offset <= 400_000 && Self.fileSize(platform, tenant.id, path) == offset)
            let rest = try await patch(platform, secret, path, offset: offset, Array(bytes[offset...]))
            #expect(rest.status == 204 && rest.headers["Tus-Complete"] == "1")
            let fetched = try await platform.storageCall(.get, "/object/files/cut.bin", key: secret)
            #expect(fetched.body == bytes && fetched.headers["ETag"] == "\"" + Self.sha256(bytes) + "\"")
        }
    }

    @Test("two PATCHes of one upload at once: one writer at a time, the second finds the offset moved (409), the file and HEAD agree")
    func concurrentPatches() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("tup")
            let secret = tenant.keys.secret
            try await bucket(platform, secret, "files")
            let bytes = Self.random(400_000)
            let path = try Self.path(try await create(platform, secret, "files", "both.bin", length: bytes.count))
            async let one = patch(platform, secret, path, offset: 0, Array(bytes[0..<200_000]))
            async let two = patch(platform, secret, path, offset: 0, Array(bytes[0..<200_000]))
            let statuses = try await [one.status, two.status].sorted()
            #expect(statuses == [204, 409])
            #expect(try await tus(platform, .head, path, key: secret).headers["Upload-Offset"] == "200000")
            #expect(Self.fileSize(platform, tenant.id, path) == 200_000)
            #expect(try await patch(platform, secret, path, offset: 200_000, Array(bytes[200_000...])).headers["Tus-Complete"] == "1")
            #expect(try await platform.storageCall(.get, "/object/files/both.bin", key: secret).body == bytes)
        }
    }

    @Test("SIGKILL of storage mid-PATCH: the restarted service reports the durable offset, and the upload resumes to the right bytes")
    func crashMidPatch() async throws {
        try await withTestPlatform(.processes) { platform, _ in
            let tenant = try await platform.provisionTenant("tuk")
            let secret = tenant.keys.secret
            try await bucket(platform, secret, "files")
            let bytes = Self.random(600_000)
            let path = try Self.path(try await create(platform, secret, "files", "crash.bin", length: bytes.count))
            #expect(try await patch(platform, secret, path, offset: 0, Array(bytes[0..<100_000])).status == 204)
            // A PATCH under way (its connection open, half its body sent) when the service dies.
            let port = Int(platform.url("storage").split(separator: ":").last ?? "") ?? 0
            let connection = try Self.sendPart(port: port, path: "/storage/v1" + path, key: secret, head: [
                "Tus-Resumable: 1.0.0", "Upload-Offset: 100000", "Content-Type: application/offset+octet-stream", "Content-Length: 500000",
            ], body: Array(bytes[100_000..<300_000]))
            defer { close(connection) }
            #expect(await eventually { (Self.fileSize(platform, tenant.id, path) ?? 0) > 100_000 })
            try await platform.kill("storage")
            try await platform.start(["storage"])
            // Its bytes were never recorded: HEAD says where the durable ones end.
            let head = try await tus(platform, .head, path, key: secret)
            #expect(head.status == 200 && head.headers["Upload-Offset"] == "100000")
            let rest = try await patch(platform, secret, path, offset: 100_000, Array(bytes[100_000...]))
            #expect(rest.status == 204 && rest.headers["Tus-Complete"] == "1")
            let fetched = try await platform.storageCall(.get, "/object/files/crash.bin", key: secret)
            #expect(fetched.body == bytes && fetched.headers["ETag"] == "\"" + Self.sha256(bytes) + "\"")
        }
    }

    /// Sends a request's head and part of its body, then closes the connection.
    static func sendAndHangUp(port: Int, path: String, key: String, head lines: [String], body: [UInt8]) throws {
        close(try sendPart(port: port, path: path, key: key, head: lines, body: body))
    }

    /// Sends a PATCH's head and part of its body; the connection stays open (the caller closes it).
    static func sendPart(port: Int, path: String, key: String, head lines: [String], body: [UInt8]) throws -> Int32 {
        let fd = try RawSocket.connect(port: port)
        let head = "PATCH \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\napikey: \(key)\r\nAuthorization: Bearer \(key)\r\n"
            + lines.map { $0 + "\r\n" }.joined() + "\r\n"
        do {
            try RawSocket.send(fd, Array(head.utf8) + body)
        } catch {
            close(fd)
            throw error
        }
        return fd
    }
}

/// The TUS headers and metadata, parsed without a server.
@Suite("Resumable upload headers")
struct ResumableHeaderTests {
    @Test("Upload-Metadata as tuspy and tus-js-client send it, and what is refused")
    func metadata() throws {
        let parsed = try TusHeaders.metadata("bucketName YXZhdGFycw==,objectName Zm9sZGVyL2EgYi50eHQ=,contentType dGV4dC9wbGFpbg==,cacheControl ,flag")
        #expect(parsed == ["bucketName": "avatars", "objectName": "folder/a b.txt", "contentType": "text/plain", "cacheControl": "", "flag": ""])
        #expect(try TusHeaders.metadata("a Yg==, c ZA==") == ["a": "b", "c": "d"])
        for bad in ["", " ", "a Yg==,a Yg==", "a b c", "a Yg=", "a @@@@", "é Yg==", "a Yg==,", "a /w=="] {
            #expect(throws: TusError.self, "\(bad)") { try TusHeaders.metadata(bad) }
        }
        let pairs = ["bucketName": "b", "objectName": "o", "cacheControl": ""]
        #expect(try TusHeaders.metadata(TusHeaders.encodeMetadata(pairs)) == pairs)
    }

    @Test("integer headers: non-negative decimal only")
    func integers() throws {
        #expect(try TusHeaders.integer([TusHeaders.uploadOffset: "0"], TusHeaders.uploadOffset) == 0)
        #expect(try TusHeaders.integer([TusHeaders.uploadOffset: " 42 "], TusHeaders.uploadOffset) == 42)
        #expect(try TusHeaders.integer([:], TusHeaders.uploadOffset) == nil)
        for bad in ["-1", "+1", "1e3", "0x10", "", "1 2", "9999999999999999999"] {
            #expect(throws: TusError.self, "\(bad)") { try TusHeaders.integer([TusHeaders.uploadOffset: bad], TusHeaders.uploadOffset) }
        }
        #expect(throws: TusError.self) { try TusHeaders.requireVersion([:]) }
        #expect(throws: TusError.self) { try TusHeaders.requireVersion([TusHeaders.tusResumable: "0.2.2"]) }
        try TusHeaders.requireVersion([TusHeaders.tusResumable: "1.0.0"])
        #expect(TusHeaders.isChunk([.contentType: "Application/Offset+Octet-Stream; x=1"]))
        #expect(!TusHeaders.isChunk([.contentType: "application/octet-stream"]))
    }

    @Test("Upload-Metadata to an object's attributes, checked as a REST upload's")
    func attributes() throws {
        let metadata = try UploadMetadata(["bucketName": "b", "objectName": "dir/x.png", "contentType": "image/png", "cacheControl": "3600",
                                           "metadata": "{\"k\":1}"])
        #expect(metadata.cacheControl == "max-age=3600" && metadata.contentType == "image/png" && metadata.userMetadata?.isObject == true)
        let defaults = try UploadMetadata(["bucketName": "b", "objectName": "x"])
        #expect(defaults.contentType == "application/octet-stream" && defaults.cacheControl == "no-cache" && defaults.userMetadata == nil)
        #expect(throws: (any Error).self) { try UploadMetadata(["objectName": "x"]) }
        #expect(throws: (any Error).self) { try UploadMetadata(["bucketName": "b"]) }
        #expect(throws: StorageError.self) { try UploadMetadata(["bucketName": "b", "objectName": "a/../b"]) }
        #expect(throws: TusError.self) { try UploadMetadata(["bucketName": "b", "objectName": "x", "metadata": "[]"]) }
        #expect(throws: TusError.self) { try UploadMetadata(["bucketName": "b", "objectName": "x", "contentType": "a\u{1}b"]) }
    }
}

/// `ResumableFiles` on a scratch directory: what a PATCH's bytes leave on disk.
@Suite("Resumable upload files")
struct ResumableFilesTests {
    struct Cut: Error {}

    static func body(_ chunks: [[UInt8]], thenFail: Bool = false) -> AsyncThrowingStream<ByteBuffer, any Error> {
        AsyncThrowingStream { continuation in
            for chunk in chunks { continuation.yield(ByteBuffer(bytes: chunk)) }
            continuation.finish(throwing: thenFail ? Cut() : nil)
        }
    }

    @Test("append keeps what arrived (a cut body too), refuses more than the limit whole, and cuts a longer file back to the offset first")
    func append() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("resumable-files-" + UUID().uuidString)
        defer { try? FileManager.default.removeItem(at: root) }
        let tenant = UUID()
        try FileManager.default.createDirectory(at: root.appendingPathComponent(tenant.uuidString.lowercased()), withIntermediateDirectories: true)
        let objectFiles = ObjectFiles(root: root)
        let files = ResumableFiles(files: objectFiles)
        let id = UUID()
        try await files.create(id, tenant: tenant)
        func contents() throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: files.path(id, tenant: tenant)))) }

        let first = try await files.append(Self.body([[1, 2, 3], Array(4...10)]), id, tenant: tenant, at: 0, limit: 100)
        #expect(try first.written == 10 && first.interruption == nil && contents() == Array(1...10))
        await #expect(throws: ObjectFiles.TooLarge.self) {
            _ = try await files.append(Self.body([Array(repeating: 0, count: 4), Array(repeating: 0, count: 4)]), id, tenant: tenant, at: 10, limit: 5)
        }
        #expect(try contents() == Array(1...10))
        let cut = try await files.append(Self.body([[11, 12], [13]], thenFail: true), id, tenant: tenant, at: 10, limit: 100)
        #expect(try cut.written == 3 && cut.interruption is Cut && contents() == Array(1...13))
        // The row says 5 (bytes past it were never recorded): they go before the next are written.
        let rewritten = try await files.append(Self.body([[50, 51]]), id, tenant: tenant, at: 5, limit: 100)
        #expect(try rewritten.written == 2 && contents() == [1, 2, 3, 4, 5, 50, 51])

        let staged = try await files.stage(id, tenant: tenant)
        #expect(staged.size == 7 && staged.sha256 == ResumableUploadTests.sha256([1, 2, 3, 4, 5, 50, 51]))
        #expect(FileManager.default.fileExists(atPath: objectFiles.uploadPath(upload: staged.id, tenant: tenant)))
        #expect(try await files.inventory(tenant: tenant).isEmpty)
        await #expect(throws: ObjectFiles.NotFound.self) { _ = try await files.append(Self.body([[1]]), id, tenant: tenant, at: 0, limit: 1) }
    }
}
