import Foundation
import Postgres
import TestSupport
import Testing

/// Connections whose backends were ended under them (`pg_terminate_backend`): a lease's first
/// statement that never took effect runs again on a fresh connection; nothing else is repeated.
@Suite("Severed connections")
struct SeveredConnectionTests {
    @Test("after pg_terminate_backend of every idle pooled connection, N+1 plain queries all succeed, on new backends")
    func terminatedIdleConnections() async throws {
        let count = 3
        try await withTestPool(maximumConnections: count, applicationName: TestDatabase.uniqueName("severed")) { pool in
            let pids = try await openConnections(pool, count: count)
            #expect(pids.count == count)
            #expect(pool.statistics.idle == count)

            // Not waiting for the backends to exit: their FATAL messages may reach the pool
            // before or after its reuse check, and either way must not reach the caller.
            #expect(try await terminateBackends(of: pool) == count)
            for _ in 0...count {
                let pid = try await pool.query("SELECT pg_backend_pid()::int8 AS pid").single().decode("pid", as: Int.self)
                #expect(!pids.contains(Int32(pid)))
            }
            #expect(pool.statistics.open <= count)
        }
    }

    @Test(
        "a backend terminated after the pool's reuse check (its FATAL arrives late): the lease's first statement runs again on a fresh connection",
        arguments: ["query", "transaction"]
    )
    func terminatedAfterTheCheck(lease: String) async throws {
        try await withTestPool(maximumConnections: 1, applicationName: TestDatabase.uniqueName("severed")) { pool in
            let row = try await pool.query(
                "SELECT pg_backend_pid()::int8 AS pid, inet_server_port()::int8 AS server, inet_client_port()::int8 AS client"
            ).single()
            let backend = try await FrozenBackend(
                pid: Int32(try row.decode("pid", as: Int.self)),
                serverPort: try row.decode("server", as: Int.self),
                clientPort: try row.decode("client", as: Int.self)
            )
            // The SIGTERM waits behind the SIGSTOP: the pooled connection's socket stays quiet,
            // so the reuse check passes it.
            #expect(try await terminateBackends(of: pool) == 1)
            #expect(pool.statistics.idle == 1)

            let statement = Task {
                try await lease == "query"
                    ? pool.query("SELECT pg_backend_pid()::int8 AS pid")
                    : pool.withTransaction { try await $0.query("SELECT pg_backend_pid()::int8 AS pid") }
            }
            // The backend goes on only once the lease's first statement (the query, or BEGIN)
            // has reached it: it reads the pending SIGTERM first and answers with its FATAL.
            #expect(await eventually { backend.unreadBytes() > 0 })
            backend.thaw()

            let pid = try await statement.value.single().decode("pid", as: Int.self)
            #expect(Int32(pid) != backend.pid)
            #expect(pool.statistics.open == 1)  // the fresh connection took the dead one's slot
            #expect(pool.statistics.idle == 1)
        }
    }

    @Test("a statement inside a transaction whose backend was terminated fails with connectionFailed, is not repeated, and the pool goes on with fresh connections")
    func terminatedInsideTransaction() async throws {
        try await withTestPool(maximumConnections: 2, applicationName: TestDatabase.uniqueName("severed")) { pool in
            let table = TestDatabase.uniqueName("severed")
            try await pool.withConnection { try await $0.execute(simple: "CREATE TABLE \(table) (v int)") }
            var terminatedPID: Int32 = 0

            let error = await #expect(throws: PostgresError.self) {
                try await pool.withTransaction { transaction in
                    try await transaction.query("INSERT INTO \(identifier: table) VALUES (1)")
                    terminatedPID = transaction.backendPID
                    try await terminateAndWait(transaction.backendPID)
                    try await transaction.query("INSERT INTO \(identifier: table) VALUES (2)")
                }
            }
            #expect(error?.kind == .connectionFailed)
            // Neither row: the transaction died with its backend, and the second INSERT was not
            // run again elsewhere (it would have committed on its own).
            #expect(try await pool.scalar("SELECT count(*)::int8 FROM \(identifier: table)") == 0)
            let pid = try await pool.scalar("SELECT pg_backend_pid()::int8")
            #expect(Int32(pid) != terminatedPID)
            #expect(pool.statistics.open == 1)
            try await pool.withConnection { try await $0.execute(simple: "DROP TABLE \(table)") }
        }
    }

    @Test("a later statement of a lease on a terminated backend fails with connectionFailed and is not repeated")
    func terminatedBetweenStatements() async throws {
        try await withTestPool(maximumConnections: 1, applicationName: TestDatabase.uniqueName("severed")) { pool in
            try await pool.withConnection { connection in
                try await connection.query("SELECT 1")
                try await terminateAndWait(connection.backendPID)
                let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
                #expect(error?.kind == .connectionFailed)
            }
            #expect(try await pool.scalar("SELECT 1::int8") == 1)
        }
    }
}

/// Leases `count` connections at once, so the pool holds that many idle afterwards; returns
/// their backends' pids.
private func openConnections(_ pool: PostgresPool, count: Int) async throws -> Set<Int32> {
    let release = Gate()
    return try await withThrowingTaskGroup(of: Int32.self) { group in
        for _ in 0..<count {
            group.addTask {
                try await pool.withConnection { connection in
                    await release.wait()
                    return connection.backendPID
                }
            }
        }
        // No lease gives its connection back before every one holds its own.
        #expect(await eventually { pool.statistics.inUse == count })
        release.open()
        return try await group.reduce(into: Set<Int32>()) { $0.insert($1) }
    }
}

/// Sends `pg_terminate_backend` to every backend of `pool` (its application name) without
/// waiting for them to exit; returns how many were signalled.
private func terminateBackends(of pool: PostgresPool) async throws -> Int {
    try await withTestPool(maximumConnections: 1) { admin in
        try await admin.scalar("""
            SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int8 FROM pg_stat_activity
            WHERE application_name = \(pool.configuration.applicationName)
            """)
    }
}

/// Terminates one backend and returns once it has exited.
private func terminateAndWait(_ pid: Int32) async throws {
    try await withTestPool(maximumConnections: 1) { admin in
        let gone = try await eventually {
            try await admin.scalar("""
                SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int8 FROM pg_stat_activity WHERE pid = \(Int(pid))
                """) == 0
        }
        #expect(gone, "backend \(pid) did not exit")
    }
}
