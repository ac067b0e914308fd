import Contracts
import Foundation
import HTTPClient
import HTTPTypes
import Hummingbird
import Postgres
import ServiceClients
import ServiceKit
import Synchronization
import TestSupport
import Testing

/// Idempotency keys, through a live in-process server whose schema is built by provisioning's
/// real migrations (0001 and 0002) on a scratch database.
@Suite("Idempotency keys")
struct IdempotencyTests {
    struct Item: Codable, Sendable {
        var name: String
    }

    struct Created: Codable, Sendable, Equatable {
        var id: Int
        var name: String
    }

    struct Unexpected: Error {}

    /// How many times each route's operation ran.
    final class Counters: Sendable {
        private let counts = Mutex<[String: Int]>([:])

        func next(_ name: String) -> Int {
            counts.withLock { counts in
                counts[name, default: 0] += 1
                return counts[name, default: 0]
            }
        }

        subscript(_ name: String) -> Int { counts.withLock { $0[name, default: 0] } }
    }

    struct Harness {
        let base: String
        let client: CurlHTTPClient
        let counters: Counters
        let databaseURL: String
        /// `/slow` stays in flight until this opens.
        let slowGate: Gate

        func post(_ path: String, key: String? = nil, body: String = #"{"name":"ada"}"#) async throws -> HTTPClientResponse {
            var headers = HTTPClientHeaders([("Content-Type", "application/json")])
            if let key { headers.add(name: PlatformHeader.idempotencyKey, value: key) }
            return try await client.execute(HTTPClientRequest(method: .post, url: base + path, headers: headers, body: Array(body.utf8)))
        }

        /// Runs SQL against the service's schema (`provisioning`).
        func sql(_ query: PostgresQuery) async throws -> PostgresResult {
            try await withPool(url: databaseURL) { pool in try await pool.query(query) }
        }

        func rowCount(key: String? = nil) async throws -> Int {
            let rows = try await sql("SELECT count(*)::int8 AS n FROM provisioning.idempotency_keys WHERE \(key == nil) OR key = \(key ?? "")")
            return try rows.single().decode("n", as: Int.self)
        }
    }

    static var migrationsDirectory: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Services/Provisioning/Migrations", isDirectory: true)
    }

    /// Starts the provisioning runtime with its migrations and test routes, waits until it is
    /// ready (migrations applied), and runs `body`.
    func withServer(_ body: (Harness) async throws -> Void) async throws {
        try await withScratchDatabase { url in
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = url
            environment["PORT"] = "0"
            environment["INTERNAL_SERVICE_TOKEN"] = TestServices.internalToken
            environment["LOG_LEVEL"] = "critical"
            let configuration = try ServiceConfiguration(service: .provisioning, environment: environment)
            let runtime = ServiceRuntime(configuration: configuration, migrations: try Migration.load(from: Self.migrationsDirectory))
            let store = IdempotencyStore(pool: runtime.pool, schema: "provisioning")
            let counters = Counters()
            let slowGate = Gate()
            let router = runtime.makeRouter()

            router.post("/items") { request, context in
                try await store.respond(to: request, context: context, scope: "POST /items") { body in
                    let item = try decodeJSON(Item.self, from: body)
                    return try .json(Created(id: counters.next("items"), name: item.name), status: .created)
                }
            }
            router.post("/slow") { request, context in
                try await store.respond(to: request, context: context, scope: "POST /slow") { _ in
                    let id = counters.next("slow")
                    await slowGate.wait()  // held in flight until the test opens the gate
                    return try .json(Created(id: id, name: "slow"), status: .created)
                }
            }
            router.post("/reject") { request, context in
                try await store.respond(to: request, context: context, scope: "POST /reject") { _ in
                    _ = counters.next("reject")
                    throw APIError.validation(field: "name", "The name is not acceptable.")
                }
            }
            router.post("/flaky") { request, context in
                try await store.respond(to: request, context: context, scope: "POST /flaky") { _ in
                    switch counters.next("flaky") {
                    case 1: throw Unexpected()
                    case 2: throw APIError.serviceUnavailable("Try again later.")
                    case 3: throw APIError(.tooManyRequests, code: "rate_limited", message: "Slow down.")
                    case let n: return try .json(Created(id: n, name: "flaky"), status: .created)
                    }
                }
            }

            let client = try TestServices.client()
            do {
                try await withRunningApplication(runtime: runtime, router: router) { base in
                    let ready = try await eventually {
                        try await client.execute(HTTPClientRequest(url: base + "/ready")).status == 200
                    }
                    try #require(ready, "migrations were not applied")
                    try await body(Harness(base: base, client: client, counters: counters, databaseURL: url, slowGate: slowGate))
                }
            } catch {
                await client.shutdown()
                throw error
            }
            await client.shutdown()
        }
    }

    @Test("without a key the operation runs every time and nothing is stored")
    func noKey() async throws {
        try await withServer { server in
            for expected in 1...3 {
                let response = try await server.post("/items")
                #expect(response.status == 201)
                #expect(try JSONDecoder().decode(Created.self, from: Data(response.body)) == Created(id: expected, name: "ada"))
                #expect(response.headers[PlatformHeader.idempotentReplayed] == nil)
            }
            #expect(server.counters["items"] == 3)
            #expect(try await server.rowCount() == 0)
        }
    }

    @Test("same key and body: the operation runs once and repeats get the identical answer, marked replayed")
    func replay() async throws {
        try await withServer { server in
            let first = try await server.post("/items", key: "order-7f3a")
            #expect(first.status == 201)
            #expect(first.headers[PlatformHeader.idempotentReplayed] == nil)
            #expect(try JSONDecoder().decode(Created.self, from: Data(first.body)) == Created(id: 1, name: "ada"))

            for _ in 0..<3 {
                let again = try await server.post("/items", key: "order-7f3a")
                #expect(again.status == 201)
                #expect(again.body == first.body)
                #expect(again.headers["Content-Type"] == first.headers["Content-Type"])
                #expect(again.headers[PlatformHeader.idempotentReplayed] == "true")
            }
            #expect(server.counters["items"] == 1)

            // Another key is another request; the same key in another scope is unrelated.
            let other = try await server.post("/items", key: "order-8b2c")
            #expect(try JSONDecoder().decode(Created.self, from: Data(other.body)) == Created(id: 2, name: "ada"))
            let elsewhere = try await server.post("/reject", key: "order-7f3a")
            #expect(elsewhere.status == 422)
            #expect(elsewhere.headers[PlatformHeader.idempotentReplayed] == nil)
            #expect(server.counters["items"] == 2 && server.counters["reject"] == 1)

            let stored = try await server.sql("""
                SELECT state, response_status, fingerprint FROM provisioning.idempotency_keys
                WHERE scope = 'POST /items' AND key = 'order-7f3a'
                """).single()
            #expect(try stored.decode("state", as: String.self) == "completed")
            #expect(try stored.decode("response_status", as: Int.self) == 201)
            #expect(try stored.decode("fingerprint", as: String.self).count == 64)
        }
    }

    @Test("same key with a different body is 422 idempotency_key_reused, and nothing runs")
    func differentRequest() async throws {
        try await withServer { server in
            #expect(try await server.post("/items", key: "k-1", body: #"{"name":"ada"}"#).status == 201)
            let reused = try await server.post("/items", key: "k-1", body: #"{"name":"grace"}"#)
            #expect(reused.status == 422)
            #expect(reused.errorEnvelope?.error.code == "idempotency_key_reused")
            #expect(server.counters["items"] == 1)
            // The original answer is still what the original request gets.
            let original = try await server.post("/items", key: "k-1", body: #"{"name":"ada"}"#)
            #expect(original.status == 201 && original.headers[PlatformHeader.idempotentReplayed] == "true")
        }
    }

    @Test("a duplicate while the first is still running is 409 idempotency_key_in_flight; afterwards it is replayed")
    func inFlight() async throws {
        try await withServer { server in
            defer { server.slowGate.open() }  // never leave the request hanging, whatever fails
            let first = Task { try await server.post("/slow", key: "slow-1") }
            let started = await eventually(timeout: .seconds(5)) { server.counters["slow"] == 1 }
            try #require(started)

            let duplicate = try await server.post("/slow", key: "slow-1")
            #expect(duplicate.status == 409)
            #expect(duplicate.errorEnvelope?.error.code == "idempotency_key_in_flight")
            #expect(duplicate.headers["Retry-After"] == "1")

            server.slowGate.open()
            let original = try await first.value
            #expect(original.status == 201)
            let after = try await server.post("/slow", key: "slow-1")
            #expect(after.status == 201 && after.body == original.body)
            #expect(after.headers[PlatformHeader.idempotentReplayed] == "true")
            #expect(server.counters["slow"] == 1)
        }
    }

    @Test("a burst of identical requests with one key runs the operation exactly once")
    func burst() async throws {
        try await withServer { server in
            let responses = try await withThrowingTaskGroup(of: HTTPClientResponse.self) { group in
                for _ in 0..<12 {
                    group.addTask { try await server.post("/items", key: "burst-1") }
                }
                return try await group.reduce(into: [HTTPClientResponse]()) { $0.append($1) }
            }
            #expect(server.counters["items"] == 1)
            #expect(responses.allSatisfy { $0.status == 201 || $0.status == 409 }, "\(responses.map(\.status))")
            let created = responses.filter { $0.status == 201 }
            #expect(created.filter { $0.headers[PlatformHeader.idempotentReplayed] == nil }.count == 1)
            #expect(Set(created.map(\.body)).count == 1)
        }
    }

    @Test("a 4xx APIError is stored and replayed like a success")
    func clientErrorReplayed() async throws {
        try await withServer { server in
            let first = try await server.post("/reject", key: "bad-1")
            #expect(first.status == 422)
            #expect(first.errorEnvelope == ErrorEnvelope(code: "validation_failed", message: "The name is not acceptable.", field: "name"))
            let again = try await server.post("/reject", key: "bad-1")
            #expect(again.status == 422)
            #expect(again.body == first.body)
            #expect(again.headers[PlatformHeader.idempotentReplayed] == "true")
            #expect(server.counters["reject"] == 1)
        }
    }

    @Test("an unexpected error, a 5xx or a 429 releases the key, so a retry runs the operation again")
    func failureReleases() async throws {
        try await withServer { server in
            let crashed = try await server.post("/flaky", key: "retry-me")
            #expect(crashed.status == 500)
            #expect(crashed.errorEnvelope?.error.code == "internal_error")
            #expect(try await server.rowCount(key: "retry-me") == 0)

            let unavailable = try await server.post("/flaky", key: "retry-me")
            #expect(unavailable.status == 503)
            #expect(unavailable.headers[PlatformHeader.idempotentReplayed] == nil)
            #expect(try await server.rowCount(key: "retry-me") == 0)

            let limited = try await server.post("/flaky", key: "retry-me")
            #expect(limited.status == 429)

            let succeeded = try await server.post("/flaky", key: "retry-me")
            #expect(succeeded.status == 201)
            #expect(try JSONDecoder().decode(Created.self, from: Data(succeeded.body)) == Created(id: 4, name: "flaky"))

            let replayed = try await server.post("/flaky", key: "retry-me")
            #expect(replayed.status == 201 && replayed.body == succeeded.body)
            #expect(replayed.headers[PlatformHeader.idempotentReplayed] == "true")
            #expect(server.counters["flaky"] == 4)
        }
    }

    @Test("keys that are not 1…255 visible ASCII characters are 400 invalid_idempotency_key and run nothing")
    func invalidKeys() async throws {
        try await withServer { server in
            for key in ["has space", String(repeating: "k", count: 256), "quote\"and space "] {
                let response = try await server.post("/items", key: key)
                #expect(response.status == 400, "key \(key.prefix(20))")
                #expect(response.errorEnvelope?.error.code == "invalid_idempotency_key")
            }
            // Non-ASCII bytes: refused, whether by the HTTP layer or by the store.
            let nonASCII = try await server.post("/items", key: "cl\u{E9}-\u{1F511}")
            #expect(nonASCII.status == 400)
            #expect(server.counters["items"] == 0)
            #expect(try await server.rowCount() == 0)

            let longest = try await server.post("/items", key: String(repeating: "k", count: 255))
            #expect(longest.status == 201)
            let symbols = try await server.post("/items", key: "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
            #expect(symbols.status == 201)
        }
    }

    @Test("rows older than the retention count as absent and are purged; abandoned in-flight claims are taken over")
    func expiry() async throws {
        try await withServer { server in
            #expect(try await server.post("/items", key: "old").status == 201)
            #expect(try await server.post("/items", key: "older").status == 201)
            _ = try await server.sql("""
                UPDATE provisioning.idempotency_keys SET created_at = now() - interval '2 days'
                WHERE key IN ('old', 'older')
                """)

            // An expired key runs again, as if new (no replay)…
            let again = try await server.post("/items", key: "old")
            #expect(again.status == 201)
            #expect(again.headers[PlatformHeader.idempotentReplayed] == nil)
            #expect(try JSONDecoder().decode(Created.self, from: Data(again.body)) == Created(id: 3, name: "ada"))
            #expect(server.counters["items"] == 3)
            // …and claiming it purged the scope's other expired row.
            #expect(try await server.rowCount(key: "older") == 0)
            #expect(try await server.rowCount(key: "old") == 1)

            // A claim whose process died (in flight for longer than the timeout) is taken over
            // by the same request; a fresh one is not (see the in-flight test).
            #expect(try await server.post("/items", key: "orphan").status == 201)
            _ = try await server.sql("""
                UPDATE provisioning.idempotency_keys
                SET state = 'in_flight', response_status = NULL, response_body = NULL,
                    response_content_type = NULL, completed_at = NULL, created_at = now() - interval '5 minutes'
                WHERE key = 'orphan'
                """)
            let different = try await server.post("/items", key: "orphan", body: #"{"name":"grace"}"#)
            #expect(different.status == 422)
            let takenOver = try await server.post("/items", key: "orphan")
            #expect(takenOver.status == 201)
            #expect(takenOver.headers[PlatformHeader.idempotentReplayed] == nil)
            #expect(server.counters["items"] == 5)
            let replayed = try await server.post("/items", key: "orphan")
            #expect(replayed.headers[PlatformHeader.idempotentReplayed] == "true" && replayed.body == takenOver.body)
        }
    }
}
