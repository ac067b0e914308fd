import Crypto
import Foundation
import HTTPClient
import Postgres
import ServiceKit
import TestSupport
import Testing

/// Signed download and upload URLs on the real services (`/storage/v1/object/sign/…`,
/// `/storage/v1/object/upload/sign/…`): links that carry their own permission, per project,
/// until they expire. storage3's signing methods run against them in deploy/scripts/sdk-tests.sh.
@Suite("Signed URLs", .serialized)
struct SignedURLTests {
    func call(_ platform: TestPlatform, _ method: HTTPMethod, _ path: String, key: String?, bearer: String? = nil,
              json: [String: Any]? = nil, body: [UInt8]? = nil, headers: [(String, String)] = []) async throws -> StorageAnswer {
        try await platform.storageCall(method, path, key: key, bearer: bearer, json: json, body: body, headers: headers)
    }

    func upload(_ platform: TestPlatform, _ key: String, bearer: String? = nil, _ path: String, _ bytes: [UInt8],
                upsert: Bool = false) async throws -> StorageAnswer {
        try await call(platform, .post, "/object/" + path, key: key, bearer: bearer, body: bytes,
                       headers: [("Content-Type", "text/plain"), ("x-upsert", upsert ? "true" : "false")])
    }

    func user(_ platform: TestPlatform, _ tenant: ProvisionedTenant, _ email: String) async throws -> (token: String, id: String) {
        try await platform.signUpUser(tenant, email)
    }

    /// A token as the service makes them, minted here with the project's key from the database:
    /// how a test gets one that expired a minute ago without waiting for it.
    static func mint(_ claims: [String: Any], key: String) throws -> String {
        let input = Base64URL.encode(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + Base64URL.encode(try JSONSerialization.data(withJSONObject: claims))
        let signature = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: Data(key.utf8)))
        return input + "." + Base64URL.encode(signature)
    }

    /// The token in a signed link.
    static func token(_ link: String) throws -> String {
        try #require(URLComponents(string: "http://x" + link)?.queryItems?.first { $0.name == "token" }?.value)
    }

    @Test("signed download URLs, one and many: the bytes without credentials until they expire; tampered, expired, another object's, the other scope's or another project's token is 403")
    func downloads() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("sgn")
            let other = try await platform.provisionTenant("sgo")
            let secret = tenant.keys.secret
            #expect(try await call(platform, .post, "/bucket", key: secret, json: ["name": "docs"]).status == 200)
            #expect(try await upload(platform, secret, "docs/a.txt", Array("alpha".utf8)).status == 200)
            #expect(try await upload(platform, secret, "docs/b%20c.txt", Array("beta".utf8)).status == 200)

            // storage3 sends expiresIn as a string, storage-js as a number.
            let signed = try await call(platform, .post, "/object/sign/docs/a.txt", key: secret, json: ["expiresIn": "60"])
            let link = try #require(signed.json["signedURL"] as? String)
            #expect(link.hasPrefix("/object/sign/docs/a.txt?token="))
            let fetched = try await call(platform, .get, link, key: nil)
            #expect(fetched.status == 200 && fetched.body == Array("alpha".utf8))
            #expect(fetched.headers["Expires"] != nil && fetched.headers["Cache-Control"] == nil)
            #expect(try await call(platform, .head, link, key: nil).status == 200)
            #expect(try await call(platform, .post, "/object/sign/docs/a.txt", key: secret, json: ["expiresIn": 0]).status == 400)
            #expect(try await call(platform, .post, "/object/sign/docs/nothing.txt", key: secret, json: ["expiresIn": 60]).status == 404)

            // Several at once: one entry per path, in order, the missing and the impossible as errors.
            let many = try await call(platform, .post, "/object/sign/docs", key: secret,
                                      json: ["expiresIn": 60, "paths": ["b c.txt", "missing.txt", "../escape"]])
            #expect(many.status == 200 && many.list.count == 3)
            #expect(many.list.map { $0["path"] as? String } == ["b c.txt", "missing.txt", "../escape"])
            let second = try #require(many.list.first?["signedURL"] as? String)
            #expect(second.hasPrefix("/object/sign/docs/b c.txt?token="))
            #expect(many.list.dropFirst().allSatisfy { $0["signedURL"] is NSNull && $0["error"] is String })
            let encoded = "/object/sign/docs/b%20c.txt?token=" + (try Self.token(second))
            #expect(try await call(platform, .get, encoded, key: nil).body == Array("beta".utf8))

            // Refusals: all 403, nothing read.
            let token = try Self.token(link)
            let parts = token.split(separator: ".").map(String.init)
            let payloadBytes = try #require(Base64URL.decode(parts[1]))
            var payload = try #require(try JSONSerialization.jsonObject(with: payloadBytes) as? [String: Any])
            payload["url"] = "docs/b c.txt"
            let forged = parts[0] + "." + Base64URL.encode(try JSONSerialization.data(withJSONObject: payload)) + "." + parts[2]
            let tampered = try await call(platform, .get, "/object/sign/docs/b%20c.txt?token=" + forged, key: nil)
            #expect(tampered.status == 403 && tampered.code == "InvalidJWT" && tampered.isStorageError)
            let wrongObject = try await call(platform, .get, "/object/sign/docs/b%20c.txt?token=" + token, key: nil)
            #expect(wrongObject.status == 403 && wrongObject.code == "InvalidSignature")
            #expect(try await call(platform, .get, "/object/sign/docs/a.txt?token=garbage", key: nil).status == 403)
            #expect(try await call(platform, .get, "/object/sign/docs/a.txt", key: nil).status == 400)
            // Another project's key with this project's link: refused, not served.
            #expect(try await call(platform, .get, link, key: other.keys.publishable).status == 403)

            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                let key = try await pool.query("SELECT url_signing_key FROM storage.tenants WHERE id = \(tenant.id)").single().decode(at: 0, as: String.self)
                let otherKey = try await pool.query("SELECT url_signing_key FROM storage.tenants WHERE id = \(other.id)").single().decode(at: 0, as: String.self)
                #expect(key.count == 64 && key != otherKey)
                let now = Int(Date().timeIntervalSince1970)
                let claims: [String: Any] = ["url": "docs/a.txt", "scope": "download", "ref": tenant.slug, "iat": now - 120, "exp": now - 60]
                let expired = try await call(platform, .get, "/object/sign/docs/a.txt?token=" + (try Self.mint(claims, key: key)), key: nil)
                #expect(expired.status == 403 && expired.code == "InvalidJWT" && expired.json["message"] as? String == #""exp" claim timestamp check failed"#)
                var live = claims
                live["exp"] = now + 600
                #expect(try await call(platform, .get, "/object/sign/docs/a.txt?token=" + (try Self.mint(live, key: key)), key: nil).status == 200)
                // Signed with another project's key: its signature does not verify here.
                let foreign = try await call(platform, .get, "/object/sign/docs/a.txt?token=" + (try Self.mint(live, key: otherKey)), key: nil)
                #expect(foreign.status == 403 && foreign.code == "InvalidJWT")
                var upload = live
                upload["scope"] = "upload"
                let scoped = try await call(platform, .get, "/object/sign/docs/a.txt?token=" + (try Self.mint(upload, key: key)), key: nil)
                #expect(scoped.status == 403 && scoped.code == "InvalidSignature")
            }
        }
    }

    @Test("who may sign: the publishable key only public objects, users the objects they may read; another project nothing")
    func signers() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("sgw")
            let other = try await platform.provisionTenant("sgx")
            let (secret, publishable) = (tenant.keys.secret, tenant.keys.publishable)
            #expect(try await call(platform, .post, "/bucket", key: secret, json: ["name": "private"]).status == 200)
            #expect(try await call(platform, .post, "/bucket", key: secret, json: ["name": "pub", "public": true]).status == 200)
            #expect(try await upload(platform, secret, "pub/open.txt", [1]).status == 200)
            let ada = try await user(platform, tenant, "ada@example.test"), bob = try await user(platform, tenant, "bob@example.test")
            #expect(try await upload(platform, publishable, bearer: ada.token, "private/ada.txt", [2]).status == 200)

            let sign = { (key: String, bearer: String?, path: String) async throws -> Int in
                try await self.call(platform, .post, "/object/sign/" + path, key: key, bearer: bearer, json: ["expiresIn": 60]).status
            }
            #expect(try await sign(publishable, nil, "pub/open.txt") == 200)
            #expect(try await sign(publishable, nil, "private/ada.txt") == 404)
            #expect(try await sign(publishable, ada.token, "private/ada.txt") == 200)
            #expect(try await sign(publishable, bob.token, "private/ada.txt") == 404)
            #expect(try await sign(other.keys.secret, nil, "private/ada.txt") == 404)
            let batch = try await call(platform, .post, "/object/sign/private", key: publishable, bearer: bob.token,
                                       json: ["expiresIn": 60, "paths": ["ada.txt"]])
            #expect(batch.status == 200 && batch.list.first?["signedURL"] is NSNull)
        }
    }

    @Test("signed upload URLs: the object is stored as the signer's user, upsert as signed, when the link is used; a download link cannot upload")
    func uploads() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("sgu")
            let (secret, publishable) = (tenant.keys.secret, tenant.keys.publishable)
            #expect(try await call(platform, .post, "/bucket", key: secret, json: ["name": "inbox"]).status == 200)
            let ada = try await user(platform, tenant, "ada@example.test"), bob = try await user(platform, tenant, "bob@example.test")

            #expect(try await call(platform, .post, "/object/upload/sign/inbox/ada.txt", key: publishable).status == 403)
            let made = try await call(platform, .post, "/object/upload/sign/inbox/ada.txt", key: publishable, bearer: ada.token)
            let link = try #require(made.json["url"] as? String)
            let madeToken = try Self.token(link)
            #expect(link.hasPrefix("/object/upload/sign/inbox/ada.txt?token=") && made.json["token"] as? String == madeToken)
            // Nothing exists until the link is used.
            #expect(try await call(platform, .get, "/object/inbox/ada.txt", key: secret).status == 404)
            let put = try await call(platform, .put, link, key: nil, body: Array("from ada".utf8), headers: [("Content-Type", "text/plain")])
            #expect(put.status == 200 && put.json["Key"] as? String == "inbox/ada.txt")
            // Ada's own: she reads it, Bob does not.
            #expect(try await call(platform, .get, "/object/inbox/ada.txt", key: publishable, bearer: ada.token).body == Array("from ada".utf8))
            #expect(try await call(platform, .get, "/object/inbox/ada.txt", key: publishable, bearer: bob.token).status == 404)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                let owner = try await pool.query("SELECT owner FROM storage.objects WHERE tenant_id = \(tenant.id) AND name = 'ada.txt'")
                    .single().decode(at: 0, as: UUID.self)
                #expect(owner.uuidString == ada.id.uppercased())
            }
            // Signed without upsert: the link cannot replace what it made.
            let again = try await call(platform, .put, link, key: nil, body: [1], headers: [("Content-Type", "text/plain")])
            #expect(again.status == 409 && again.code == "KeyAlreadyExists")
            // Signing for an existing object: refused without upsert; with it, the link replaces.
            #expect(try await call(platform, .post, "/object/upload/sign/inbox/ada.txt", key: secret).status == 409)
            #expect(try await call(platform, .post, "/object/upload/sign/inbox/ada.txt", key: publishable, bearer: bob.token,
                                   headers: [("x-upsert", "true")]).status == 403)
            let replace = try await call(platform, .post, "/object/upload/sign/inbox/ada.txt", key: secret, headers: [("x-upsert", "true")])
            let replaceLink = try #require(replace.json["url"] as? String)
            for round in 1...2 {
                let replaced = try await call(platform, .put, replaceLink, key: nil, body: [UInt8(round)], headers: [("Content-Type", "text/plain")])
                #expect(replaced.status == 200)
            }
            #expect(try await call(platform, .get, "/object/inbox/ada.txt", key: secret).body == [2])
            // A link is for its object and its scope only.
            let token = try Self.token(replaceLink)
            let elsewhere = try await call(platform, .put, "/object/upload/sign/inbox/other.txt?token=" + token, key: nil, body: [1],
                                           headers: [("Content-Type", "text/plain")])
            #expect(elsewhere.status == 403 && elsewhere.code == "InvalidSignature")
            #expect(try await call(platform, .get, "/object/sign/inbox/ada.txt?token=" + token, key: nil).status == 403)
            let download = try await call(platform, .post, "/object/sign/inbox/ada.txt", key: secret, json: ["expiresIn": 60])
            let downloadToken = try Self.token(try #require(download.json["signedURL"] as? String))
            let wrongScope = try await call(platform, .put, "/object/upload/sign/inbox/ada.txt?token=" + downloadToken, key: nil, body: [9],
                                            headers: [("Content-Type", "text/plain")])
            #expect(wrongScope.status == 403 && wrongScope.code == "InvalidSignature")
            #expect(try await call(platform, .get, "/object/inbox/ada.txt", key: secret).body == [2])
        }
    }

    @Test("a signed upload URL's token also uploads resumably (TUS on /upload/resumable/sign with x-signature): as the signer, for its object only")
    func resumableSignedUploads() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("sgt")
            let (secret, publishable) = (tenant.keys.secret, tenant.keys.publishable)
            #expect(try await call(platform, .post, "/bucket", key: secret, json: ["name": "videos"]).status == 200)
            let ada = try await user(platform, tenant, "ada@example.test")
            let made = try await call(platform, .post, "/object/upload/sign/videos/ada/clip.bin", key: publishable, bearer: ada.token)
            let token = try #require(made.json["token"] as? String)
            func metadata(_ name: String) -> String {
                ["bucketName": "videos", "objectName": name, "contentType": "application/octet-stream"]
                    .map { $0.key + " " + Data($0.value.utf8).base64EncodedString() }.joined(separator: ",")
            }
            func tus(_ method: HTTPMethod, _ path: String, _ headers: [(String, String)], body: [UInt8]? = nil) async throws -> StorageAnswer {
                // No apikey and no Authorization: the token is the credential.
                try await call(platform, method, path, key: nil, body: body, headers: [("Tus-Resumable", "1.0.0")] + headers)
            }
            // Another object than the token's: refused.
            let elsewhere = try await tus(.post, "/upload/resumable/sign", [("x-signature", token), ("Upload-Length", "6"),
                                                                            ("Upload-Metadata", metadata("ada/other.bin"))])
            #expect(elsewhere.status == 403)
            #expect(try await tus(.post, "/upload/resumable/sign", [("Upload-Length", "6"), ("Upload-Metadata", metadata("ada/clip.bin"))]).status == 403)
            let created = try await tus(.post, "/upload/resumable/sign", [("x-signature", token), ("Upload-Length", "6"),
                                                                          ("Upload-Metadata", metadata("ada/clip.bin"))])
            #expect(created.status == 201)
            let location = try #require(created.headers["Location"])
            #expect(location.hasPrefix("/storage/v1/upload/resumable/sign/"))
            let path = String(location.dropFirst("/storage/v1".count))
            let first = try await tus(.patch, path, [("x-signature", token), ("Upload-Offset", "0"), ("Content-Type", "application/offset+octet-stream")],
                                      body: [1, 2, 3])
            #expect(first.status == 204 && first.headers["Upload-Offset"] == "3")
            // Without the token, nothing; with it, the rest, and the object is Ada's.
            #expect(try await tus(.head, path, []).status == 403)
            #expect(try await tus(.head, path, [("x-signature", token)]).headers["Upload-Offset"] == "3")
            let last = try await tus(.patch, path, [("x-signature", token), ("Upload-Offset", "3"), ("Content-Type", "application/offset+octet-stream")],
                                     body: [4, 5, 6])
            #expect(last.status == 204 && last.headers["Tus-Complete"] == "1")
            #expect(try await call(platform, .get, "/object/videos/ada/clip.bin", key: publishable, bearer: ada.token).body == [1, 2, 3, 4, 5, 6])
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                let owner = try await pool.query("SELECT owner FROM storage.objects WHERE tenant_id = \(tenant.id) AND name = 'ada/clip.bin'")
                    .single().decode(at: 0, as: UUID.self)
                #expect(owner.uuidString == ada.id.uppercased())
            }
        }
    }
}
