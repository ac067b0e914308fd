import Contracts
@testable import HTTPClient
import Resilience
import Testing

@Suite("RetryPolicy")
struct RetryPolicyTests {
    @Test("Defaults and .none")
    func defaults() {
        #expect(RetryPolicy.default.maxAttempts == 4)
        #expect(RetryPolicy.default.backoff == Backoff(base: .milliseconds(100), cap: .seconds(2)))
        #expect(RetryPolicy.none.maxAttempts == 1)
        #expect(RetryPolicy(maxAttempts: 0).maxAttempts == 1)
        let configuration = HTTPClientConfiguration()
        #expect(configuration.connectTimeout == .seconds(2))
        #expect(configuration.requestTimeout == .seconds(10))
        #expect(configuration.retry == .default)
    }

    @Test("Retry-After is honoured up to the backoff's cap: 120 s asked, the cap waited")
    func retryAfterCap() {
        var generator = SystemRandomNumberGenerator()
        let policy = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(5), maxDelay: .milliseconds(50))
        func delay(_ retryAfter: String) -> Duration? {
            let response = HTTPClientResponse(status: 429, headers: ["Retry-After": retryAfter])
            return CurlHTTPClient.retryDelay(after: .success(response), attempt: 1, idempotent: true, policy: policy, using: &generator)
        }
        #expect(delay("120") == .milliseconds(50))
        #expect(delay("0") == .zero)
        // Not a number of seconds: the computed backoff, within its first ceiling.
        let computed = delay("Wed, 21 Oct 2015 07:28:00 GMT")
        #expect((computed ?? .seconds(1)) <= .milliseconds(5))
    }
}

@Suite("Transient failures")
struct TransientFailureTests {
    @Test("the statuses worth repeating are exactly 408, 429, 500, 502, 503 and 504")
    func statuses() {
        #expect((100...599).filter(HTTPClientError.isTransient(status:)) == [408, 429, 500, 502, 503, 504])
        #expect(HTTPClientError.status(500, body: []).isTransient)
        #expect(HTTPClientError.status(408, body: []).isTransient)
        #expect(!HTTPClientError.status(501, body: []).isTransient)
        #expect(!HTTPClientError.status(409, body: []).isTransient)
    }

    @Test("connection failures, timeouts and dropped connections are transient; the client's own failures are not")
    func errors() {
        #expect(HTTPClientError.cannotConnect(url: "http://auth:8080").isTransient)
        #expect(HTTPClientError.timedOut.isTransient)
        for droppedConnection in [52, 55, 56] {  // CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR
            #expect(HTTPClientError.transport(code: droppedConnection, message: "").isTransient)
        }
        #expect(!HTTPClientError.transport(code: 60, message: "SSL certificate problem").isTransient)
        let permanent: [HTTPClientError] = [
            .undecodableBody(type: "T", reason: "r"), .unencodableBody(type: "T", reason: "r"),
            .invalidURL(reason: "r"), .invalidHeader(name: "X"), .responseTooLarge(limit: 1), .shutdown,
        ]
        #expect(permanent.allSatisfy { !$0.isTransient })
    }

    @Test("only a failed connection proves the request never left the process")
    func neverSent() {
        #expect(HTTPClientError.cannotConnect(url: "http://auth:8080").requestNeverSent)
        #expect(!HTTPClientError.timedOut.requestNeverSent)
        #expect(!HTTPClientError.status(503, body: []).requestNeverSent)
        #expect(!HTTPClientError.transport(code: 56, message: "").requestNeverSent)
    }
}

@Suite("HTTP message types")
struct MessageTypeTests {
    @Test("Header lookup is case-insensitive and keeps order and duplicates")
    func headers() {
        var headers: HTTPClientHeaders = [("Accept", "a/b"), ("Set-Cookie", "x=1"), ("set-cookie", "y=2")]
        #expect(headers["accept"] == "a/b")
        #expect(headers["ACCEPT"] == "a/b")
        #expect(headers.values(for: "Set-Cookie") == ["x=1", "y=2"])
        #expect(headers.contains("SET-COOKIE"))
        #expect(!headers.contains("Accept-Encoding"))
        headers.replaceOrAdd(name: "ACCEPT", value: "c/d")
        #expect(headers.values(for: "accept") == ["c/d"])
        headers.remove(name: "set-cookie")
        #expect(headers.count == 1)
        #expect(Array(headers.map(\.name)) == ["ACCEPT"])
        #expect(HTTPClientHeaders([("A", "1")]) == ["A": "1"])
    }

    @Test("Header descriptions redact credentials")
    func redaction() {
        let headers: HTTPClientHeaders = [
            "Authorization": "Bearer eyJhbGciOi", "X-Service-Token": "svc-secret", "Cookie": "sid=abc", "Accept": "x/y",
            "apikey": "pk_tenant_secret_key",
        ]
        let text = headers.description
        #expect(!text.contains("pk_tenant_secret_key"))
        #expect(!text.contains("eyJhbGciOi"))
        #expect(!text.contains("svc-secret"))
        #expect(!text.contains("sid=abc"))
        #expect(text.contains("Accept: x/y"))
        #expect(text.contains("Authorization: <redacted>"))
    }

    @Test("Idempotency is inferred from the method and Idempotency-Key, and can be overridden")
    func idempotency() {
        for method in [HTTPMethod.get, .head, .put, .delete, .options] {
            #expect(HTTPClientRequest(method: method, url: "http://x").isIdempotent)
        }
        #expect(!HTTPClientRequest(method: .post, url: "http://x").isIdempotent)
        #expect(!HTTPClientRequest(method: .patch, url: "http://x").isIdempotent)
        #expect(HTTPClientRequest(method: .post, url: "http://x", headers: ["idempotency-key": "k"]).isIdempotent)
        #expect(HTTPClientRequest(method: .patch, url: "http://x", idempotent: true).isIdempotent)
        #expect(!HTTPClientRequest(method: .put, url: "http://x", idempotent: false).isIdempotent)
    }

    @Test("Error descriptions are readable and carry no request data")
    func errorDescriptions() {
        #expect(HTTPClientError.timedOut.description == "request timed out")
        #expect(HTTPClientError.cannotConnect(url: "http://auth:8080").description == "cannot connect to http://auth:8080")
        #expect(HTTPClientError.status(503, body: []).description == "unexpected HTTP status 503")
        // A status error keeps the body for callers that know its format, but never shows it.
        #expect(HTTPClientError.status(409, body: Array(#"{"secret":"s3"}"#.utf8)).description == "unexpected HTTP status 409")
        #expect(HTTPClientError.shutdown.description == "HTTP client is shut down")
        #expect(HTTPClientError.transport(code: 56, message: "Connection reset by peer").description
            == "transport error (curl 56): Connection reset by peer")
    }

    @Test("Responses decode their body")
    func responseDecoding() throws {
        #expect(!HTTPClientResponse(status: 409).isSuccess)
        #expect(HTTPClientResponse(status: 204).isSuccess)
        #expect(try HTTPClientResponse(status: 200, body: Array("[1,2]".utf8)).decode([Int].self) == [1, 2])
        #expect(throws: HTTPClientError.undecodableBody(type: "Array<Int>", reason: "not valid JSON")) {
            try HTTPClientResponse(status: 200, body: Array("{".utf8)).decode([Int].self)
        }
    }
}

@Suite("Platform conventions")
struct PlatformConventionTests {
    /// The kit names the two headers it acts on itself (it does not import Contracts); this is
    /// where a drift from the platform's names would show.
    @Test("the header names the kit acts on are the platform's")
    func headerNames() {
        #expect(CorrelationContext.header == PlatformHeader.requestID)
        #expect(HTTPClientRequest.idempotencyKeyHeader == PlatformHeader.idempotencyKey)
    }
}

@Suite("Log safety")
struct LogSafetyTests {
    @Test("Request and response descriptions hide credentials, queries and bodies")
    func descriptions() {
        let request = HTTPClientRequest(
            method: .post,
            url: "https://svc:hunter2@auth.internal:8443/v1/tokens?api_key=abc#frag",
            headers: ["Authorization": "Bearer tok-123", "Accept": "application/json"],
            body: Array(#"{"password":"pw-456"}"#.utf8)
        )
        let text = request.description
        #expect(text.hasPrefix("POST https://auth.internal:8443/v1/tokens ["))
        #expect(text.hasSuffix(", 21 body bytes"))
        for secret in ["hunter2", "api_key", "abc", "frag", "tok-123", "pw-456"] {
            #expect(!text.contains(secret), "leaked \(secret)")
        }
        let response = HTTPClientResponse(status: 200, headers: ["Set-Cookie": "sid=s3"], body: Array("secret".utf8))
        #expect(response.description == "200 [Set-Cookie: <redacted>], 6 body bytes")
    }
}
