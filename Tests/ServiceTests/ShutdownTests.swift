import Contracts
import Foundation
import HTTPClient
import Postgres
import TestSupport
import Testing

/// Graceful shutdown of the real executables, as an orchestrator stops them (Docker's and
/// Kubernetes' SIGTERM): the server stops accepting at once, the request in flight still
/// completes, and the process exits 0 — within `SHUTDOWN_GRACE_SECONDS`.
///
/// **The slow request.** The test needs a request that is provably in flight when SIGTERM
/// arrives, on a real route, with no test-only endpoint or debug setting in the services. It
/// uses the tenant registry's `PUT /internal/v1/tenants/{id}`, which auth, realtime and storage
/// all serve: its handler writes to `<service>.tenants` in a transaction. The test holds
/// `LOCK TABLE <service>.tenants IN SHARE MODE` in its own open transaction, so the handler's
/// `INSERT` waits on the database — what a request stuck behind a long-running transaction
/// does in production. `pg_stat_activity` shows the service's backend waiting on that lock, so
/// the test knows the request is in the handler (not merely sent) before it signals. Then:
/// SIGTERM; a new connection must be refused (or answered 503) while the backend still waits;
/// the test commits, releasing the lock; the PUT must answer 201, its row must be there, and
/// the process must exit 0.
///
/// Alternatives not taken: a request body streamed slowly tests HTTP body reading rather than
/// a handler at work, and depends on client timing; an advisory lock would tie the test to the
/// registry's private lock key.
@Suite("Graceful shutdown", .serialized)
struct ShutdownTests {
    @Test("on SIGTERM the server refuses new connections, finishes the request in flight and exits 0",
          arguments: ["auth", "realtime", "storage"])
    func finishesInFlightRequest(name: String) async throws {
        let storageRoot = FileManager.default.temporaryDirectory
            .appendingPathComponent("platform-storage-\(UUID().uuidString.lowercased())").path
        defer { try? FileManager.default.removeItem(atPath: storageRoot) }
        try await withScratchDatabase { url in
            let service = try ServiceProcess(name, environment: [
                "DATABASE_URL": url, "STORAGE_ROOT": storageRoot, "SHUTDOWN_GRACE_SECONDS": "20",
            ])
            let client = try TestServices.client()
            do {
                try await service.waitUntil()
                try await inFlightRequestSurvivesSIGTERM(service, client: client, databaseURL: url)
            } catch {
                await client.shutdown()
                await service.stop()
                throw error
            }
            await client.shutdown()
            await service.stop()
        }
    }

    private func inFlightRequestSurvivesSIGTERM(_ service: ServiceProcess, client: CurlHTTPClient, databaseURL url: String) async throws {
        let name = service.name
        let id = UUID()
        let slug = TestDatabase.uniqueName("shutdown")
        let body = Array(try JSONEncoder().encode(TenantRegistration(slug: slug, schema: "tenant_\(slug)", role: "tenant_\(slug)")))
        let headers = HTTPClientHeaders([("Content-Type", "application/json"), (PlatformHeader.serviceToken, TestServices.internalToken)])
        let request = HTTPClientRequest(
            method: .put, url: service.baseURL + "/internal/v1/tenants/\(id.uuidString.lowercased())",
            headers: headers, body: body, timeout: .seconds(30)
        )
        // The service's backends waiting on a lock: the PUT's INSERT, once it reached the database.
        let waitingQuery: PostgresQuery = """
            SELECT count(*)::int8 FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = \(name) AND wait_event_type = 'Lock'
            """

        try await withPool(url: url) { pool in
            let inFlight: Task<HTTPClientResponse, any Error> = try await pool.withTransaction { connection in
                try await connection.execute(simple: "LOCK TABLE \(name).tenants IN SHARE MODE")
                let put = Task { try await client.execute(request) }

                let waiting = await eventually(timeout: .seconds(10)) { (try? await pool.scalar(waitingQuery)) == 1 }
                try #require(waiting, "the PUT never reached the database; log:\n\(service.logTail())")

                service.terminate()
                let refused = await eventually(timeout: .seconds(10)) { await newConnectionIsRefused(service) }
                #expect(refused, "a new request was still served after SIGTERM; log:\n\(service.logTail())")
                // The PUT is still in flight: its backend still waits for the lock, and the
                // process is still up to finish it.
                #expect(try await pool.scalar(waitingQuery) == 1)
                #expect(service.isRunning)
                return put
            }  // COMMIT: the lock goes, the PUT's INSERT proceeds.

            let response = try await inFlight.value
            #expect(response.status == 201, "the in-flight request after SIGTERM: \(response.status) \(String(decoding: response.body, as: UTF8.self))")
            let status = await service.waitForExit(timeout: .seconds(30))
            #expect(status == 0, "exit status after SIGTERM; log:\n\(service.logTail())")
            #expect(try await pool.scalar("SELECT count(*)::int8 FROM \(identifier: name).tenants WHERE id = \(id)") == 1)
        }
        #expect(service.log.contains("\"stopped\""), "the service did not log its orderly stop; log:\n\(service.logTail())")
    }
}

/// True when a request on a new connection is refused (nothing accepts on the port any more)
/// or answered 503; false while the server still serves it normally.
private func newConnectionIsRefused(_ service: ServiceProcess) async -> Bool {
    // A client of its own: no kept-alive connection to reuse, so this is a new connection.
    guard let probe = try? TestServices.client() else { return false }
    let refused: Bool
    do {
        let response = try await probe.execute(HTTPClientRequest(url: service.baseURL + "/health", timeout: .seconds(2)))
        refused = response.status == 503
    } catch HTTPClientError.cannotConnect {
        refused = true
    } catch {
        refused = false
    }
    await probe.shutdown()
    return refused
}
