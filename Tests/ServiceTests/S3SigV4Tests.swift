import Crypto
import Foundation
import Hummingbird
@testable import Storage
import Testing

/// SigV4 and the S3 endpoint's parsers, pure: AWS's published examples (Amazon S3 API
/// reference, "Signature Calculations for the Authorization Header" — GET Object with a
/// Range, a presigned GET URL, and the chunked PUT of 66,560 bytes), and what any change to a
/// signed request does to its signature.
@Suite("S3 SigV4 and parsers")
struct S3SigV4Tests {
    static let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

    static func request(_ method: String, _ path: String, query: String? = nil, _ headers: [(String, String)]) -> SigV4.Request {
        SigV4.Request(method: method, path: path, query: query, headers: headers.map { (name: $0.0, value: $0.1) })
    }

    @Test("AWS's GET Object example: the canonical request, string to sign and signature are AWS's")
    func getObjectExample() throws {
        let request = Self.request("GET", "/test.txt", [
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", SigV4.emptySHA256),
            ("x-amz-date", "20130524T000000Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        ])
        let signature = try SigV4.signature(of: request)
        #expect(signature.accessKeyID == "AKIAIOSFODNN7EXAMPLE" && signature.region == "us-east-1" && signature.service == "s3")
        #expect(signature.signedHeaders == ["host", "range", "x-amz-content-sha256", "x-amz-date"] && !signature.isPresigned)
        let canonical = SigV4.canonicalRequest(request, signature, host: "examplebucket.s3.amazonaws.com")
        #expect(canonical == """
            GET
            /test.txt

            host:examplebucket.s3.amazonaws.com
            range:bytes=0-9
            x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            x-amz-date:20130524T000000Z

            host;range;x-amz-content-sha256;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(SigV4.stringToSign(signature, canonicalRequest: canonical) == """
            AWS4-HMAC-SHA256
            20130524T000000Z
            20130524/us-east-1/s3/aws4_request
            7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
            """)
        let expected = SigV4.expectedSignature(request, signature, host: "examplebucket.s3.amazonaws.com", secret: Self.secret)
        #expect(expected == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(SigV4.constantTimeEquals(expected, signature.signature))
    }

    @Test("AWS's presigned GET example: the query form verifies, with X-Amz-Signature left out of the canonical query")
    func presignedExample() throws {
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        let request = Self.request("GET", "/test.txt", query: query, [])
        let signature = try SigV4.signature(of: request)
        #expect(signature.isPresigned && signature.expires == 86400 && signature.payloadHash == SigV4.unsignedPayload)
        #expect(SigV4.canonicalQuery(request) == "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host")
        #expect(SigV4.expectedSignature(request, signature, host: "examplebucket.s3.amazonaws.com", secret: Self.secret)
            == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }

    /// The headers of AWS's chunked PUT example.
    static let chunkedRequest = request("PUT", "/examplebucket/chunkObject.txt", [
        ("Content-Encoding", "aws-chunked"),
        ("Content-Length", "66824"),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-decoded-content-length", "66560"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            + "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
            + "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"),
    ])
    static let chunkSignatures = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ]

    static func chunkedBody(tamper: Bool = false) -> [UInt8] {
        var body: [UInt8] = []
        for (data, signature) in zip([[UInt8](repeating: 0x61, count: 65536), [UInt8](repeating: 0x61, count: 1024), []], chunkSignatures) {
            body += Array((String(data.count, radix: 16) + ";chunk-signature=" + signature + "\r\n").utf8)
            body += data + [0x0D, 0x0A]
        }
        if tamper { body[100] = 0x62 }
        return body
    }

    /// Feeds `body` in pieces of `piece` bytes; the decoded bytes.
    static func decode(_ body: [UInt8], signing: AWSChunkedDecoder.Signing?, piece: Int) throws -> [UInt8] {
        var decoder = AWSChunkedDecoder(signing: signing)
        var out: [UInt8] = []
        var offset = 0
        while offset < body.count {
            decoder.append(ByteBuffer(bytes: body[offset..<min(offset + piece, body.count)]))
            offset += piece
            while let chunk = try decoder.next() { out += chunk.readableBytesView }
        }
        try decoder.finish()
        return out
    }

    @Test("AWS's chunked PUT example: the seed and every chunk signature are AWS's, and the body decodes to the 66,560 bytes in any pieces", arguments: [1, 7, 4096, 100_000])
    func chunkedExample(piece: Int) throws {
        let signature = try SigV4.signature(of: Self.chunkedRequest)
        #expect(SigV4.expectedSignature(Self.chunkedRequest, signature, host: "s3.amazonaws.com", secret: Self.secret)
            == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
        let signing = AWSChunkedDecoder.Signing(signature: signature, key: SigV4.signingKey(secret: Self.secret, signature))
        #expect(try Self.decode(Self.chunkedBody(), signing: signing, piece: piece) == [UInt8](repeating: 0x61, count: 66560))
    }

    @Test("a changed chunk byte, a missing end, bytes after the end and a malformed size are refused")
    func chunkedRefusals() throws {
        let signature = try SigV4.signature(of: Self.chunkedRequest)
        let signing = AWSChunkedDecoder.Signing(signature: signature, key: SigV4.signingKey(secret: Self.secret, signature))
        #expect(throws: AWSChunkedDecoder.Failure.signature) { try Self.decode(Self.chunkedBody(tamper: true), signing: signing, piece: 4096) }
        #expect(throws: AWSChunkedDecoder.Failure.self) { try Self.decode(Array(Self.chunkedBody().dropLast(5)), signing: signing, piece: 4096) }
        #expect(throws: AWSChunkedDecoder.Failure.self) { try Self.decode(Self.chunkedBody() + Array("x".utf8), signing: signing, piece: 4096) }
        #expect(throws: AWSChunkedDecoder.Failure.self) { try Self.decode(Array("zz\r\nab\r\n0\r\n\r\n".utf8), signing: nil, piece: 3) }
        // boto3's unsigned form with its trailer decodes to the bytes; its CRC-32 is checked.
        let unsigned = Array("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n".utf8)
        #expect(try Self.decode(unsigned, signing: nil, piece: 2) == Array("hello".utf8))
        let corrupted = Array("5\r\nhellO\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n".utf8)
        #expect(throws: AWSChunkedDecoder.Failure.checksum) { try Self.decode(corrupted, signing: nil, piece: 2) }
        var check = CRC32()
        Array("123456789".utf8).withUnsafeBytes { check.update($0) }
        #expect(check.checksum == 0xCBF4_3926)  // the CRC-32 check value
    }

    @Test("any change to a signed request — method, path, query, a signed header, the payload hash, the secret, the day — changes its signature")
    func tampering() throws {
        let base = Self.request("PUT", "/storage/v1/s3/bucket/a%20b.txt", query: "x-id=PutObject", [
            ("Content-Type", "text/plain"), ("x-amz-date", "20261126T080000Z"), ("x-amz-content-sha256", SigV4.emptySHA256),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=0123456789abcdef0123456789abcdef/20261126/us-east-1/s3/aws4_request, "
                + "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=" + String(repeating: "0", count: 64)),
        ])
        let signature = try SigV4.signature(of: base)
        let good = SigV4.expectedSignature(base, signature, host: "localhost:8080", secret: "s")
        var changed: [String] = []
        var other = base
        other.method = "POST"
        changed.append(SigV4.expectedSignature(other, signature, host: "localhost:8080", secret: "s"))
        other = base
        other.path = "/storage/v1/s3/bucket/a%20c.txt"
        changed.append(SigV4.expectedSignature(other, signature, host: "localhost:8080", secret: "s"))
        other = base
        other.query = "x-id=GetObject"
        changed.append(SigV4.expectedSignature(other, signature, host: "localhost:8080", secret: "s"))
        other = base
        other.headers["content-type"] = "text/html"
        changed.append(SigV4.expectedSignature(other, signature, host: "localhost:8080", secret: "s"))
        changed.append(SigV4.expectedSignature(base, signature, host: "localhost:8081", secret: "s"))
        changed.append(SigV4.expectedSignature(base, signature, host: "localhost:8080", secret: "t"))
        var payload = signature
        payload.payloadHash = SigV4.unsignedPayload
        changed.append(SigV4.expectedSignature(base, payload, host: "localhost:8080", secret: "s"))
        var day = signature
        day.scopeDate = "20261127"
        changed.append(SigV4.expectedSignature(base, day, host: "localhost:8080", secret: "s"))
        #expect(!changed.contains(good) && Set(changed).count == changed.count)
        // An unsigned header may change freely.
        other = base
        other.headers["user-agent"] = "anything"
        #expect(SigV4.expectedSignature(other, signature, host: "localhost:8080", secret: "s") == good)
    }

    @Test("malformed authorizations are refused before any key is looked up")
    func malformedAuthorizations() {
        let missing = Self.request("GET", "/", [])
        #expect(throws: SigV4.Failure.missing) { try SigV4.signature(of: missing) }
        for authorization in [
            "AWS AKIA:abc",
            "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3, SignedHeaders=host, Signature=" + String(repeating: "0", count: 64),
            "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, Signature=" + String(repeating: "0", count: 64),
            "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=xyz",
            "AWS4-HMAC-SHA256 Credential=a/20130525/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + String(repeating: "0", count: 64),
        ] {
            let request = Self.request("GET", "/", [("x-amz-date", "20130524T000000Z"), ("Authorization", authorization)])
            #expect(throws: SigV4.Failure.self, "\(authorization)") { try SigV4.signature(of: request) }
        }
        #expect(SigV4.date("20130524T000000Z") != nil && SigV4.date("2013-05-24T00:00:00Z") == nil && SigV4.date("20131324T000000Z") == nil)
    }

    @Test("S3's XML: the Delete and CompleteMultipartUpload bodies boto3 sends parse; DOCTYPEs and broken documents are refused")
    func xml() throws {
        let delete = try S3XML.parse(Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a &amp; b.txt</Key></Object><Object><Key>c&#x2F;d</Key></Object><Quiet>true</Quiet></Delete>
            """.utf8))
        #expect(delete.name == "Delete" && delete.children("Object").compactMap { $0.child("Key")?.text } == ["a & b.txt", "c/d"])
        #expect(delete.child("Quiet")?.text == "true")
        let complete = try S3XML.parse(Array(#"<CompleteMultipartUpload><Part><ETag>"abc"</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>"#.utf8))
        #expect(complete.children("Part").first?.child("ETag")?.text == "\"abc\"")
        for bad in ["<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><Delete>&e;</Delete>", "<Delete><Object></Delete>", "<a></a><b></b>",
                    "text", "<Delete>&unknown;</Delete>", String(repeating: "<a>", count: 20) + String(repeating: "</a>", count: 20)] {
            #expect(throws: S3XML.Malformed.self, "\(bad)") { try S3XML.parse(Array(bad.utf8)) }
        }
        #expect(S3XML.escape("<a & 'b'>") == "&lt;a &amp; &apos;b&apos;&gt;")
    }

    @Test("listing helpers: a common prefix is cut at the first delimiter past the prefix, and its successor bounds every key under it")
    func listing() {
        #expect(ObjectListing.commonPrefix(of: "a/b/c.txt", prefix: "", delimiter: "/") == "a/")
        #expect(ObjectListing.commonPrefix(of: "a/b/c.txt", prefix: "a/", delimiter: "/") == "a/b/")
        #expect(ObjectListing.commonPrefix(of: "a/c.txt", prefix: "a/", delimiter: "/") == nil)
        #expect(ObjectListing.commonPrefix(of: "x--y--z", prefix: "", delimiter: "--") == "x--")
        #expect(ObjectListing.successor("a/") == "a0")
        let cursor = ObjectListing.Cursor(key: "dir/é+ü", inclusive: true)
        #expect(ObjectListing.Cursor(token: cursor.token) == cursor && ObjectListing.Cursor(token: "!!!") == nil)
        #expect(SigV4.uriEncode("a b+c/é", keepSlash: true) == "a%20b%2Bc/%C3%A9")
    }
}
