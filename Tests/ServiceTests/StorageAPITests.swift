import Crypto
import Foundation
import HTTPClient
import Postgres
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Storage's Storage API on the real services (`/storage/v1/…`): buckets, objects streamed in
/// and out, never half-written, under each bucket's policy. storage3 itself runs against it in
/// deploy/scripts/sdk-tests.sh.
@Suite("Storage API", .serialized)
struct StorageAPITests {
    typealias Answer = StorageAnswer

    func call(_ platform: TestPlatform, _ method: HTTPMethod, _ path: String, key: String?, bearer: String? = nil,
              json: [String: Any]? = nil, body: [UInt8]? = nil, headers extra: [(String, String)] = []) async throws -> Answer {
        try await platform.storageCall(method, path, key: key, bearer: bearer, json: json, body: body, headers: extra)
    }

    func bucket(_ platform: TestPlatform, _ secret: String, _ id: String, public isPublic: Bool = false,
                extra: [String: Any] = [:]) async throws {
        var body: [String: Any] = ["name": id, "public": isPublic]
        body.merge(extra) { _, new in new }
        let created = try await call(platform, .post, "/bucket", key: secret, json: body)
        #expect(created.status == 200 && created.json["name"] as? String == id)
    }

    func upload(_ platform: TestPlatform, _ key: String, bearer: String? = nil, _ path: String, _ bytes: [UInt8],
                type: String = "application/octet-stream", upsert: Bool = false) async throws -> Answer {
        try await call(platform, .post, "/object/" + path, key: key, bearer: bearer, body: bytes,
                       headers: [("Content-Type", type), ("x-upsert", upsert ? "true" : "false")])
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// The files under a tenant's storage directory (`objects/`, `uploads/`).
    static func files(_ platform: TestPlatform, _ tenant: UUID, _ folder: String) -> [String] {
        let url = platform.storageRoot.appendingPathComponent(tenant.uuidString.lowercased()).appendingPathComponent(folder)
        return ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
    }

    @Test("objects of 0 B, 1 B and 10 MB round-trip byte for byte, with a SHA-256 ETag, ranges, conditional requests and HEAD")
    func roundTrips() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("sto")
            let secret = tenant.keys.secret
            try await bucket(platform, secret, "files")
            var generator = SystemRandomNumberGenerator()
            for size in [0, 1, 10_000_000] {
                let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let name = "sizes/object-\(size).bin"
                let stored = try await upload(platform, secret, "files/" + name, bytes)
                #expect(stored.status == 200 && stored.json["Key"] as? String == "files/" + name)
                let fetched = try await call(platform, .get, "/object/files/" + name, key: secret)
                #expect(fetched.status == 200 && fetched.body == bytes, "size \(size)")
                #expect(fetched.headers["ETag"] == "\"" + Self.sha256(bytes) + "\"")
                #expect(fetched.headers["Content-Length"] == String(size) && fetched.headers["Content-Type"] == "application/octet-stream")
            }
            let name = "/object/files/sizes/object-10000000.bin"
            let whole = try await call(platform, .get, name, key: secret)
            let middle = try await call(platform, .get, name, key: secret, headers: [("Range", "bytes=1000-1999")])
            #expect(middle.status == 206 && middle.body == Array(whole.body[1000...1999]))
            #expect(middle.headers["Content-Range"] == "bytes 1000-1999/10000000")
            let tail = try await call(platform, .get, name, key: secret, headers: [("Range", "bytes=-10")])
            #expect(tail.status == 206 && tail.body == Array(whole.body.suffix(10)))
            let beyond = try await call(platform, .get, name, key: secret, headers: [("Range", "bytes=20000000-")])
            #expect(beyond.status == 416 && beyond.code == "InvalidRange")
            let etag = try #require(whole.headers["ETag"])
            let unchanged = try await call(platform, .get, name, key: secret, headers: [("If-None-Match", etag)])
            #expect(unchanged.status == 304 && unchanged.body.isEmpty)
            let head = try await call(platform, .head, name, key: secret)
            #expect(head.status == 200 && head.body.isEmpty && head.headers["Content-Length"] == "10000000")
            let info = try await call(platform, .get, "/object/info/files/sizes/object-1.bin", key: secret)
            #expect(info.status == 200 && info.json["size"] as? Int == 1 && info.json["name"] as? String == "sizes/object-1.bin")
            // Nothing is left in uploads/; one file per object in objects/.
            #expect(Self.files(platform, tenant.id, "uploads").isEmpty)
            #expect(Self.files(platform, tenant.id, "objects").count == 3)

            // Overwriting replaces the file; removing removes it.
            #expect(try await upload(platform, secret, "files/sizes/object-1.bin", [7], upsert: true).status == 200)
            #expect(try await call(platform, .get, "/object/files/sizes/object-1.bin", key: secret).body == [7])
            #expect(Self.files(platform, tenant.id, "objects").count == 3)
            let removed = try await call(platform, .delete, "/object/files", key: secret,
                                         json: ["prefixes": ["sizes/object-0.bin", "sizes/object-1.bin", "missing.bin"]])
            #expect(removed.status == 200 && removed.list.count == 2)
            #expect(Self.files(platform, tenant.id, "objects").count == 1)
        }
    }

    @Test("a quota passed mid-stream, a size limit and a cut connection leave nothing behind, and the usage is unchanged")
    func neverHalfWritten() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("stq")
            let secret = tenant.keys.secret
            try await bucket(platform, secret, "limited", extra: ["file_size_limit": "1MB"])
            try await bucket(platform, secret, "open")
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                try await pool.query("UPDATE storage.tenants SET quota_bytes = 3000000 WHERE id = \(tenant.id)")
                let used = { @Sendable () async throws -> Int in try await pool.scalar("SELECT used_bytes FROM storage.tenants WHERE id = \(tenant.id)") }

                #expect(try await upload(platform, secret, "open/first.bin", Array(repeating: 1, count: 2_000_000)).status == 200)
                #expect(try await used() == 2_000_000)
                // Past the quota while streaming: 413, nothing stored, usage unchanged.
                let overQuota = try await upload(platform, secret, "open/second.bin", Array(repeating: 2, count: 2_000_000))
                #expect(overQuota.status == 413 && overQuota.code == "EntityTooLarge")
                #expect(try await call(platform, .get, "/object/info/open/second.bin", key: secret).status == 404)
                #expect(try await used() == 2_000_000)
                // Past the bucket's limit.
                let overLimit = try await upload(platform, secret, "limited/big.bin", Array(repeating: 3, count: 1_000_001))
                #expect(overLimit.status == 413)
                #expect(Self.files(platform, tenant.id, "uploads").isEmpty)
                #expect(Self.files(platform, tenant.id, "objects").count == 1)

                // A client that sends half its body and hangs up.
                try Self.sendAndHangUp(port: Int(platform.url("storage").split(separator: ":").last ?? "") ?? 0,
                                       path: "/storage/v1/object/open/cut.bin", key: secret, declared: 500_000, sent: 100_000)
                // The server notices the closed connection (state, not time: poll until the upload is gone).
                #expect(await eventually { Self.files(platform, tenant.id, "uploads").isEmpty })
                #expect(try await call(platform, .get, "/object/info/open/cut.bin", key: secret).status == 404)
                #expect(try await used() == 2_000_000)
            }
        }
    }

    @Test("names are confined to their bucket: traversal, absolute paths, control characters, overlong and non-NFC names are 422")
    func names() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("stn")
            let secret = tenant.keys.secret
            try await bucket(platform, secret, "names")
            // (A literal `a/../b` never arrives: curl, like browsers, removes dot segments first.)
            for path in ["names/..%2Fescape.txt", "names/a/%2e%2e/b.txt", "names/%2E/b.txt", "names/%00nul.txt", "names/%2Fabsolute.txt",
                         "names/" + String(repeating: "x", count: 300) + ".txt", "names/e%CC%81.txt", "names/back%5Cslash.txt"] {
                let refused = try await upload(platform, secret, path, [1])
                #expect(refused.status == 422 && refused.code == "InvalidKey", "\(path): \(refused.status) \(refused.code ?? "")")
            }
            let moved = try await call(platform, .post, "/object/move", key: secret,
                                       json: ["bucketId": "names", "sourceKey": "x", "destinationKey": "../../etc/passwd"])
            #expect(moved.status == 422)
            // UTF-8 in NFC and spaces are fine.
            #expect(try await upload(platform, secret, "names/caf%C3%A9%20menu.txt", [1]).status == 200)
            #expect(try await call(platform, .get, "/object/names/caf%C3%A9%20menu.txt", key: secret).body == [1])
        }
    }

    @Test("who may do what: the secret key everything, the publishable key public reads only, users their own objects by the bucket's policy, another project nothing")
    func accessMatrix() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("sta")
            let other = try await platform.provisionTenant("stb")
            let (secret, publishable) = (tenant.keys.secret, tenant.keys.publishable)
            try await bucket(platform, secret, "private")
            try await bucket(platform, secret, "shared", extra: ["user_access": "authenticated_read"])
            try await bucket(platform, secret, "pub", public: true)
            #expect(try await upload(platform, secret, "pub/hello.txt", Array("hi".utf8), type: "text/plain").status == 200)
            #expect(try await upload(platform, secret, "private/secret.txt", Array("s".utf8)).status == 200)

            func user(_ email: String) async throws -> String { try await platform.signUpUser(tenant, email).token }
            let ada = try await user("ada@example.test"), bob = try await user("bob@example.test")

            // The publishable key: public reads, nothing else.
            #expect(try await call(platform, .get, "/object/pub/hello.txt", key: publishable).body == Array("hi".utf8))
            // A public URL carries no key (browsers fetch it as is): the host names the project, as
            // each hosted Supabase project has its own; without one, nothing does.
            let host = tenant.slug + ".platform.test"
            #expect(try await call(platform, .get, "/object/public/pub/hello.txt", key: nil, headers: [("Host", host)]).body == Array("hi".utf8))
            #expect(try await call(platform, .get, "/object/public/pub/hello.txt", key: nil).status == 401)
            #expect(try await call(platform, .get, "/object/private/secret.txt", key: publishable).status == 404)
            #expect(try await call(platform, .get, "/object/public/private/secret.txt", key: nil, headers: [("Host", host)]).status == 404)
            #expect(try await upload(platform, publishable, "pub/nope.txt", [1]).status == 403)
            #expect(try await call(platform, .post, "/bucket", key: publishable, json: ["name": "mine"]).status == 403)
            #expect(try await call(platform, .get, "/bucket", key: publishable).list.compactMap { $0["id"] as? String } == ["pub"])

            // Users: their own objects in an owner bucket; everyone's reads in a shared one.
            #expect(try await upload(platform, publishable, bearer: ada, "private/ada.txt", [1]).status == 200)
            #expect(try await call(platform, .get, "/object/private/ada.txt", key: publishable, bearer: ada).body == [1])
            #expect(try await call(platform, .get, "/object/private/ada.txt", key: publishable, bearer: bob).status == 404)
            #expect(try await call(platform, .get, "/object/private/secret.txt", key: publishable, bearer: ada).status == 404)
            #expect(try await upload(platform, publishable, bearer: bob, "private/ada.txt", [2], upsert: true).status == 403)
            let bobRemoves = try await call(platform, .delete, "/object/private", key: publishable, bearer: bob, json: ["prefixes": ["ada.txt"]])
            #expect(bobRemoves.status == 200 && bobRemoves.list.isEmpty)
            let adaLists = try await call(platform, .post, "/object/list/private", key: publishable, bearer: ada, json: ["prefix": ""])
            #expect(adaLists.list.compactMap { $0["name"] as? String } == ["ada.txt"])
            #expect(try await upload(platform, publishable, bearer: ada, "shared/note.txt", [3]).status == 200)
            #expect(try await call(platform, .get, "/object/shared/note.txt", key: publishable, bearer: bob).body == [3])
            let bobMoves = try await call(platform, .post, "/object/move", key: publishable, bearer: bob,
                                          json: ["bucketId": "shared", "sourceKey": "note.txt", "destinationKey": "mine.txt"])
            #expect(bobMoves.status == 403)
            #expect(try await call(platform, .get, "/object/private/ada.txt", key: secret).body == [1])

            // Another project: its keys and its users' tokens reach nothing here.
            let otherSecret = other.keys.secret
            #expect(try await call(platform, .get, "/object/private/secret.txt", key: publishable, bearer: otherSecret).status == 403)
            #expect(try await call(platform, .get, "/object/private/secret.txt", key: otherSecret).status == 404)
            #expect(try await call(platform, .get, "/bucket/private", key: otherSecret).status == 404)
            #expect(try await call(platform, .post, "/object/list/private", key: otherSecret, json: ["prefix": ""]).list.isEmpty)
            let otherRemoves = try await call(platform, .delete, "/object/private", key: otherSecret, json: ["prefixes": ["secret.txt"]])
            #expect(otherRemoves.list.isEmpty)
            #expect(try await call(platform, .get, "/object/private/secret.txt", key: secret).status == 200)
        }
    }

    @Test("buckets: the Storage API's shapes, limits and allow-lists checked, a non-empty bucket kept until emptied")
    func buckets() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("stk")
            let secret = tenant.keys.secret
            try await bucket(platform, secret, "images", extra: ["file_size_limit": 2048, "allowed_mime_types": ["image/*"]])
            let got = try await call(platform, .get, "/bucket/images", key: secret)
            #expect(got.json["owner"] as? String == "" && got.json["file_size_limit"] as? Int == 2048)
            #expect(got.json["allowed_mime_types"] as? [String] == ["image/*"] && got.json["public"] as? Bool == false)
            #expect(try await call(platform, .post, "/bucket", key: secret, json: ["name": "images"]).code == "BucketAlreadyExists")
            #expect(try await call(platform, .post, "/bucket", key: secret, json: ["name": "bad/name"]).code == "InvalidBucketName")
            // Names the object routes use as path segments would be shadowed by them.
            #expect(try await call(platform, .post, "/bucket", key: secret, json: ["name": "public"]).code == "InvalidBucketName")
            #expect(try await call(platform, .post, "/bucket", key: secret, json: ["name": "x", "file_size_limit": "lots"]).code == "InvalidRequest")
            let wrongType = try await upload(platform, secret, "images/a.txt", [1], type: "text/plain")
            #expect(wrongType.status == 415 && wrongType.code == "InvalidMimeType")
            #expect(try await upload(platform, secret, "images/a.png", [1], type: "image/png; charset=binary").status == 200)
            let updated = try await call(platform, .put, "/bucket/images", key: secret, json: ["public": true, "allowed_mime_types": NSNull()])
            #expect(updated.json["message"] as? String == "Successfully updated")
            #expect(try await upload(platform, secret, "images/b.txt", [1], type: "text/plain").status == 200)
            #expect(try await call(platform, .put, "/bucket/images", key: secret, json: [:]).status == 400)

            // A listing's order is the whole level's, not the first rows' by name.
            try await bucket(platform, secret, "ordered")
            for name in ["c.txt", "b.txt", "a.txt"] { #expect(try await upload(platform, secret, "ordered/" + name, [1]).status == 200) }
            let first = { (sort: [String: Any]) async throws -> String? in
                try await call(platform, .post, "/object/list/ordered", key: secret, json: ["prefix": "", "limit": 1, "sortBy": sort])
                    .list.first?["name"] as? String
            }
            #expect(try await first(["column": "name", "order": "desc"]) == "c.txt")
            #expect(try await first(["column": "name", "order": "asc"]) == "a.txt")
            #expect(try await first(["column": "created_at", "order": "asc"]) == "c.txt")
            #expect(try await first(["column": "created_at", "order": "desc"]) == "a.txt")
            let deep = try await call(platform, .post, "/object/list/ordered", key: secret, json: ["prefix": "", "offset": 10_000_000])
            #expect(deep.status == 400 && deep.code == "InvalidRequest")

            let refused = try await call(platform, .delete, "/bucket/images", key: secret)
            #expect(refused.status == 409 && refused.code == "ResourceNotEmpty")
            #expect(try await call(platform, .post, "/bucket/images/empty", key: tenant.keys.publishable).status == 403)
            #expect(try await call(platform, .post, "/bucket/images/empty", key: secret, json: [:]).status == 200)
            #expect(Self.files(platform, tenant.id, "objects").count == 3)  // the ordered bucket's
            #expect(try await call(platform, .delete, "/bucket/images", key: secret).json["message"] as? String == "Successfully deleted")
            #expect(try await call(platform, .get, "/bucket/images", key: secret).code == "NoSuchBucket")
        }
    }

    /// Sends a raw upload's head and part of its body, then closes the connection.
    static func sendAndHangUp(port: Int, path: String, key: String, declared: Int, sent: Int) throws {
        let fd = try RawSocket.connect(port: port)
        defer { close(fd) }
        let head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\napikey: \(key)\r\nAuthorization: Bearer \(key)\r\n"
            + "Content-Type: application/octet-stream\r\nContent-Length: \(declared)\r\n\r\n"
        try RawSocket.send(fd, Array(head.utf8) + Array(repeating: UInt8(9), count: sent))
    }
}
