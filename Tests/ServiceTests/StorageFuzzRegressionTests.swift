import Contracts
import Foundation
import HTTPClient
import ServiceKit
import TestSupport
import Testing

/// What documenting and fuzzing the Storage API (`Services/Storage/openapi.json`,
/// `deploy/scripts/fuzz.sh storage`) turned up, each pinned on the real services: requests that
/// crashed the service or answered against the document, and the route table's reading of the
/// object routes' catch-all.
@Suite("Storage API fuzz regressions", .serialized)
struct StorageFuzzRegressionTests {
    typealias Answer = StorageAnswer

    func call(_ platform: TestPlatform, _ method: HTTPMethod, _ path: String, key: String?, bearer: String? = nil,
              json: [String: Any]? = nil, body: [UInt8]? = nil, headers extra: [(String, String)] = []) async throws -> Answer {
        try await platform.storageCall(method, path, key: key, bearer: bearer, json: json, body: body, headers: extra)
    }

    /// Storage still answers (a trap would have taken the service, and this process, down).
    func expectServing(_ platform: TestPlatform, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let health = try await platform.client.execute(HTTPClientRequest(url: platform.url("storage") + "/health"))
        #expect(health.status == 200, sourceLocation: sourceLocation)
    }

    @Test("a bucket id in a path is percent-decoded once, as the clients encode it: a bucket named with a space is reachable")
    func bucketIDsDecoded() async throws {
        try await withTestPlatform { platform, _ in
            let secret = try await platform.provisionTenant("sfz").keys.secret
            let created = try await call(platform, .post, "/bucket", key: secret, json: ["name": "my files"])
            #expect(created.status == 200 && created.json["name"] as? String == "my files")

            // Before: 404 NoSuchBucket on every route, the raw `my%20files` looked up.
            let bucket = try await call(platform, .get, "/bucket/my%20files", key: secret)
            #expect(bucket.status == 200 && bucket.json["id"] as? String == "my files")
            let stored = try await call(platform, .post, "/object/my%20files/notes/a%20b.txt", key: secret, body: Array("hello".utf8),
                                        headers: [("Content-Type", "text/plain")])
            #expect(stored.status == 200 && stored.json["Key"] as? String == "my files/notes/a b.txt")
            let fetched = try await call(platform, .get, "/object/my%20files/notes/a%20b.txt", key: secret)
            #expect(fetched.status == 200 && fetched.body == Array("hello".utf8))
            let listed = try await call(platform, .post, "/object/list/my%20files", key: secret, json: ["prefix": "notes"])
            #expect(listed.status == 200 && listed.list.map { $0["name"] as? String } == ["a b.txt"])
            let updated = try await call(platform, .put, "/bucket/my%20files", key: secret, json: ["public": true])
            #expect(updated.status == 200)
            let removed = try await call(platform, .delete, "/object/my%20files", key: secret, json: ["prefixes": ["notes/a b.txt"]])
            #expect(removed.status == 200 && removed.list.count == 1)
            let deleted = try await call(platform, .delete, "/bucket/my%20files", key: secret)
            #expect(deleted.status == 200)

            // An id no bucket can have (undecodable, a NUL, a slash) is simply not found; nothing reaches the database.
            for raw in ["%ZZ", "%00", "a%2Fb", "%20padded"] {
                let answer = try await call(platform, .get, "/bucket/" + raw, key: secret)
                #expect(answer.status == 404 && answer.code == "NoSuchBucket" && answer.isStorageError, "\(raw): \(answer.status)")
                let object = try await call(platform, .get, "/object/" + raw + "/a.txt", key: secret)
                #expect(object.status == 404 && object.code == "NoSuchBucket" && object.isStorageError, "\(raw): \(object.status)")
                let list = try await call(platform, .post, "/object/list/" + raw, key: secret, json: ["prefix": ""])
                #expect(list.status == 200 && list.list.isEmpty, "\(raw): \(list.status)")
                let remove = try await call(platform, .delete, "/object/" + raw, key: secret, json: ["prefixes": ["a.txt"]])
                #expect(remove.status == 200 && remove.list.isEmpty, "\(raw): \(remove.status)")
            }
            try await expectServing(platform)
        }
    }

    @Test("a list offset as large as an Int is refused (400), not an arithmetic overflow that kills the service")
    func hugeListOffset() async throws {
        try await withTestPlatform { platform, _ in
            let secret = try await platform.provisionTenant("sfz").keys.secret
            #expect(try await call(platform, .post, "/bucket", key: secret, json: ["name": "files"]).status == 200)
            #expect(try await call(platform, .post, "/object/files/a.txt", key: secret, body: [1], headers: [("Content-Type", "text/plain")]).status == 200)
            for offset in [Int.max, Int.max - 1, Int.max - 1500] {
                let listed = try await call(platform, .post, "/object/list/files", key: secret,
                                            json: ["prefix": "", "limit": 1500, "offset": offset])
                #expect(listed.status == 400, "offset \(offset): \(listed.status)")
            }
            let first = try await call(platform, .post, "/object/list/files", key: secret, json: ["prefix": "", "offset": 0])
            #expect(first.list.map { $0["name"] as? String } == ["a.txt"])
            try await expectServing(platform)
        }
    }

    @Test("an allowed MIME type of nothing but `;` is 415 InvalidMimeType, not an index out of range that kills the service")
    func semicolonMimeType() async throws {
        try await withTestPlatform { platform, _ in
            let secret = try await platform.provisionTenant("sfz").keys.secret
            for types in [[";"], [";;"], [" ; "], ["text/plain", ";charset=utf-8"]] {
                let created = try await call(platform, .post, "/bucket", key: secret, json: ["name": "typed", "allowed_mime_types": types])
                #expect(created.status == 415 && created.code == "InvalidMimeType" && created.isStorageError, "\(types): \(created.status)")
            }
            #expect(try await call(platform, .post, "/bucket", key: secret, json: ["name": "typed"]).status == 200)
            let updated = try await call(platform, .put, "/bucket/typed", key: secret, json: ["allowed_mime_types": [";"]])
            #expect(updated.status == 415 && updated.code == "InvalidMimeType")
            try await expectServing(platform)
        }
    }

    @Test("an upload whose content type is not a media type is 415 InvalidMimeType and stores nothing: downloads never carry a malformed Content-Type")
    func malformedContentType() async throws {
        try await withTestPlatform { platform, _ in
            let secret = try await platform.provisionTenant("sfz").keys.secret
            #expect(try await call(platform, .post, "/bucket", key: secret, json: ["name": "files"]).status == 200)

            // Raw: the request's Content-Type is what would be stored.
            for type in ["nonsense", "text/", "/plain", "text/plain/extra", "te xt/plain", ";"] {
                let raw = try await call(platform, .post, "/object/files/raw.txt", key: secret, body: [1, 2], headers: [("Content-Type", type)])
                #expect(raw.status == 415 && raw.code == "InvalidMimeType" && raw.isStorageError, "\(type): \(raw.status)")
            }
            // Multipart: the form's contentType field.
            let boundary = "fuzz-boundary"
            let form = "--\(boundary)\r\nContent-Disposition: form-data; name=\"contentType\"\r\n\r\nfoo\r\n"
                + "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\nxy\r\n"
                + "--\(boundary)--\r\n"
            let multipart = try await call(platform, .post, "/object/files/form.bin", key: secret, body: Array(form.utf8),
                                           headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")])
            #expect(multipart.status == 415 && multipart.code == "InvalidMimeType")
            for name in ["raw.txt", "form.bin"] {
                #expect(try await call(platform, .get, "/object/info/files/" + name, key: secret).status == 404)
            }

            // Media types with parameters and the less common token characters still go in, and come back as stored.
            for type in ["text/plain;charset=UTF-8", "application/vnd.api+json", "application/x_custom"] {
                let stored = try await call(platform, .post, "/object/files/ok.bin", key: secret, body: [3], headers: [("Content-Type", type), ("x-upsert", "true")])
                #expect(stored.status == 200, "\(type): \(stored.status)")
                let fetched = try await call(platform, .get, "/object/files/ok.bin", key: secret)
                #expect(fetched.headers["Content-Type"] == type)
            }
        }
    }

    @Test("the route table reports the object routes' catch-all as {path}, and resolves a path's methods through it, one segment or many")
    func catchAllRoutes() async throws {
        let table = RouteTable()
        table.record([
            (method: "GET", path: "/storage/v1/object/{bucket}/**"), (method: "PUT", path: "/storage/v1/object/{bucket}/**"),
            (method: "DELETE", path: "/storage/v1/object/{bucket}"), (method: "POST", path: "/storage/v1/object/list/{bucket}"),
            (method: "GET", path: "/storage/v1/object/info/{bucket}/**"), (method: "GET", path: "/v1/tenants/:slug/limits"),
        ])
        #expect(Set(table.all.map(\.description)) == [
            "GET /storage/v1/object/{bucket}/{path}", "PUT /storage/v1/object/{bucket}/{path}", "DELETE /storage/v1/object/{bucket}",
            "POST /storage/v1/object/list/{bucket}", "GET /storage/v1/object/info/{bucket}/{path}", "GET /v1/tenants/{slug}/limits",
        ])
        #expect(table.allowedMethods(forPath: "/storage/v1/object/b/a.txt") == ["GET", "PUT"])
        #expect(table.allowedMethods(forPath: "/storage/v1/object/b/folder/deeper/a.txt") == ["GET", "PUT"])
        #expect(table.allowedMethods(forPath: "/storage/v1/object/b") == ["DELETE"])
        #expect(table.allowedMethods(forPath: "/storage/v1/object/info/b/a/b.txt") == ["GET"])
        #expect(table.allowedMethods(forPath: "/storage/v1/object/list/b") == ["POST"])
        #expect(table.allowedMethods(forPath: "/v1/tenants/x/limits") == ["GET"])
        #expect(table.allowedMethods(forPath: "/storage/v1/bucket/b").isEmpty)

        // On the running service: an unrouted method on an object's path is 405 with those methods, in the Storage API's shape.
        try await withTestPlatform { platform, _ in
            let secret = try await platform.provisionTenant("sfz").keys.secret
            let answer = try await call(platform, .patch, "/object/files/folder/a.txt", key: secret)
            #expect(answer.status == 405 && answer.isStorageError)
            #expect(answer.headers["Allow"] == "DELETE, GET, HEAD, POST, PUT")
            let listed = try await platform.client.execute(HTTPClientRequest(url: platform.url("storage") + "/internal/v1/routes", headers: platform.tokenHeaders))
            let paths = Set(try listed.decode(ServiceRoutes.self).routes.map(\.path))
            #expect(paths.contains("/storage/v1/object/{bucket}/{path}") && !paths.contains { $0.contains("**") })
        }
    }
}
