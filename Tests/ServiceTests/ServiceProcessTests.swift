import Contracts
import Foundation
import HTTPClient
import Postgres
import ServiceClients
import TestSupport
import Testing

/// The four real executables, started as processes against the real database.
///
/// Each test runs its services against a database of its own (the services own fixed schema
/// names), so tests neither collide nor touch the schemas of `DATABASE_URL`'s database.
/// Serialized to keep the machine's two cores for the processes under test.
@Suite("Service executables", .serialized)
struct ServiceProcessTests {
    static let services = ["auth", "provisioning", "realtime", "storage"]

    @Test("each service starts, applies its migrations, is ready, serves metrics, and exits 0 on SIGTERM", arguments: services)
    func startsAndServes(name: String) async throws {
        try await withScratchDatabase { url in try await startsAndServes(name: name, databaseURL: url) }
    }

    func startsAndServes(name: String, databaseURL: String) async throws {
        let service = try ServiceProcess(name, environment: ["DATABASE_URL": databaseURL])
        let client = try TestServices.client()
        do {
            try await service.waitUntil(path: "/ready", status: 200)

            let health = try await client.get(service.baseURL + "/health", as: HealthStatus.self)
            #expect(health == HealthStatus(status: "ok", service: name))
            let ready = try await client.get(service.baseURL + "/ready", as: HealthStatus.self)
            #expect(ready.status == "ready")
            #expect(ready.checks?["database"] == "ok")

            // Its own schema and ledger exist.
            try await withPool(url: databaseURL) { pool in
                let applied = try await pool.query("SELECT count(*)::int8 AS n FROM \(identifier: name)._migrations").single()
                #expect(try applied.decode("n", as: Int.self) >= 1)
            }

            // A request id given by the caller comes back; unknown routes get the error shape.
            let missing = try await client.execute(HTTPClientRequest(
                url: service.baseURL + "/no/such/route",
                headers: HTTPClientHeaders([(PlatformHeader.requestID, "test-req-42")])
            ))
            #expect(missing.status == 404)
            #expect(missing.headers[PlatformHeader.requestID] == "test-req-42")
            #expect(missing.errorEnvelope?.error.code == "not_found")

            let metricsResponse = try await client.execute(HTTPClientRequest(url: service.baseURL + "/metrics"))
            #expect(metricsResponse.status == 200)
            #expect(metricsResponse.headers["Content-Type"]?.hasPrefix("text/plain") == true)
            let metrics = try PrometheusText(parsing: String(decoding: metricsResponse.body, as: UTF8.self))
            #expect(metrics.types["http_requests_total"] == "counter")
            #expect(metrics.types["http_request_duration_seconds"] == "histogram")
            #expect((metrics.value("http_requests_total", ["route": "/health", "status": "200"]) ?? 0) >= 1)
            #expect((metrics.value("http_requests_total", ["route": "NotFound", "status": "404"]) ?? 0) >= 1)
            #expect(metrics.value("db_pool_connections", ["state": "open"]) != nil)
            #expect(metrics.value("db_pool_connections", ["state": "in_use"]) != nil)
            #expect(metrics.value("db_pool_waiting") != nil)
            // The request-id log line was written with the id.
            #expect(await eventually(timeout: .seconds(2)) { service.log.contains("\"request.id\":\"test-req-42\"") })
        } catch {
            await client.shutdown()
            await service.stop()
            throw error
        }
        await client.shutdown()
        let status = await service.stop()
        #expect(status == 0, "exit status after SIGTERM; log:\n\(service.logTail())")
        #expect(!service.log.contains("platform:"), "the log must not contain the database password")
    }

    @Test("with the database unreachable, /health is 200 and /ready is 503 with the error shape")
    func readyReflectsDatabase() async throws {
        let closedPort = try freePort()
        let service = try ServiceProcess("storage", environment: [
            "DATABASE_URL": "postgresql://platform:secret-pw@127.0.0.1:\(closedPort)/platform",
        ])
        let client = try TestServices.client()
        do {
            try await service.waitUntil(path: "/health", status: 200)
            let ready = try await client.execute(HTTPClientRequest(url: service.baseURL + "/ready"))
            #expect(ready.status == 503)
            #expect(ready.errorEnvelope?.error.code == "not_ready")
            #expect(!String(decoding: ready.body, as: UTF8.self).contains("secret-pw"))
            #expect(!service.log.contains("secret-pw"))
        } catch {
            await client.shutdown()
            await service.stop()
            throw error
        }
        await client.shutdown()
        #expect(await service.stop() == 0)
    }

    @Test("a service refuses to start when an applied migration no longer matches its file")
    func changedMigrationRefused() async throws {
        try await withScratchDatabase { url in
            // Bring the schema up to date first, then tamper with the recorded checksum.
            let first = try ServiceProcess("realtime", environment: ["DATABASE_URL": url])
            try await first.waitUntil()
            #expect(await first.stop() == 0)

            try await withPool(url: url) { pool in
                let original = try await pool.query("SELECT checksum FROM realtime._migrations WHERE version = 1")
                    .single().decode("checksum", as: String.self)
                try await pool.query("UPDATE realtime._migrations SET checksum = \(String(repeating: "0", count: 64)) WHERE version = 1")
                let refused = try ServiceProcess("realtime", environment: ["DATABASE_URL": url])
                let status = await refused.waitForExit(timeout: .seconds(20))
                #expect(status != 0)
                #expect(refused.log.contains("refusing to start"))
                #expect(refused.log.contains("was changed after it was applied"))
                try await pool.query("UPDATE realtime._migrations SET checksum = \(original) WHERE version = 1")
            }

            // Restored, it starts again.
            let again = try ServiceProcess("realtime", environment: ["DATABASE_URL": url])
            try await again.waitUntil()
            #expect(await again.stop() == 0)
        }
    }

    @Test("two instances of one service starting at once apply its migrations once and both become ready")
    func concurrentStartUp() async throws {
        try await withScratchDatabase { url in
            let a = try ServiceProcess("storage", environment: ["DATABASE_URL": url])
            let b = try ServiceProcess("storage", environment: ["DATABASE_URL": url])
            try await a.waitUntil()
            try await b.waitUntil()
            #expect(await a.stop() == 0)
            #expect(await b.stop() == 0)
            // Every migration in the ledger was applied by exactly one of the two.
            let applied = [a.log, b.log].map { $0.components(separatedBy: "\"applied migration\"").count - 1 }.reduce(0, +)
            try await withPool(url: url) { pool in
                let ledger = try await pool.query("SELECT count(*)::int8 AS n FROM storage._migrations").single()
                let recorded = try ledger.decode("n", as: Int.self)
                #expect(recorded >= 2)
                #expect(applied == recorded)
            }
        }
    }
}
