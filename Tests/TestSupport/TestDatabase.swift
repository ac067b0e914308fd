import Foundation
import Logging
import Postgres

/// Where the tests find PostgreSQL: `DATABASE_URL`, as the project's test command
/// (`deploy/scripts/test.sh`) exports it after starting a throwaway cluster.
public enum TestDatabase {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "DATABASE_URL is not set: run the tests through deploy/scripts/test.sh, which starts a throwaway PostgreSQL"
        }
    }

    public static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else { throw Missing() }
        return url
    }

    public static let logger: Logger = {
        var logger = Logger(label: "tests")
        logger.logLevel = .warning
        return logger
    }()

    /// A pool on the test database; close it with `close()` at the end of the test. The acquire
    /// timeout is generous: tests assert what completes, never how fast, and a loaded 2-core
    /// machine can keep a queued lease waiting for seconds.
    /// `applicationName` tells the pool's backends apart in `pg_stat_activity`.
    public static func pool(
        maximumConnections: Int = 4,
        acquireTimeout: Duration = .seconds(30),
        statementTimeout: Duration? = .seconds(30),
        applicationName: String = "platform-tests"
    ) throws -> PostgresPool {
        PostgresPool(
            configuration: PostgresConfiguration(
                connectionString: try url(),
                applicationName: applicationName,
                maximumConnections: maximumConnections,
                acquireTimeout: acquireTimeout,
                statementTimeout: statementTimeout
            ),
            logger: logger
        )
    }

    /// A name unique to this run, safe as an unquoted identifier: `prefix_<12 hex>`.
    public static func uniqueName(_ prefix: String) -> String {
        prefix + "_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
    }
}

/// Runs `body` with a pool and closes the pool afterwards, whatever happens.
@discardableResult
public func withTestPool<Result: Sendable>(
    maximumConnections: Int = 4,
    acquireTimeout: Duration = .seconds(30),
    statementTimeout: Duration? = .seconds(30),
    applicationName: String = "platform-tests",
    _ body: (PostgresPool) async throws -> Result
) async throws -> Result {
    let pool = try TestDatabase.pool(
        maximumConnections: maximumConnections,
        acquireTimeout: acquireTimeout,
        statementTimeout: statementTimeout,
        applicationName: applicationName
    )
    return try await using(pool, body)
}

/// Runs `body` with `pool`, then closes the pool whatever happens.
private func using<Result: Sendable>(_ pool: PostgresPool, _ body: (PostgresPool) async throws -> Result) async throws -> Result {
    do {
        let result = try await body(pool)
        await pool.close()
        return result
    } catch {
        await pool.close()
        throw error
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
public func eventually(
    timeout: Duration = .seconds(10),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline, !Task.isCancelled {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// Waits until `condition` holds (re-checked every 20 ms): the state a test needs before it goes
/// on. Fails, naming `what`, only if it never holds within `hangGuard` — a guard against a hung
/// test, generous on purpose, never a claim about speed.
public func waitUntil(_ what: String, hangGuard: Duration = .seconds(120), _ condition: () async throws -> Bool) async throws {
    guard try await eventually(timeout: hangGuard, condition) else {
        throw ServiceProcessError(description: "never happened: \(what)")
    }
}

/// Runs `body` with the URL of a database created for it (and dropped afterwards), on the same
/// server as `DATABASE_URL`. Tests that start the real services use one each: the services own
/// fixed schema names (`auth`, `storage`, …), so a database per test keeps them apart and
/// never touches the schemas of the database `DATABASE_URL` names.
public func withScratchDatabase<Result: Sendable>(_ body: (String) async throws -> Result) async throws -> Result {
    let base = try TestDatabase.url()
    guard var components = URLComponents(string: base) else {
        throw TestDatabase.Missing()
    }
    let name = TestDatabase.uniqueName("platform_t")
    components.path = "/" + name
    guard let url = components.string else { throw TestDatabase.Missing() }
    try await withTestPool(maximumConnections: 1) { pool in
        try await pool.withConnection { try await $0.execute(simple: "CREATE DATABASE \(name)") }
    }
    do {
        let result = try await body(url)
        try await dropScratchDatabase(name)
        return result
    } catch {
        try? await dropScratchDatabase(name)
        throw error
    }
}

/// Dropped as the superuser: `WITH (FORCE)` ends the sessions of the services' own roles
/// (which the database's owner may not end) and of a test's admin pool. A test's admin pool may
/// still be closing when its body returns, so a refused drop is tried again briefly.
private func dropScratchDatabase(_ name: String) async throws {
    try await withPool(url: try TestDatabase.adminURL(for: try TestDatabase.url())) { pool in
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await pool.withConnection { try await $0.execute(simple: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
                return
            } catch let error as PostgresError where attempt < 20 && (error.sqlState == "42501" || error.sqlState == "55006") {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}

/// A pool on a given database URL (a scratch database).
@discardableResult
public func withPool<Result: Sendable>(url: String, _ body: (PostgresPool) async throws -> Result) async throws -> Result {
    let pool = PostgresPool(
        configuration: PostgresConfiguration(connectionString: url, applicationName: "platform-tests", maximumConnections: 2),
        logger: TestDatabase.logger
    )
    return try await using(pool, body)
}

extension TestDatabase {
    /// The superuser URL (`DATABASE_ADMIN_URL`, exported by the test harness) for the database
    /// `url` names: for tests that must act as an operator would (tampering, role checks).
    public static func adminURL(for url: String) throws -> String {
        guard let admin = ProcessInfo.processInfo.environment["DATABASE_ADMIN_URL"], var components = URLComponents(string: admin),
              let target = URLComponents(string: url)
        else {
            throw ServiceProcessError(description: "DATABASE_ADMIN_URL (a superuser URL on the same server) is not set; deploy/scripts/with-postgres.sh sets it")
        }
        components.path = target.path
        guard let result = components.string else { throw Missing() }
        return result
    }
}

extension PostgresPool {
    /// The single integer a query returns (`SELECT count(*)::int8 …`).
    public func scalar(_ query: PostgresQuery) async throws -> Int {
        try await self.query(query).single().decode(at: 0, as: Int.self)
    }
}
