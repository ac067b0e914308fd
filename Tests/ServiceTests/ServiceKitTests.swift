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

/// The shared service kit, exercised through a live in-process server on 127.0.0.1.
@Suite("Service kit")
struct ServiceKitTests {
    struct Payload: Codable, Sendable {
        var name: String
        var count: Int
    }

    struct SecretFailure: Error, CustomStringConvertible {
        var description: String { "SELECT password FROM vault -- should never reach a client" }
    }

    /// Starts an application with the standard runtime plus test routes; runs `body` with its base URL.
    func withServer(_ body: (String, CurlHTTPClient) async throws -> Void) async throws {
        try await withScratchDatabase { url in try await withServer(databaseURL: url, body) }
    }

    func withServer(databaseURL: String, _ body: (String, CurlHTTPClient) async throws -> Void) async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = databaseURL
        environment["PORT"] = "0"
        environment["INTERNAL_SERVICE_TOKEN"] = TestServices.internalToken
        environment["LOG_LEVEL"] = "critical"
        let configuration = try ServiceConfiguration(service: .auth, environment: environment)
        let runtime = ServiceRuntime(configuration: configuration, migrations: [])
        let router = runtime.makeRouter()
        router.post("/echo") { request, context in
            let payload = try await request.decodeJSON(as: Payload.self, context: context)
            return try jsonResponse(Payload(name: payload.name.uppercased(), count: payload.count + 1), status: .created)
        }
        router.get("/fail/api") { _, _ -> Response in
            throw APIError.validation(field: "slug", "The slug must be 3 to 40 lowercase letters, digits or underscores.")
        }
        router.get("/fail/internal") { _, _ -> Response in throw SecretFailure() }
        router.get("/fail/database/:kind") { _, context -> Response in
            let kind: PostgresError.Kind = switch context.parameters.get("kind") {
            case "lost": .connectionFailed
            case "timeout": .acquireTimeout
            default: .uniqueViolation
            }
            throw PostgresError(kind, message: SecretFailure().description)
        }
        router.get("/whoami") { request, _ in
            Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: request.headers[HTTPField.Name(PlatformHeader.requestID)!] ?? "")))
        }
        let client = try TestServices.client()
        router.get("/relay") { _, _ -> Response in
            // An outgoing call made while serving a request carries that request's id.
            let response = try await client.execute(HTTPClientRequest(url: "\(RelayTarget.url.withLock { $0 })/whoami"))
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: response.body)))
        }
        runtime.internalRoutes(router).get("/v1/ping") { _, _ in try jsonResponse(["pong": true]) }
        router.get("/blocked-db") { _, _ -> Response in
            // Waits until the test releases its lock (noBlockingUnderDatabaseLoad).
            try await runtime.pool.withConnection { connection in
                try await connection.query("SELECT pg_advisory_lock_shared(\(Self.stallLock))")
                try await connection.query("SELECT pg_advisory_unlock_shared(\(Self.stallLock))")
            }
            return Response(status: .noContent)
        }

        do {
            try await withRunningApplication(runtime: runtime, router: router) { base in
                RelayTarget.url.withLock { $0 = base }
                try await body(base, client)
            }
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
    }

    @Test("JSON bodies decode; malformed JSON is 400 and a wrong shape is 422 naming the field")
    func decoding() async throws {
        try await withServer { base, client in
            let echoed = try await client.send(.post, base + "/echo", body: Payload(name: "ada", count: 1), as: Payload.self)
            #expect(echoed.name == "ADA" && echoed.count == 2)

            let malformed = try await client.execute(HTTPClientRequest(method: .post, url: base + "/echo", body: Array("{nope".utf8)))
            #expect(malformed.status == 400)
            #expect(malformed.errorEnvelope?.error.code == "invalid_json")

            let missing = try await client.execute(HTTPClientRequest(method: .post, url: base + "/echo", body: Array(#"{"name":"x"}"#.utf8)))
            #expect(missing.status == 422)
            #expect(missing.errorEnvelope?.error.field == "count")

            let wrongType = try await client.execute(HTTPClientRequest(method: .post, url: base + "/echo", body: Array(#"{"name":"x","count":"many"}"#.utf8)))
            #expect(wrongType.status == 422)
            #expect(wrongType.errorEnvelope?.error.field == "count")

            // PostgreSQL's text and jsonb cannot hold U+0000: refused up front, naming the field.
            let nul = try await client.execute(HTTPClientRequest(method: .post, url: base + "/echo", body: Array(#"{"name":"a\u0000b","count":1}"#.utf8)))
            #expect(nul.status == 422)
            #expect(nul.errorEnvelope?.error.field == "name")
            let nulKey = try await client.execute(HTTPClientRequest(method: .post, url: base + "/echo",
                                                                    body: Array(#"{"name":"x","count":1,"extra":{"k\u0000":1}}"#.utf8)))
            #expect(nulKey.status == 422)
            #expect(nulKey.errorEnvelope?.error.field == "extra")
            // An escaped backslash before `u0000` is no NUL.
            let escaped = try await client.send(.post, base + "/echo", body: Payload(name: "\\u0000", count: 1), as: Payload.self)
            #expect(escaped.name == "\\U0000")
        }
    }

    @Test("API errors render their status, code and field; an unreachable database is 503; other errors are a generic 500 that leaks nothing")
    func errorShape() async throws {
        try await withServer { base, client in
            let api = try await client.execute(HTTPClientRequest(url: base + "/fail/api"))
            #expect(api.status == 422)
            #expect(api.errorEnvelope == ErrorEnvelope(code: "validation_failed",
                                                      message: "The slug must be 3 to 40 lowercase letters, digits or underscores.",
                                                      field: "slug"))

            let failure = try await client.execute(HTTPClientRequest(url: base + "/fail/internal"))
            #expect(failure.status == 500)
            #expect(failure.errorEnvelope?.error.code == "internal_error")
            let text = String(decoding: failure.body, as: UTF8.self)
            #expect(!text.contains("SELECT") && !text.contains("vault") && !text.contains("SecretFailure"))

            // A database that cannot be reached is 503 with Retry-After; any other database
            // error stays a 500. Neither shows what the kit reported.
            for (kind, status) in [("lost", 503), ("timeout", 503), ("unique", 500)] {
                let answer = try await client.execute(HTTPClientRequest(url: base + "/fail/database/\(kind)"))
                #expect(answer.status == status, "\(kind)")
                #expect(answer.errorEnvelope?.error.code == (status == 503 ? "database_unavailable" : "internal_error"))
                #expect(answer.headers["Retry-After"] == (status == 503 ? "1" : nil))
                let body = String(decoding: answer.body, as: UTF8.self)
                #expect(!body.contains("SELECT") && !body.contains("vault") && !body.contains("PostgresError"))
            }

            // A path that is routed, with a method that is not: 405 with Allow (found by
            // schemathesis' unsupported_method check; Hummingbird itself answers 404).
            let wrongMethod = try await client.execute(HTTPClientRequest(method: .delete, url: base + "/echo"))
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.headers["Allow"] == "POST")
            #expect(wrongMethod.errorEnvelope?.error.code == "method_not_allowed")
            let captured = try await client.execute(HTTPClientRequest(method: .post, url: base + "/internal/v1/ping"))
            #expect(captured.status == 405 && captured.headers["Allow"] == "GET")
            let unknown = try await client.execute(HTTPClientRequest(method: .delete, url: base + "/no/such/path"))
            #expect(unknown.status == 404 && unknown.errorEnvelope?.error.code == "not_found")
        }
    }

    @Test("internal routes need the service token: 401 without, 403 with a wrong one, 200 with the right one")
    func internalToken() async throws {
        try await withServer { base, client in
            let url = base + "/internal/v1/ping"
            let anonymous = try await client.execute(HTTPClientRequest(url: url))
            #expect(anonymous.status == 401)
            #expect(anonymous.errorEnvelope?.error.code == "unauthorized")

            let wrong = try await client.execute(HTTPClientRequest(url: url, headers: HTTPClientHeaders([(PlatformHeader.serviceToken, "not-the-token-at-all")])))
            #expect(wrong.status == 403)

            let right = try await client.execute(HTTPClientRequest(url: url, headers: HTTPClientHeaders([(PlatformHeader.serviceToken, TestServices.internalToken)])))
            #expect(right.status == 200)
            let bearer = try await client.execute(HTTPClientRequest(url: url, headers: HTTPClientHeaders([("Authorization", "Bearer " + TestServices.internalToken)])))
            #expect(bearer.status == 200)
        }
    }

    @Test("the request id travels from the inbound request through an outgoing call; hostile ids are replaced")
    func requestIDPropagation() async throws {
        try await withServer { base, client in
            let relayed = try await client.execute(HTTPClientRequest(url: base + "/relay", headers: HTTPClientHeaders([(PlatformHeader.requestID, "trace-abc-123")])))
            #expect(String(decoding: relayed.body, as: UTF8.self) == "trace-abc-123")
            #expect(relayed.headers[PlatformHeader.requestID] == "trace-abc-123")

            let hostile = try await client.execute(HTTPClientRequest(url: base + "/whoami", headers: HTTPClientHeaders([(PlatformHeader.requestID, "bad id\" injected")])))
            let echoed = hostile.headers[PlatformHeader.requestID] ?? ""
            #expect(!echoed.isEmpty && echoed != "bad id\" injected")
        }
    }

    @Test("slow database work never stalls other requests: /health answers while six queries provably hold their connections")
    func noBlockingUnderDatabaseLoad() async throws {
        try await withScratchDatabase { url in
            try await withPool(url: url) { holder in
                try await withServer(databaseURL: url) { base, client in
                    // The test holds an advisory lock that /blocked-db waits for: its queries stay
                    // in the database, each holding a pool connection (and, if libpq calls ran on
                    // them, one of Swift's cooperative threads: 2 here), until the test lets go.
                    try await holder.withConnection { lock in
                        try await lock.query("SELECT pg_advisory_lock(\(Self.stallLock))")
                        let blocked = Task {
                            try await withThrowingTaskGroup(of: Int.self) { group in
                                for _ in 0..<6 {
                                    group.addTask { try await client.execute(HTTPClientRequest(url: base + "/blocked-db")).status }
                                }
                                return try await group.reduce(into: [Int]()) { $0.append($1) }
                            }
                        }
                        let waiting: PostgresQuery = """
                            SELECT count(*)::int8 FROM pg_stat_activity
                            WHERE datname = current_database() AND application_name = 'auth' AND wait_event_type = 'Lock'
                            """
                        let allWaiting = try await eventually(timeout: .seconds(30)) { try await holder.scalar(waiting) == 6 }
                        #expect(allWaiting, "six queries should be waiting on the lock")
                        for _ in 0..<10 {
                            let health = try await client.execute(HTTPClientRequest(url: base + "/health"))
                            #expect(health.status == 200)
                        }
                        // Answered while all six still waited: nothing /health needed was held by them.
                        #expect(try await holder.scalar(waiting) == 6)
                        try await lock.query("SELECT pg_advisory_unlock(\(Self.stallLock))")
                        let statuses = try await blocked.value
                        #expect(statuses == Array(repeating: 204, count: 6))
                    }
                }
            }
        }
    }

    /// The advisory lock key `/blocked-db` waits for.
    static let stallLock = 7_221_001

    @Test("configuration errors are clear; no secret has a default, a short one or a shipped placeholder")
    func configuration() throws {
        let required = TestServices.requiredEnvironment
        func configuration(_ changes: [String: String?]) throws -> ServiceConfiguration {
            var environment = required
            for (key, value) in changes { environment[key] = value }
            return try ServiceConfiguration(service: .storage, environment: environment)
        }
        func refusal(_ changes: [String: String?]) -> String {
            do {
                _ = try configuration(changes)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal(["PORT": "http"]).contains("PORT"))
        #expect(refusal(["LOG_LEVEL": "loud"]).contains("LOG_LEVEL"))
        // No token, in any mode: there is no development default any more.
        #expect(refusal(["INTERNAL_SERVICE_TOKEN": nil]).contains("INTERNAL_SERVICE_TOKEN is required"))
        #expect(refusal(["INTERNAL_SERVICE_TOKEN": nil, "PLATFORM_ENV": "development"]).contains("INTERNAL_SERVICE_TOKEN is required"))
        #expect(refusal(["INTERNAL_SERVICE_TOKEN": String(repeating: "a", count: 31)]).contains("at least 32"))
        // The placeholders deploy/.env.example and deploy/k8s/secret.yaml ship, whatever their length.
        for placeholder in ["change-me-to-a-long-random-secret-0123456789", "CHANGE-ME-internal-service-token-0123456789abcdef"] {
            #expect(refusal(["INTERNAL_SERVICE_TOKEN": placeholder]).contains("placeholder"), "\(placeholder)")
        }
        #expect(refusal(["DATABASE_URL": nil]).contains("DATABASE_URL is required"))
        // A refusal names the variable, never the secret's value.
        let secret = "change-me-" + SecureToken.random()
        #expect(!refusal(["INTERNAL_SERVICE_TOKEN": secret]).contains(secret))

        let defaults = try configuration([:])
        #expect(defaults.port == 8084)
        #expect(defaults.serviceURLs[.auth] == "http://127.0.0.1:8081")
        #expect(defaults.internalToken == TestServices.internalToken)
    }

    @Test("constant-time comparison agrees with ==")
    func constantTime() {
        #expect(constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!constantTimeEquals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!constantTimeEquals([], Array("a".utf8)))
        #expect(constantTimeEquals([], []))
    }
}

/// Where `/relay` sends its outgoing call (the same server, learned once it is listening).
enum RelayTarget {
    static let url = Mutex("")
}

extension ServiceKitTests {
    @Test("a tenant's concurrency budget: at most `limit` permits per tenant, refused at once past it with 429 and Retry-After, given back however the work ends; tenants apart; no entry left for a tenant with nothing in flight")
    func tenantConcurrency() async throws {
        let budget = TenantConcurrency(limit: 2)
        let a = UUID(), b = UUID()
        #expect(budget.tryAcquire(a) && budget.tryAcquire(a))
        #expect(!budget.tryAcquire(a))
        #expect(budget.tryAcquire(b))
        budget.release(a)
        #expect(budget.tryAcquire(a))
        budget.release(a)
        budget.release(a)
        budget.release(b)
        #expect(budget.tenantsInFlight == 0)

        struct Failure: Error {}
        await #expect(throws: Failure.self) { try await budget.withPermit(a) { throw Failure() } }
        #expect(budget.permits(of: a) == 0)
        let held = try await budget.withPermit(a) {
            try await budget.withPermit(a) {
                do {
                    _ = try await budget.withPermit(a) { Issue.record("a third permit was granted") }
                    return budget.permits(of: a)
                } catch let refused as APIError {
                    #expect(refused.status == .tooManyRequests && refused.code == "tenant_busy")
                    #expect(refused.headers[.retryAfter] == "1")
                    return budget.permits(of: a)
                }
            }
        }
        #expect(held == 2)
        #expect(budget.tenantsInFlight == 0)
    }
}
