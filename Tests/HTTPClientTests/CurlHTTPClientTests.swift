import Contracts
import HTTPClient
import Hummingbird
import TestSupport
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// End-to-end tests: a real Hummingbird server on 127.0.0.1, a real `CurlHTTPClient`.
@Suite("CurlHTTPClient against a live server")
struct CurlHTTPClientTests {
    struct Widget: Codable, Equatable, ResponseCodable {
        var name: String
        var quantity: Int
        var createdAt: Date
    }

    // MARK: JSON

    @Test("JSON body round trip through a transforming server")
    func jsonRoundTrip() async throws {
        try await withTestServer({ router, log in
            router.post("widgets") { request, context -> EditedResponse<Widget> in
                await log.record(request, context: context)
                #expect(request.headers[.contentType] == "application/json")
                #expect(request.headers[.accept] == "application/json")
                var widget = try await request.decode(as: Widget.self, context: context)
                widget.name = widget.name.uppercased()
                widget.quantity *= 2
                widget.createdAt += 60
                return EditedResponse(status: .created, response: widget)
            }
        }) { baseURL, log in
            try await withClient { client in
                let sent = Widget(name: "bolt", quantity: 21, createdAt: Date(timeIntervalSince1970: 1_700_000_000))
                let expected = Widget(name: "BOLT", quantity: 42, createdAt: Date(timeIntervalSince1970: 1_700_000_060))

                let decoded = try await client.send(.post, "\(baseURL)/widgets", body: sent, as: Widget.self)
                #expect(decoded == expected)

                // The status-preserving variant, for callers that need to tell 201 from 200.
                let response = try await client.send(.post, "\(baseURL)/widgets", body: sent)
                #expect(response.status == 201)
                #expect(response.headers["content-type"] == "application/json; charset=utf-8")
                #expect(try response.decode(Widget.self) == expected)
                #expect(await log.hits("/widgets") == 2)
            }
        }
    }

    @Test("a non-2xx status surfaces as .status(code, body) with the body as received, kept out of the description")
    func statusError() async throws {
        let envelope = #"{"error":{"code":"validation_failed","message":"name must not be empty","field":"name"}}"#
        try await withTestServer({ router, _ in
            router.post("widgets") { _, _ in
                Response.json(.unprocessableContent, envelope)
            }
            router.get("missing") { _, _ in
                Response(status: .notFound, body: .init(byteBuffer: ByteBuffer(string: "no such thing")))
            }
        }) { baseURL, _ in
            try await withClient { client in
                let widget = Widget(name: "", quantity: 1, createdAt: Date())
                await #expect(throws: HTTPClientError.status(422, body: Array(envelope.utf8))) {
                    try await client.send(.post, "\(baseURL)/widgets", body: widget, as: Widget.self)
                }
                await #expect(throws: HTTPClientError.status(404, body: Array("no such thing".utf8))) {
                    try await client.get("\(baseURL)/missing", as: Widget.self)
                }
                #expect(HTTPClientError.status(422, body: Array(envelope.utf8)).description == "unexpected HTTP status 422")
                // The raw API does not treat statuses as errors.
                let raw = try await client.execute(HTTPClientRequest(url: "\(baseURL)/missing"))
                #expect(raw.status == 404)
                #expect(raw.body == Array("no such thing".utf8))
            }
        }
    }

    @Test("A 2xx body that does not match the type is .undecodableBody without echoing the payload")
    func undecodableBody() async throws {
        try await withTestServer({ router, _ in
            router.get("secret") { _, _ in Response.json(.ok, #"{"name":"s3cr3t-value","quantity":"many"}"#) }
        }) { baseURL, _ in
            try await withClient { client in
                let error = await #expect(throws: HTTPClientError.self) {
                    try await client.get("\(baseURL)/secret", as: Widget.self)
                }
                guard case .undecodableBody(let type, let reason) = error else {
                    Issue.record("expected .undecodableBody, got \(String(describing: error))")
                    return
                }
                #expect(type == "Widget")
                #expect(reason.contains("quantity"))
                #expect(!(error?.description.contains("s3cr3t") ?? true))
            }
        }
    }

    // MARK: Methods and bodies

    @Test("Every method reaches the server with its body; HEAD has no body")
    func methods() async throws {
        try await withTestServer({ router, _ in
            @Sendable func echo(_ request: Request, _: ConnectionTrackingContext) async throws -> Response {
                let body = try await request.body.collect(upTo: 1 << 20)
                var headers = HTTPFields()
                headers[HeaderName("X-Method")!] = request.method.rawValue
                headers[HeaderName("X-Body-Length")!] = String(body.readableBytes)
                headers[HeaderName("X-Content-Type")!] = request.headers[.contentType] ?? "none"
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
            }
            router.on("echo", method: .get, use: echo)
            router.on("echo", method: .head, use: echo)
            router.on("echo", method: .post, use: echo)
            router.on("echo", method: .put, use: echo)
            router.on("echo", method: .patch, use: echo)
            router.on("echo", method: .delete, use: echo)
            router.on("echo", method: .options, use: echo)
        }) { baseURL, _ in
            try await withClient { client in
                let payload: [UInt8] = [0, 1, 2, 0, 255, 13, 10, 0]  // NULs and CRLF: must arrive intact
                for method in [HTTPMethod.post, .put, .patch, .delete] {
                    let response = try await client.execute(
                        HTTPClientRequest(method: method, url: "\(baseURL)/echo", body: payload)
                    )
                    #expect(response.status == 200)
                    #expect(response.headers["X-Method"] == method.rawValue)
                    #expect(response.body == payload)
                    // libcurl's default form Content-Type is suppressed for raw bodies.
                    #expect(response.headers["X-Content-Type"] == "none")
                }
                for method in [HTTPMethod.post, .put, .patch] {
                    let response = try await client.execute(HTTPClientRequest(method: method, url: "\(baseURL)/echo"))
                    #expect(response.headers["X-Method"] == method.rawValue)
                    #expect(response.headers["X-Body-Length"] == "0")
                }
                for method in [HTTPMethod.get, .delete, .options] {
                    let response = try await client.execute(HTTPClientRequest(method: method, url: "\(baseURL)/echo"))
                    #expect(response.headers["X-Method"] == method.rawValue)
                    #expect(response.body.isEmpty)
                }
                let head = try await client.execute(HTTPClientRequest(method: .head, url: "\(baseURL)/echo"))
                #expect(head.status == 200)
                #expect(head.headers["X-Method"] == "HEAD")
                #expect(head.body.isEmpty)

                let large = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
                let echoed = try await client.execute(HTTPClientRequest(method: .put, url: "\(baseURL)/echo", body: large))
                #expect(echoed.body == large)
            }
        }
    }

    @Test("A response larger than maxResponseBodySize fails with .responseTooLarge")
    func responseTooLarge() async throws {
        try await withTestServer({ router, _ in
            router.get("big") { _, _ in
                Response(status: .ok, body: .init(byteBuffer: ByteBuffer(repeating: 7, count: 100_000)))
            }
        }) { baseURL, _ in
            try await withClient(.init(maxResponseBodySize: 10_000)) { client in
                await #expect(throws: HTTPClientError.responseTooLarge(limit: 10_000)) {
                    try await client.execute(HTTPClientRequest(url: "\(baseURL)/big"))
                }
            }
        }
    }

    // MARK: Failures

    @Test("A handler slower than requestTimeout fails with .timedOut, quickly")
    func timeout() async throws {
        try await withTestServer({ router, log in
            router.get("slow") { request, context -> String in
                await log.record(request, context: context)
                try await Task.sleep(for: .seconds(30))
                await log.record(path: "/slow-finished")
                return "too late"
            }
        }) { baseURL, log in
            try await withClient(.init(requestTimeout: .milliseconds(200), retry: .none)) { client in
                await #expect(throws: HTTPClientError.timedOut) {
                    try await client.get("\(baseURL)/slow", as: String.self)
                }
                // The client gave up while the handler still held the request.
                #expect(await log.hits("/slow-finished") == 0)
                // On a loaded machine the server may route the request only after the client
                // gave up: wait for the hit, then check that no second attempt follows.
                #expect(await eventually(timeout: .seconds(3)) { await log.hits("/slow") >= 1 })
                try await Task.sleep(for: .milliseconds(100))
                #expect(await log.hits("/slow") == 1)
            }
        }
    }

    @Test("Timeouts of idempotent requests are retried; the last attempt's error is thrown")
    func timeoutRetried() async throws {
        try await withTestServer({ router, log in
            router.get("slow") { request, context -> String in
                await log.record(request, context: context)
                try await Task.sleep(for: .seconds(30))
                return "too late"
            }
        }) { baseURL, log in
            let configuration = HTTPClientConfiguration(requestTimeout: .milliseconds(150), retry: .fast(attempts: 3))
            try await withClient(configuration) { client in
                await #expect(throws: HTTPClientError.timedOut) {
                    try await client.get("\(baseURL)/slow", as: String.self)
                }
                // As above: the last attempt may be routed after the client gave up on it.
                #expect(await eventually(timeout: .seconds(3)) { await log.hits("/slow") >= 3 })
                try await Task.sleep(for: .milliseconds(100))
                #expect(await log.hits("/slow") == 3)
            }
        }
    }

    @Test("a request pinned to an address goes there, whatever the host name resolves to (or not)")
    func pinnedAddress() async throws {
        try await withTestServer({ router, log in
            router.get("pinned") { request, context -> String in
                await log.record(request, context: context)
                return request.head.authority ?? ""
            }
        }) { baseURL, log in
            try await withClient { client in
                let port = try #require(URLComponents(string: baseURL)?.port)
                // `.invalid` never resolves (RFC 2606): only the pin can reach the server, and the
                // Host header still names the URL's host.
                let response = try await client.execute(HTTPClientRequest(url: "http://hook.invalid:\(port)/pinned", pinnedAddress: "127.0.0.1"))
                #expect(response.status == 200 && String(decoding: response.body, as: UTF8.self) == "hook.invalid:\(port)")
                #expect(await log.hits("/pinned") == 1)
                await #expect(throws: HTTPClientError.self) {
                    _ = try await client.execute(HTTPClientRequest(url: "http://hook.invalid:\(port)/pinned"))
                }
                await #expect(throws: HTTPClientError.invalidURL(reason: "the pinned address is not an IP address")) {
                    _ = try await client.execute(HTTPClientRequest(url: "http://hook.invalid:\(port)/pinned", pinnedAddress: "evil.example\r\n"))
                }
            }
        }
    }

    @Test("A refused connection is .cannotConnect, naming only scheme, host and port")
    func cannotConnect() async throws {
        _ = try await withRefusingPort { port in
            try await withClient(.init(retry: .fast(attempts: 2))) { client in
                await #expect(throws: HTTPClientError.cannotConnect(url: "http://127.0.0.1:\(port)")) {
                    try await client.get("http://user:pw@127.0.0.1:\(port)/tenants?token=abc", as: String.self)
                }
            }
        }
    }

    @Test("Invalid URLs and header injection are rejected before anything is sent")
    func invalidInput() async throws {
        try await withClient { client in
            await #expect(throws: HTTPClientError.invalidURL(reason: "unsupported scheme 'ftp'")) {
                try await client.execute(HTTPClientRequest(url: "ftp://127.0.0.1/file"))
            }
            for url in ["", "not a url", "127.0.0.1:8080/path", "http://"] {
                let error = await #expect(throws: HTTPClientError.self) {
                    try await client.execute(HTTPClientRequest(url: url))
                }
                guard case .invalidURL = error else {
                    Issue.record("\(url.debugDescription): expected .invalidURL, got \(String(describing: error))")
                    continue
                }
            }
            await #expect(throws: HTTPClientError.invalidHeader(name: "X-Evil")) {
                try await client.execute(
                    HTTPClientRequest(url: "http://127.0.0.1:1/", headers: ["X-Evil": "a\r\nX-Injected: 1"])
                )
            }
            await #expect(throws: HTTPClientError.invalidHeader(name: "<not a token>")) {
                try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:1/", headers: ["Bad Name": "x"]))
            }
            await #expect(throws: HTTPClientError.invalidHeader(name: ":method")) {
                try await client.execute(HTTPClientRequest(method: HTTPMethod(rawValue: "GET /x"), url: "http://127.0.0.1:1/"))
            }
        }
    }

    // MARK: Retries

    @Test("A GET answered 503, 503, 200 is retried and succeeds after exactly 3 hits")
    func getRetriedOn503() async throws {
        try await withTestServer({ router, log in
            router.get("flaky") { request, context -> Response in
                let hit = await log.record(request, context: context)
                return hit <= 2
                    ? Response.json(.serviceUnavailable, #"{"error":{"code":"unavailable","message":"try later"}}"#)
                    : Response.json(.ok, #""ok""#)
            }
        }) { baseURL, log in
            try await withClient(.init(retry: .fast())) { client in
                let value = try await client.get("\(baseURL)/flaky", as: String.self)
                #expect(value == "ok")
                #expect(await log.hits("/flaky") == 3)
                // Retries carry the same request id as the first attempt.
                let ids = await log.requestIDs
                #expect(ids.count == 3)
                #expect(Set(ids).count == 1)
            }
        }
    }

    @Test("A POST without Idempotency-Key answered 503 is not retried")
    func postNotRetried() async throws {
        try await withTestServer({ router, log in
            router.post("orders") { request, context -> Response in
                await log.record(request, context: context)
                return Response.json(.serviceUnavailable, #"{"error":{"code":"unavailable","message":"try later"}}"#)
            }
        }) { baseURL, log in
            try await withClient(.init(retry: .fast())) { client in
                await #expect(throws: HTTPClientError.status(503, body: Array(#"{"error":{"code":"unavailable","message":"try later"}}"#.utf8))) {
                    try await client.send(.post, "\(baseURL)/orders", body: ["sku": "A1"], as: [String: String].self)
                }
                #expect(await log.hits("/orders") == 1)
            }
        }
    }

    @Test("A POST with Idempotency-Key, or marked idempotent, is retried")
    func idempotentPostRetried() async throws {
        try await withTestServer({ router, log in
            router.post("orders") { request, context -> Response in
                let hit = await log.record(request, context: context)
                return hit % 2 == 1 ? Response(status: .badGateway) : Response.json(.created, #"{"id":"o-1"}"#)
            }
        }) { baseURL, log in
            try await withClient(.init(retry: .fast())) { client in
                let created = try await client.send(
                    .post, "\(baseURL)/orders", body: ["sku": "A1"], as: [String: String].self,
                    headers: [(PlatformHeader.idempotencyKey, "key-1")]
                )
                #expect(created == ["id": "o-1"])
                #expect(await log.hits("/orders") == 2)

                let response = try await client.execute(
                    HTTPClientRequest(method: .post, url: "\(baseURL)/orders", body: [], idempotent: true)
                )
                #expect(response.status == 201)
                #expect(await log.hits("/orders") == 4)
            }
        }
    }

    @Test("500 is retried for an idempotent request, like 502/503/504; not for a plain POST; 409 and 501 never")
    func statusRetries() async throws {
        try await withTestServer({ router, log in
            router.get("broken") { request, context -> Response in
                await log.record(request, context: context)
                return Response(status: .internalServerError)
            }
            router.post("broken") { request, context -> Response in
                await log.record(request, context: context)
                return Response(status: .internalServerError)
            }
            router.get("conflict") { request, context -> Response in
                await log.record(request, context: context)
                return Response(status: .conflict)
            }
            router.get("unimplemented") { request, context -> Response in
                await log.record(request, context: context)
                return Response(status: .notImplemented)
            }
        }) { baseURL, log in
            try await withClient(.init(retry: .fast(attempts: 3))) { client in
                await #expect(throws: HTTPClientError.status(500, body: [])) {
                    try await client.get("\(baseURL)/broken", as: String.self)
                }
                #expect(await log.hits("/broken") == 3)
                await #expect(throws: HTTPClientError.status(500, body: [])) {
                    try await client.send(.post, "\(baseURL)/broken", body: ["sku": "A1"], as: [String: String].self)
                }
                #expect(await log.hits("/broken") == 4)
                await #expect(throws: HTTPClientError.status(409, body: [])) {
                    try await client.get("\(baseURL)/conflict", as: String.self)
                }
                await #expect(throws: HTTPClientError.status(501, body: [])) {
                    try await client.get("\(baseURL)/unimplemented", as: String.self)
                }
                #expect(await log.hits("/conflict") == 1)
                #expect(await log.hits("/unimplemented") == 1)
            }
        }
    }

    @Test("429 with Retry-After is retried, the wait capped at maxDelay")
    func retryAfterCapped() async throws {
        try await withTestServer({ router, log in
            router.get("limited") { request, context -> Response in
                let hit = await log.record(request, context: context)
                return hit == 1
                    ? Response(status: .tooManyRequests, headers: [.retryAfter: "120"])
                    : Response.json(.ok, "1")
            }
        }) { baseURL, log in
            try await withClient(.init(retry: .fast())) { client in
                // Retried after the (capped) Retry-After; the cap itself is checked where the delay
                // is computed (HTTPClientUnitTests.retryAfterCap), not by timing this call.
                let value = try await client.get("\(baseURL)/limited", as: Int.self)
                #expect(value == 1)
                #expect(await log.hits("/limited") == 2)
            }
        }
    }

    @Test("Attempts are bounded: a GET that always gets 503 makes maxAttempts hits")
    func retriesBounded() async throws {
        try await withTestServer({ router, log in
            router.get("down") { request, context -> Response in
                await log.record(request, context: context)
                return Response(status: .serviceUnavailable)
            }
        }) { baseURL, log in
            try await withClient(.init(retry: .fast(attempts: 4))) { client in
                await #expect(throws: HTTPClientError.status(503, body: [])) {
                    try await client.get("\(baseURL)/down", as: String.self)
                }
                #expect(await log.hits("/down") == 4)
            }
        }
    }

    // MARK: Request id

    @Test("X-Request-Id comes from the task-local, an explicit header, or is generated")
    func requestID() async throws {
        try await withTestServer({ router, log in
            router.get("whoami") { request, context -> Message in
                await log.record(request, context: context)
                return Message(request.headers[requestIDField] ?? "")
            }
        }) { baseURL, log in
            try await withClient { client in
                let fromTaskLocal = try await CorrelationContext.$requestID.withValue("req-from-task-local") {
                    // Child tasks inherit the binding too.
                    try await withThrowingTaskGroup(of: String.self) { group in
                        group.addTask { try await client.get("\(baseURL)/whoami", as: Message.self).value }
                        return try #require(try await group.next())
                    }
                }
                #expect(fromTaskLocal == "req-from-task-local")

                let explicit = try await CorrelationContext.$requestID.withValue("req-from-task-local") {
                    try await client.get("\(baseURL)/whoami", as: Message.self, headers: ["x-request-id": "req-explicit"]).value
                }
                #expect(explicit == "req-explicit")

                let generated1 = try await client.get("\(baseURL)/whoami", as: Message.self).value
                let generated2 = try await client.get("\(baseURL)/whoami", as: Message.self).value
                #expect(generated1.count == 36)
                #expect(generated2.count == 36)
                #expect(generated1 != generated2)

                #expect(await log.requestIDs == ["req-from-task-local", "req-explicit", generated1, generated2])
            }
        }
    }

    // MARK: Concurrency and connection reuse

    @Test("200 concurrent GETs all succeed over a bounded, reused set of connections")
    func concurrentRequests() async throws {
        try await withTestServer({ router, log in
            router.get("item/:id") { request, context -> Message in
                await log.began()
                await log.record(request, context: context)
                // A moment in the handler, so requests overlap at the server.
                try await Task.sleep(for: .milliseconds(2))
                await log.ended()
                return Message(try context.parameters.require("id"))
            }
        }) { baseURL, log in
            let maxConnections = 8
            // No request may be given up and retried on a fresh connection while the server
            // still handles it (a loaded machine queues these 200 for a while): no retries, and
            // a request timeout that is only a hang guard.
            try await withClient(.init(connectTimeout: .seconds(60), requestTimeout: .seconds(120), retry: .none,
                                       maxConnectionsPerHost: maxConnections)) { client in
                let results = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                    for index in 0..<200 {
                        group.addTask { (index, try await client.get("\(baseURL)/item/\(index)", as: Message.self).value) }
                    }
                    return try await group.reduce(into: [Int: String]()) { $0[$1.0] = $1.1 }
                }
                #expect(results.count == 200)
                #expect(results.allSatisfy { String($0.key) == $0.value })

                // Never more than 8 connections at once (one request each at a time), and the
                // connections were reused: far fewer of them than requests.
                let most = await log.mostInFlight
                #expect(most >= 1 && most <= maxConnections)
                let connections = await log.remotePorts.count
                #expect(connections >= 1 && connections < 200 / 2)
            }
        }
    }

    @Test("Sequential requests reuse one kept-alive connection")
    func sequentialReuse() async throws {
        try await withTestServer({ router, log in
            router.get("ping") { request, context -> Message in
                await log.record(request, context: context)
                return Message("pong")
            }
        }) { baseURL, log in
            try await withClient { client in
                for _ in 0..<25 {
                    let answer = try await client.get("\(baseURL)/ping", as: Message.self).value
                    #expect(answer == "pong")
                }
                #expect(await log.hits("/ping") == 25)
                #expect(await log.remotePorts.count == 1)
            }
        }
    }

    // MARK: Cancellation and shutdown

    @Test("Cancelling the task of an in-flight request throws CancellationError promptly")
    func cancellation() async throws {
        let (arrivals, arrived) = AsyncStream.makeStream(of: Void.self)
        try await withTestServer({ router, log in
            router.get("hang") { request, context -> String in
                await log.record(request, context: context)
                arrived.yield()
                try await Task.sleep(for: .seconds(30))
                await log.record(path: "/hang-finished")
                return "too late"
            }
            router.get("ping") { _, _ in Message("pong") }
        }) { baseURL, log in
            try await withClient(.init(requestTimeout: .seconds(60))) { client in
                let task = Task { try await client.get("\(baseURL)/hang", as: String.self) }
                var iterator = arrivals.makeAsyncIterator()
                await iterator.next()  // the request is in flight on the server

                task.cancel()
                let result = await task.result
                #expect(throws: CancellationError.self) { try result.get() }
                // It came back while the handler still held the request: the client did not wait.
                #expect(await log.hits("/hang-finished") == 0)
                #expect(await log.hits("/hang") == 1)  // cancelled, not retried

                // The client stays healthy: the aborted handle was cleaned up and recycled.
                let answer = try await client.get("\(baseURL)/ping", as: Message.self).value
                #expect(answer == "pong")
            }
        }
    }

    @Test("A task cancelled before the call throws CancellationError without sending anything")
    func cancelledBeforeStart() async throws {
        try await withTestServer({ router, log in
            router.get("ping") { request, context -> Message in
                await log.record(request, context: context)
                return Message("pong")
            }
        }) { baseURL, log in
            try await withClient { client in
                let task = Task {
                    while !Task.isCancelled { await Task.yield() }
                    return try await client.get("\(baseURL)/ping", as: Message.self)
                }
                task.cancel()
                await #expect(throws: CancellationError.self) { try await task.value }
                #expect(await log.hits("/ping") == 0)
            }
        }
    }

    @Test("shutdown() fails in-flight and later requests with .shutdown and is idempotent")
    func shutdown() async throws {
        let (arrivals, arrived) = AsyncStream.makeStream(of: Void.self)
        try await withTestServer({ router, log in
            router.get("hang") { _, _ -> String in
                arrived.yield()
                try await Task.sleep(for: .seconds(30))
                await log.record(path: "/hang-finished")
                return "too late"
            }
        }) { baseURL, log in
            let client = try CurlHTTPClient(configuration: .init(requestTimeout: .seconds(60)))
            let inFlight = Task { try await client.get("\(baseURL)/hang", as: String.self) }
            var iterator = arrivals.makeAsyncIterator()
            await iterator.next()

            await client.shutdown()
            await #expect(throws: HTTPClientError.shutdown) { try await inFlight.value }
            // Shut down while the handler still held the request: shutdown did not wait for it.
            #expect(await log.hits("/hang-finished") == 0)
            await #expect(throws: HTTPClientError.shutdown) {
                try await client.get("\(baseURL)/hang", as: String.self)
            }
            await client.shutdown()  // second call returns at once
        }
    }
}
