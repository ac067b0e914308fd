import Dispatch
import Foundation
import HTTPClient
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `Expect: 100-continue` (curl for bodies over 1 MB, boto3 for every upload): every service
/// answers `100 Continue` as the head arrives, before the client sends the body, then the final
/// answer. Driven over a raw socket, the client sending its body only once the `100` has come.
@Suite("Expect: 100-continue", .serialized)
struct ExpectContinueTests {
    @Test("an upload with Expect: 100-continue gets 100 before its body is sent, then 200; a refused one 100, then its 401, and the connection serves the next request")
    func continues() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("exc")
            let secret = tenant.keys.secret
            #expect(try await platform.storageCall(.post, "/bucket", key: secret, json: ["name": "files"]).status == 200)
            let port = try #require(URLComponents(string: platform.url("storage"))?.port)
            let (first, stored, refused, next) = try await RawHTTPConnection.offCooperativePool { () throws -> (String, String, String, String) in
                let connection = try RawHTTPConnection(port: port)
                try connection.send("POST /storage/v1/object/files/hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\napikey: \(secret)\r\n"
                    + "Authorization: Bearer \(secret)\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
                let first = try connection.response().head
                try connection.send("hello")
                let stored = try connection.response().head
                // No key: still 100 first (the body is read and dropped), then the refusal.
                try connection.send("POST /storage/v1/object/files/other.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                    + "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
                _ = try connection.response()
                try connection.send("nopes")
                let refused = try connection.response().head
                try connection.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                return (first, stored, refused, try connection.response().head)
            }
            #expect(first.hasPrefix("HTTP/1.1 100 Continue"))
            #expect(stored.hasPrefix("HTTP/1.1 200"))
            #expect(refused.hasPrefix("HTTP/1.1 401"))
            #expect(next.hasPrefix("HTTP/1.1 200"))
            #expect(try await platform.storageCall(.get, "/object/files/hello.txt", key: secret).body == Array("hello".utf8))
        }
    }
}
