import Crypto
import Foundation
import HTTPClient
import Postgres
@testable import Storage
import TestSupport
import Testing

/// Storage's S3-compatible endpoint on the real services (`/storage/v1/s3`): access keys issued
/// and revoked on the developer API, SigV4 checked on every request (header and presigned,
/// plain and aws-chunked bodies), errors as S3's XML with real statuses, and multipart uploads
/// bounded by the same limits as every upload. boto3 itself runs against it in
/// deploy/scripts/sdk/test_s3.py.
@Suite("S3 endpoint", .serialized)
struct S3Tests {
    /// An S3 access key of a project, and a signer with it (SigV4 as botocore signs).
    struct S3Key {
        var id: UUID
        var accessKeyID: String
        var secret: String
    }

    struct S3Answer {
        var status: Int
        var headers: HTTPClientHeaders
        var body: [UInt8]

        var text: String { String(decoding: body, as: UTF8.self) }
        /// `<Code>` of an S3 error.
        var code: String? {
            guard let start = text.range(of: "<Code>"), let end = text.range(of: "</Code>") else { return nil }
            return String(text[start.upperBound..<end.lowerBound])
        }
    }

    static func issue(_ platform: TestPlatform, slug: String, key: String?) async throws -> HTTPClientResponse {
        var headers = HTTPClientHeaders([("Content-Type", "application/json")])
        if let key { headers.add(name: "apikey", value: key) }
        return try await platform.client.execute(HTTPClientRequest(method: .post, url: platform.url("storage") + "/v1/tenants/\(slug)/s3/credentials",
                                                                   headers: headers, body: Array(#"{"description":"tests"}"#.utf8)))
    }

    static func key(_ platform: TestPlatform, _ tenant: ProvisionedTenant) async throws -> S3Key {
        let answer = try await issue(platform, slug: tenant.slug, key: tenant.keys.secret)
        #expect(answer.status == 201)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any])
        return S3Key(id: try #require(UUID(uuidString: json["id"] as? String ?? "")), accessKeyID: try #require(json["access_key_id"] as? String),
                     secret: try #require(json["secret_access_key"] as? String))
    }

    static func amzDate(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    static func sha256(_ bytes: [UInt8]) -> String { SigV4.hex(SHA256.hash(data: bytes)) }

    /// A request to `/storage/v1/s3<path>` signed with `key` as botocore signs one: `host`,
    /// `x-amz-date`, `x-amz-content-sha256` and the given headers signed.
    static func s3(_ platform: TestPlatform, _ method: HTTPMethod, _ path: String, query: String? = nil, key: S3Key?, body: [UInt8]? = nil,
                   headers extra: [(String, String)] = [], payloadHash: String? = nil, date: Date = Date(),
                   tamper: ((inout [(String, String)]) -> Void)? = nil) async throws -> S3Answer {
        let base = platform.url("storage")
        let host = String(base.dropFirst("http://".count))
        let fullPath = "/storage/v1/s3" + path
        var headers = extra
        headers.append(("x-amz-date", amzDate(date)))
        headers.append(("x-amz-content-sha256", payloadHash ?? sha256(body ?? [])))
        if let key {
            let names = (headers.map { $0.0.lowercased() } + ["host"]).sorted()
            let scope = String(amzDate(date).prefix(8))
            let authorization = "AWS4-HMAC-SHA256 Credential=\(key.accessKeyID)/\(scope)/us-east-1/s3/aws4_request, SignedHeaders=\(names.joined(separator: ";")), Signature=" + String(repeating: "0", count: 64)
            let request = SigV4.Request(method: method.rawValue, path: fullPath, query: query, headers: (headers + [("Authorization", authorization)]).map { (name: $0.0, value: $0.1) })
            let signature = try SigV4.signature(of: request)
            let signed = SigV4.expectedSignature(request, signature, host: host, secret: key.secret)
            headers.append(("Authorization", authorization.replacingOccurrences(of: String(repeating: "0", count: 64), with: signed)))
        }
        tamper?(&headers)
        let response = try await platform.client.execute(HTTPClientRequest(method: method, url: base + fullPath + (query.map { "?" + $0 } ?? ""),
                                                                          headers: HTTPClientHeaders(headers), body: body))
        return S3Answer(status: response.status, headers: response.headers, body: response.body)
    }

    static func files(_ platform: TestPlatform, _ tenant: UUID, _ folder: String) -> [String] {
        let url = platform.storageRoot.appendingPathComponent(tenant.uuidString.lowercased()).appendingPathComponent(folder)
        return ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
    }

    @Test("access keys: issued with the secret key only, signed requests act as their project alone, and tampered, stale, expired, unsigned, revoked or foreign requests are 403 in S3's XML")
    func accessKeys() async throws {
        try await withTestPlatform { platform, _ in
            let a = try await platform.provisionTenant("s3a"), b = try await platform.provisionTenant("s3b")
            #expect(try await Self.issue(platform, slug: a.slug, key: a.keys.publishable).status == 403)
            #expect(try await Self.issue(platform, slug: a.slug, key: b.keys.secret).status == 403)
            #expect(try await Self.issue(platform, slug: a.slug, key: nil).status == 401)
            let keyA = try await Self.key(platform, a), keyB = try await Self.key(platform, b)

            #expect(try await Self.s3(platform, .put, "/files", key: keyA).status == 200)
            let body = Array("hello, s3".utf8)
            let put = try await Self.s3(platform, .put, "/files/dir/a%20b.txt", key: keyA, body: body, headers: [("Content-Type", "text/plain")])
            #expect(put.status == 200 && put.headers["ETag"] == "\"" + Self.sha256(body) + "\"")
            let got = try await Self.s3(platform, .get, "/files/dir/a%20b.txt", key: keyA)
            #expect(got.status == 200 && got.body == body && got.headers["Content-Type"] == "text/plain")
            let md5 = Data(Insecure.MD5.hash(data: body)).base64EncodedString()
            #expect(try await Self.s3(platform, .put, "/files/md5.txt", key: keyA, body: body, headers: [("Content-MD5", md5)]).status == 200)
            let badDigest = try await Self.s3(platform, .put, "/files/md5.txt", key: keyA, body: Array("changed".utf8), headers: [("Content-MD5", md5)])
            #expect(badDigest.status == 400 && badDigest.code == "BadDigest")
            #expect(try await Self.s3(platform, .get, "/files/md5.txt", key: keyA).body == body)
            let changed = try await Self.s3(platform, .get, "/files/md5.txt", key: keyA, headers: [("If-Match", "\"\(String(repeating: "0", count: 64))\"")])
            #expect(changed.status == 412 && changed.code == "PreconditionFailed")
            #expect(try await Self.s3(platform, .get, "/files/md5.txt", key: keyA, headers: [("If-Match", put.headers["ETag"] ?? "")]).status == 200)
            #expect(try await Self.s3(platform, .get, "/", key: keyA).text.contains("<Name>files</Name>"))
            let listed = try await Self.s3(platform, .get, "/files", query: "list-type=2&prefix=dir%2F&encoding-type=url", key: keyA)
            #expect(listed.status == 200 && listed.text.contains("<Key>dir/a%20b.txt</Key>") && listed.text.contains("<KeyCount>1</KeyCount>"))

            // Another project's key sees none of it, and cannot write into it.
            let foreign = try await Self.s3(platform, .get, "/files/dir/a%20b.txt", key: keyB)
            #expect(foreign.status == 404 && foreign.code == "NoSuchBucket")
            #expect(try await Self.s3(platform, .put, "/files/planted.txt", key: keyB, body: [1]).status == 404)
            #expect(!(try await Self.s3(platform, .get, "", key: keyB)).text.contains("<Name>files</Name>"))

            // Tampered after signing: a signed header, the path, the body.
            let header = try await Self.s3(platform, .get, "/files/dir/a%20b.txt", key: keyA, headers: [("Range", "bytes=0-1")]) { headers in
                headers = headers.map { $0.0 == "Range" ? ("Range", "bytes=0-5") : $0 }
            }
            #expect(header.status == 403 && header.code == "SignatureDoesNotMatch")
            var wrongSecret = keyA
            wrongSecret.secret = String(repeating: "a", count: 64)
            #expect(try await Self.s3(platform, .get, "", key: wrongSecret).code == "SignatureDoesNotMatch")
            let otherBody = try await Self.s3(platform, .put, "/files/swapped.txt", key: keyA, body: Array("other".utf8),
                                              payloadHash: Self.sha256(Array("signed".utf8)))
            #expect(otherBody.status == 400 && otherBody.code == "XAmzContentSHA256Mismatch")
            #expect(try await Self.s3(platform, .head, "/files/swapped.txt", key: keyA).status == 404)
            #expect(Self.files(platform, a.id, "uploads").isEmpty)

            // Stale, unsigned, presigned past its expiry.
            let stale = try await Self.s3(platform, .get, "", key: keyA, date: Date().addingTimeInterval(-3600))
            #expect(stale.status == 403 && stale.code == "RequestTimeTooSkewed")
            let unsigned = try await Self.s3(platform, .get, "", key: nil)
            #expect(unsigned.status == 403 && unsigned.code == "AccessDenied" && unsigned.headers["Content-Type"]?.hasPrefix("application/xml") == true)
            let expired = try await Self.presigned(platform, "/files/dir/a%20b.txt", key: keyA, date: Date().addingTimeInterval(-7200), expires: 60)
            #expect(expired.status == 403 && expired.code == "AccessDenied")
            var nul = keyA
            nul.accessKeyID = "abc\u{0}"
            let nulKey = try await Self.presigned(platform, "/files/dir/a%20b.txt", key: nul, date: Date(), expires: 60)
            #expect(nulKey.status == 403 && nulKey.code == "InvalidAccessKeyId")
            let fresh = try await Self.presigned(platform, "/files/dir/a%20b.txt", key: keyA, date: Date(), expires: 60)
            #expect(fresh.status == 200 && fresh.body == body)

            // Revoked: refused from the next request on; the list says when.
            let revoked = try await platform.client.execute(HTTPClientRequest(
                method: .delete, url: platform.url("storage") + "/v1/tenants/\(a.slug)/s3/credentials/\(keyA.id.uuidString.lowercased())",
                headers: HTTPClientHeaders([("apikey", a.keys.secret)])))
            #expect(revoked.status == 204)
            let refused = try await Self.s3(platform, .get, "/files/dir/a%20b.txt", key: keyA)
            #expect(refused.status == 403 && refused.code == "InvalidAccessKeyId")
            let list = try await platform.client.execute(HTTPClientRequest(url: platform.url("storage") + "/v1/tenants/\(a.slug)/s3/credentials",
                                                                           headers: HTTPClientHeaders([("apikey", a.keys.secret)])))
            #expect(list.status == 200 && String(decoding: list.body, as: UTF8.self).contains("\"revoked_at\":\"")
                && !String(decoding: list.body, as: UTF8.self).contains("secret_access_key"))
        }
    }

    /// A presigned GET, as botocore's `generate_presigned_url` makes one.
    static func presigned(_ platform: TestPlatform, _ path: String, key: S3Key, date: Date, expires: Int) async throws -> S3Answer {
        let base = platform.url("storage")
        let host = String(base.dropFirst("http://".count))
        let scope = String(amzDate(date).prefix(8))
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=\(SigV4.uriEncode(key.accessKeyID))%2F\(scope)%2Fus-east-1%2Fs3%2Faws4_request"
            + "&X-Amz-Date=\(amzDate(date))&X-Amz-Expires=\(expires)&X-Amz-SignedHeaders=host"
        let request = SigV4.Request(method: "GET", path: "/storage/v1/s3" + path, query: query + "&X-Amz-Signature=" + String(repeating: "0", count: 64), headers: [])
        let signature = try SigV4.signature(of: request)
        let signed = SigV4.expectedSignature(request, signature, host: host, secret: key.secret)
        let response = try await platform.client.execute(HTTPClientRequest(url: base + "/storage/v1/s3" + path + "?" + query + "&X-Amz-Signature=" + signed))
        return S3Answer(status: response.status, headers: response.headers, body: response.body)
    }

    /// An aws-chunked body of `data` in chunks of `size`, signed (chained from `seed`) or with
    /// boto3's unsigned trailer.
    static func chunked(_ data: [UInt8], size: Int, signing: (signature: SigV4.Signature, key: SymmetricKey)?) -> [UInt8] {
        var body: [UInt8] = []
        var previous = signing?.signature.signature ?? ""
        var chunks: [[UInt8]] = stride(from: 0, to: data.count, by: size).map { Array(data[$0..<min($0 + size, data.count)]) }
        chunks.append([])
        for chunk in chunks {
            var line = String(chunk.count, radix: 16)
            if let signing {
                previous = SigV4.sign(SigV4.chunkStringToSign(signing.signature, previous: previous, chunkSHA256: sha256(chunk)), key: signing.key)
                line += ";chunk-signature=" + previous
            }
            body += Array((line + "\r\n").utf8) + chunk
            if !chunk.isEmpty { body += [0x0D, 0x0A] }
        }
        var crc = CRC32()
        data.withUnsafeBytes { crc.update($0) }
        body += Array((signing == nil ? "x-amz-checksum-crc32:\(crc.base64)\r\n\r\n" : "\r\n").utf8)
        return body
    }

    @Test("aws-chunked bodies: signed chunks are verified one by one and unsigned ones with a trailer decoded; a forged chunk or a short body stores nothing")
    func chunkedBodies() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("s3c")
            let key = try await Self.key(platform, tenant)
            #expect(try await Self.s3(platform, .put, "/chunks", key: key).status == 200)
            var generator = SystemRandomNumberGenerator()
            let data = (0..<200_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let host = String(platform.url("storage").dropFirst("http://".count))

            // Signed: the seed is the request's signature, which the test computes as the client would.
            func signedPut(_ name: String, forge: Bool) async throws -> S3Answer {
                let date = Date()
                let headers = [("Content-Encoding", "aws-chunked"), ("x-amz-decoded-content-length", String(data.count))]
                let scope = String(Self.amzDate(date).prefix(8))
                let all = headers + [("x-amz-date", Self.amzDate(date)), ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")]
                let names = (all.map { $0.0.lowercased() } + ["host"]).sorted().joined(separator: ";")
                let draft = "AWS4-HMAC-SHA256 Credential=\(key.accessKeyID)/\(scope)/us-east-1/s3/aws4_request, SignedHeaders=\(names), Signature=" + String(repeating: "0", count: 64)
                let request = SigV4.Request(method: "PUT", path: "/storage/v1/s3/chunks/" + name, query: nil,
                                            headers: (all + [("Authorization", draft)]).map { (name: $0.0, value: $0.1) })
                var signature = try SigV4.signature(of: request)
                signature.signature = SigV4.expectedSignature(request, signature, host: host, secret: key.secret)
                var body = Self.chunked(data, size: 65536, signing: (signature, SigV4.signingKey(secret: key.secret, signature)))
                if forge { body[70_000] ^= 0xFF }
                let response = try await platform.client.execute(HTTPClientRequest(
                    method: .put, url: platform.url("storage") + "/storage/v1/s3/chunks/" + name,
                    headers: HTTPClientHeaders(all + [("Authorization", draft.replacingOccurrences(of: String(repeating: "0", count: 64), with: signature.signature))]),
                    body: body))
                return S3Answer(status: response.status, headers: response.headers, body: response.body)
            }
            #expect(try await signedPut("signed.bin", forge: false).status == 200)
            #expect(try await Self.s3(platform, .get, "/chunks/signed.bin", key: key).body == data)
            let forged = try await signedPut("forged.bin", forge: true)
            #expect(forged.status == 403 && forged.code == "SignatureDoesNotMatch")
            #expect(try await Self.s3(platform, .head, "/chunks/forged.bin", key: key).status == 404)

            // boto3's form over HTTPS: unsigned chunks and a checksum trailer.
            let unsigned = try await Self.s3(platform, .put, "/chunks/unsigned.bin", key: key, body: Self.chunked(data, size: 100_000, signing: nil),
                                             headers: [("Content-Encoding", "aws-chunked"), ("x-amz-decoded-content-length", String(data.count))],
                                             payloadHash: "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
            #expect(unsigned.status == 200)
            let stored = try await Self.s3(platform, .get, "/chunks/unsigned.bin", key: key)
            #expect(stored.body == data && stored.headers["Content-Encoding"] == nil)
            let short = try await Self.s3(platform, .put, "/chunks/short.bin", key: key,
                                          body: Array(Self.chunked(data, size: 100_000, signing: nil).prefix(150_000)),
                                          headers: [("x-amz-decoded-content-length", String(data.count))], payloadHash: "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
            #expect(short.status == 400 && short.code == "IncompleteBody")
            var wrongSum = Self.chunked(data, size: 100_000, signing: nil)
            wrongSum[10] ^= 0x01  // a data byte: the trailer's CRC-32 no longer holds
            let corrupted = try await Self.s3(platform, .put, "/chunks/corrupted.bin", key: key, body: wrongSum,
                                              headers: [("x-amz-decoded-content-length", String(data.count))], payloadHash: "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
            #expect(corrupted.status == 400 && corrupted.code == "BadDigest")
            #expect(try await Self.s3(platform, .head, "/chunks/corrupted.bin", key: key).status == 404)
            #expect(try await Self.s3(platform, .head, "/chunks/short.bin", key: key).status == 404)
            #expect(Self.files(platform, tenant.id, "uploads").isEmpty)
        }
    }

    @Test("multipart: parts are bounded by the quota while they stream, Complete joins them in order through the same write path, Abort leaves no file; bad input is a 4xx, never a 500")
    func multipart() async throws {
        try await withTestPlatform { platform, url in
            let tenant = try await platform.provisionTenant("s3m")
            let key = try await Self.key(platform, tenant)
            #expect(try await Self.s3(platform, .put, "/parts", key: key).status == 200)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                try await pool.query("UPDATE storage.tenants SET quota_bytes = 3000000 WHERE id = \(tenant.id)")
                let used = { @Sendable () async throws -> Int in try await pool.scalar("SELECT used_bytes FROM storage.tenants WHERE id = \(tenant.id)") }

                let created = try await Self.s3(platform, .post, "/parts/joined.bin", query: "uploads", key: key, headers: [("Content-Type", "application/x-joined")])
                #expect(created.status == 200)
                let text = created.text
                let uploadID = try #require(text.range(of: "<UploadId>").flatMap { start in
                    text.range(of: "</UploadId>").map { String(text[start.upperBound..<$0.lowerBound]) }
                })
                let first = [UInt8](repeating: 1, count: 2_000_000), second = [UInt8](repeating: 2, count: 2_000_000), small = [UInt8](repeating: 3, count: 500_000)
                let one = try await Self.s3(platform, .put, "/parts/joined.bin", query: "partNumber=1&uploadId=\(uploadID)", key: key, body: first)
                #expect(one.status == 200 && one.headers["ETag"] == "\"" + SigV4.hex(Insecure.MD5.hash(data: first)) + "\"")
                // Two parts of 2 MB pass the 3 MB quota: 413 while streaming, nothing kept.
                let over = try await Self.s3(platform, .put, "/parts/joined.bin", query: "partNumber=2&uploadId=\(uploadID)", key: key, body: second)
                #expect(over.status == 413 && over.code == "EntityTooLarge")
                #expect(Self.files(platform, tenant.id, "uploads").isEmpty)
                #expect(Self.files(platform, tenant.id, "multipart/" + uploadID).count == 1)
                let two = try await Self.s3(platform, .put, "/parts/joined.bin", query: "partNumber=2&uploadId=\(uploadID)", key: key, body: small)
                #expect(two.status == 200)
                // Parts out of order, an unknown part, a malformed document: 400, nothing stored.
                let disorder = "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber></Part><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>"
                #expect(try await Self.s3(platform, .post, "/parts/joined.bin", query: "uploadId=\(uploadID)", key: key, body: Array(disorder.utf8)).code == "InvalidPartOrder")
                let unknown = "<CompleteMultipartUpload><Part><PartNumber>7</PartNumber></Part></CompleteMultipartUpload>"
                #expect(try await Self.s3(platform, .post, "/parts/joined.bin", query: "uploadId=\(uploadID)", key: key, body: Array(unknown.utf8)).code == "InvalidPart")
                let broken = try await Self.s3(platform, .post, "/parts/joined.bin", query: "uploadId=\(uploadID)", key: key, body: Array("<Complete".utf8))
                #expect(broken.status == 400 && broken.code == "MalformedXML")
                #expect(try await used() == 0)

                let complete = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\(one.headers["ETag"] ?? "")</ETag></Part>"
                    + "<Part><PartNumber>2</PartNumber><ETag>\(two.headers["ETag"] ?? "")</ETag></Part></CompleteMultipartUpload>"
                let done = try await Self.s3(platform, .post, "/parts/joined.bin", query: "uploadId=\(uploadID)", key: key, body: Array(complete.utf8))
                #expect(done.status == 200 && done.text.contains("<ETag>&quot;\(Self.sha256(first + small))&quot;</ETag>"))
                let joined = try await Self.s3(platform, .get, "/parts/joined.bin", key: key)
                #expect(joined.body == first + small && joined.headers["Content-Type"] == "application/x-joined")
                #expect(try await used() == 2_500_000)
                #expect(Self.files(platform, tenant.id, "multipart").isEmpty && Self.files(platform, tenant.id, "uploads").isEmpty)

                // Abort: rows and files go; the id is then unknown.
                let again = try await Self.s3(platform, .post, "/parts/dropped.bin", query: "uploads", key: key)
                let droppedID = try #require(again.text.range(of: "<UploadId>").flatMap { start in
                    again.text.range(of: "</UploadId>").map { String(again.text[start.upperBound..<$0.lowerBound]) }
                })
                #expect(try await Self.s3(platform, .put, "/parts/dropped.bin", query: "partNumber=1&uploadId=\(droppedID)", key: key, body: [1, 2, 3]).status == 200)
                #expect(try await Self.s3(platform, .delete, "/parts/dropped.bin", query: "uploadId=\(droppedID)", key: key).status == 204)
                #expect(Self.files(platform, tenant.id, "multipart").isEmpty)
                let gone = try await Self.s3(platform, .delete, "/parts/dropped.bin", query: "uploadId=\(droppedID)", key: key)
                #expect(gone.status == 404 && gone.code == "NoSuchUpload")

                // Uploads in progress share what is left of the quota (500 kB here): parts are not
                // charged until Complete, but cannot pile up past it either.
                func start(_ name: String, in bucket: String = "parts") async throws -> String {
                    let answer = try await Self.s3(platform, .post, "/\(bucket)/" + name, query: "uploads", key: key)
                    return try #require(answer.text.range(of: "<UploadId>").flatMap { start in
                        answer.text.range(of: "</UploadId>").map { String(answer.text[start.upperBound..<$0.lowerBound]) }
                    })
                }
                let firstID = try await start("one.bin"), secondID = try await start("two.bin")
                #expect(try await Self.s3(platform, .put, "/parts/one.bin", query: "partNumber=1&uploadId=\(firstID)", key: key,
                                          body: [UInt8](repeating: 4, count: 400_000)).status == 200)
                let crowded = try await Self.s3(platform, .put, "/parts/two.bin", query: "partNumber=1&uploadId=\(secondID)", key: key,
                                                body: [UInt8](repeating: 5, count: 200_000))
                #expect(crowded.status == 413 && crowded.code == "EntityTooLarge")
                #expect(try await Self.s3(platform, .delete, "/parts/one.bin", query: "uploadId=\(firstID)", key: key).status == 204)
                #expect(try await Self.s3(platform, .put, "/parts/two.bin", query: "partNumber=1&uploadId=\(secondID)", key: key,
                                          body: [UInt8](repeating: 5, count: 200_000)).status == 200)
                #expect(try await Self.s3(platform, .delete, "/parts/two.bin", query: "uploadId=\(secondID)", key: key).status == 204)
                #expect(try await used() == 2_500_000)

                // A bucket deleted through the Storage API takes its uploads in progress, files and all.
                #expect(try await platform.storageCall(.post, "/bucket", key: tenant.keys.secret, json: ["name": "gone"]).status == 200)
                let pendingID = try await start("gone.bin", in: "gone")
                #expect(try await Self.s3(platform, .put, "/gone/gone.bin", query: "partNumber=1&uploadId=\(pendingID)", key: key, body: [9]).status == 200)
                #expect(Self.files(platform, tenant.id, "multipart") == [pendingID])
                #expect(try await platform.storageCall(.delete, "/bucket/gone", key: tenant.keys.secret, json: [:]).status == 200)
                #expect(Self.files(platform, tenant.id, "multipart").isEmpty)

                // Operations not offered are refused by their sub-resource, never taken for the
                // plain one: the bucket and the object stay.
                for (method, path, query) in [(HTTPMethod.delete, "/parts", "cors"), (.delete, "/parts", "policy"), (.put, "/parts", "acl"),
                                              (.put, "/parts/joined.bin", "tagging"), (.delete, "/parts/joined.bin", "tagging"),
                                              (.put, "/parts/joined.bin", "acl"), (.get, "/parts", "policy")] as [(HTTPMethod, String, String)] {
                    let answer = try await Self.s3(platform, method, path, query: query, key: key, body: method == .put ? Array("<Tagging/>".utf8) : nil)
                    #expect(answer.status == 501 && answer.code == "NotImplemented", "\(method) \(path)?\(query): \(answer.status)")
                }
                #expect(try await Self.s3(platform, .get, "/parts/joined.bin", key: key).body == first + small)

                // Bad input of every kind: a clear 4xx.
                for (method, path, query, body) in [
                    (HTTPMethod.put, "/parts/x.bin", "partNumber=0&uploadId=\(uploadID)", [UInt8]()),
                    (.put, "/parts/x.bin", "partNumber=abc&uploadId=zzz", []),
                    (.put, "/parts/x.bin", "partNumber=1&uploadId=\(UUID())", [1]),
                    (.post, "/parts", "delete", Array("<!DOCTYPE a><Delete/>".utf8)),
                    (.post, "/parts", "delete", Array("<Delete></Delete>".utf8)),
                    (.get, "/parts", "list-type=2&max-keys=-1", []),
                    (.get, "/parts", "list-type=2&continuation-token=%%%", []),
                    (.get, "/parts", "list-type=2&continuation-token=" + ObjectListing.Cursor(key: "a\u{0}", inclusive: false).token, []),
                    (.get, "/parts", "list-type=2&prefix=%00", []),
                    (.get, "/parts", "list-type=2&start-after=a%00", []),
                    (.get, "/parts", "delimiter=%01&marker=x", []),
                    (.get, "/parts", "uploads&prefix=%00", []),
                    (.get, "/nope", "list-type=2", []),
                    (.put, "/parts/a/../b", nil, [1]),
                    (.put, "/parts/%00", nil, [1]),
                    (.put, "/parts/x.bin", nil, [1]),
                ] as [(HTTPMethod, String, String?, [UInt8])] {
                    let answer = try await Self.s3(platform, method, path, query: query, key: key, body: body,
                                                   headers: path == "/parts/x.bin" && query == nil ? [("x-amz-copy-source", "nope")] : [])
                    #expect((400..<500).contains(answer.status), "\(method) \(path)?\(query ?? ""): \(answer.status) \(answer.text)")
                }
            }
        }
    }
}
