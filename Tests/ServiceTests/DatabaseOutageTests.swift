import Contracts
import Foundation
import HTTPClient
import Postgres
import ServiceKit
import TestSupport
import Testing

/// A service whose database connections are severed (`pg_terminate_backend`) answers as
/// usual; one whose database refuses connections answers 503 `database_unavailable` with
/// `Retry-After`; neither ever answers 500.
@Suite("Database outages")
struct DatabaseOutageTests {
    static let headers = HTTPClientHeaders([(PlatformHeader.serviceToken, TestServices.internalToken), ("Content-Type", "application/json")])

    @Test("auth, its connections terminated: requests answer as usual; its database refusing connections: 503 database_unavailable with Retry-After, a bearer token included; then as usual again")
    func severedThenRefused() async throws {
        try await withScratchDatabase { url in
            let database = try #require(URLComponents(string: url)?.path.dropFirst()).description
            try await withRouterTest(.auth, environment: ["DATABASE_URL": url]) { router in
                let known = "/internal/v1/tenants/\(UUID().uuidString.lowercased())"
                let unknown = "/internal/v1/tenants/\(UUID().uuidString.lowercased())"
                let slug = TestDatabase.uniqueName("outage")
                let registration = TenantRegistration(slug: slug, schema: "tenant_\(slug)", role: "tenant_\(slug)")
                let created = try await router.execute(.put, known, headers: Self.headers, body: Array(try JSONEncoder().encode(registration)))
                #expect(created.status == 201)

                // From the server's main database: a database cannot disallow connections to itself.
                try await withTestPool(maximumConnections: 1) { observer in
                    try await observer.withConnection { admin in
                        // Severed: every connection auth holds ends under it.
                        #expect(try await terminateBackends(of: "auth", on: database, admin) >= 1)
                        for _ in 0..<3 {
                            #expect(try await router.execute(.get, "/ready").status == 200)
                            #expect(try await router.execute(.get, known, headers: Self.headers).status == 200)
                            #expect(try await router.execute(.get, unknown, headers: Self.headers).status == 404)
                        }

                        // Refused: no new connection is accepted, and auth's are ended again.
                        try await admin.execute(simple: "ALTER DATABASE \(database) ALLOW_CONNECTIONS false")
                        #expect(try await terminateBackends(of: "auth", on: database, admin) >= 1)
                        for path in [known, unknown] {
                            let refused = try await router.execute(.get, path, headers: Self.headers)
                            #expect(refused.status == 503)
                            #expect(refused.headers["Retry-After"] == "1")
                            #expect(refused.errorEnvelope?.error.code == "database_unavailable")
                            let body = String(decoding: refused.body, as: UTF8.self)
                            #expect(!body.contains(database) && !body.contains("SELECT") && !body.contains("PostgresError"))
                        }
                        #expect(try await router.execute(.get, "/ready").status == 503)
                        // A developer's bearer token cannot be checked without the signing keys:
                        // the database's failure, not the token's (503, not 401).
                        let header = Data(#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#.utf8).base64EncodedString()
                            .replacingOccurrences(of: "=", with: "")
                        let bearer = HTTPClientHeaders([("Authorization", "Bearer \(header).e30.c2ln")])
                        let me = try await router.execute(.get, "/v1/me", headers: bearer)
                        #expect(me.status == 503)
                        #expect(me.errorEnvelope?.error.code == "database_unavailable")

                        try await admin.execute(simple: "ALTER DATABASE \(database) ALLOW_CONNECTIONS true")
                        #expect(try await router.execute(.get, known, headers: Self.headers).status == 200)
                        #expect(try await router.execute(.get, "/ready").status == 200)
                    }
                }
            }
        }
    }
}

/// Sends `pg_terminate_backend` to every backend of the service named `service` on
/// `database`; returns how many were signalled.
private func terminateBackends(of service: String, on database: String, _ connection: PostgresConnection) async throws -> Int {
    try await connection.query("""
        SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int8 AS n FROM pg_stat_activity
        WHERE application_name = \(service) AND datname = \(database)
        """).single().decode("n", as: Int.self)
}
