import Contracts
import HTTPClient
import ServiceClients
import Testing

/// The platform's error shape read from the HTTP kit's results (ServiceClients/PlatformErrors):
/// the kit carries bodies, the platform's callers decode them.
@Suite("Platform errors over the HTTP kit")
struct PlatformErrorTests {
    static let conflict = Array(#"{"error":{"code":"slug_taken","message":"The slug is taken.","field":"slug"}}"#.utf8)

    @Test("a response or a status error holding an envelope decodes it; any other body gives nil")
    func envelopes() {
        let expected = ErrorEnvelope(code: "slug_taken", message: "The slug is taken.", field: "slug")
        #expect(HTTPClientResponse(status: 409, body: Self.conflict).errorEnvelope == expected)
        #expect(HTTPClientError.status(409, body: Self.conflict).errorEnvelope == expected)
        #expect(HTTPClientResponse(status: 500, body: Array("oops".utf8)).errorEnvelope == nil)
        #expect(HTTPClientResponse(status: 500).errorEnvelope == nil)
        #expect(HTTPClientResponse(status: 200, body: Array(#"{"status":"ok"}"#.utf8)).errorEnvelope == nil)
        #expect(HTTPClientError.timedOut.errorEnvelope == nil)
    }

    @Test("the platform description adds the envelope's code, message and field to a status error")
    func descriptions() {
        #expect(HTTPClientError.status(409, body: Self.conflict).platformDescription
            == "unexpected HTTP status 409: slug_taken: The slug is taken. (field: slug)")
        let unavailable = Array(#"{"error":{"code":"unavailable","message":"Try later."}}"#.utf8)
        #expect(HTTPClientError.status(503, body: unavailable).platformDescription
            == "unexpected HTTP status 503: unavailable: Try later.")
        #expect(HTTPClientError.status(502, body: Array("<html>bad gateway</html>".utf8)).platformDescription
            == "unexpected HTTP status 502")
        #expect(HTTPClientError.timedOut.platformDescription == "request timed out")
    }
}
