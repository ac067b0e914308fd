import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Connection pool")
struct PoolTests {
    @Test("more concurrent queries than connections all complete")
    func oversubscribed() async throws {
        try await withTestPool(maximumConnections: 3) { pool in
            let results = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<40 {
                    group.addTask {
                        let rows = try await pool.query("SELECT \(i)::int8 AS v, pg_sleep(0.01)")
                        return try rows.single().decode("v")
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.sorted() == Array(0..<40))
            let stats = pool.statistics
            #expect(stats.open <= 3)
            #expect(stats.waiting == 0)
            #expect(stats.inUse == 0)
        }
    }

    @Test("a connection that has served maximumUses leases is replaced by a fresh backend, and the old one ends")
    func retiredAfterMaximumUses() async throws {
        let pool = PostgresPool(
            configuration: PostgresConfiguration(connectionString: try TestDatabase.url(), applicationName: "platform-tests",
                                                 maximumConnections: 1, maximumUses: 2),
            logger: TestDatabase.logger
        )
        func backend() async throws -> Int { try await pool.query("SELECT pg_backend_pid()::int8 AS pid").single().decode("pid") }
        let first = try await backend()
        #expect(try await backend() == first)
        let third = try await backend()
        #expect(third != first)
        #expect(try await backend() == third)
        #expect(try await eventually(timeout: .seconds(30)) {
            try await pool.query("SELECT count(*)::int8 AS n FROM pg_stat_activity WHERE pid = \(first)").single().decode("n", as: Int.self) == 0
        })
        await pool.close()
    }

    @Test("acquire times out cleanly when the pool is exhausted")
    func acquireTimeout() async throws {
        try await withTestPool(maximumConnections: 1, acquireTimeout: .milliseconds(200)) { pool in
            try await pool.withConnection { held in
                await #expect {
                    try await pool.query("SELECT 1")
                } throws: { error in
                    (error as? PostgresError)?.kind == .acquireTimeout
                }
                #expect(pool.statistics.waiting == 0)
                #expect(pool.statistics.open == 1)
                // The held connection still works.
                try await held.query("SELECT 1")
            }
            // And once it is returned, the pool serves again.
            let rows = try await pool.query("SELECT 2::int8 AS v")
            #expect(try rows.single().decode("v", as: Int.self) == 2)
        }
    }

    @Test("a cancelled waiter leaves the queue")
    func cancelledWaiter() async throws {
        try await withTestPool(maximumConnections: 1, acquireTimeout: .seconds(30)) { pool in
            try await pool.withConnection { _ in
                let waiter = Task { try await pool.query("SELECT 1") }
                #expect(await eventually { pool.statistics.waiting == 1 })
                waiter.cancel()
                let outcome = await waiter.result
                #expect(throws: CancellationError.self) { try outcome.get() }
                #expect(pool.statistics.waiting == 0)
            }
        }
    }

    @Test("after pg_terminate_backend on every pooled backend, the next queries succeed")
    func terminatedBackendsAreReplaced() async throws {
        try await withTestPool(maximumConnections: 4) { pool in
            // Open all four connections at once, and learn their backend pids.
            let pids = try await withThrowingTaskGroup(of: Int32.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await pool.withConnection { connection in
                            try await connection.query("SELECT pg_sleep(0.1)")
                            return connection.backendPID
                        }
                    }
                }
                return try await group.reduce(into: Set<Int32>()) { $0.insert($1) }
            }
            #expect(pids.count == 4)
            #expect(pool.statistics.idle == 4)

            try await withTestPool(maximumConnections: 1) { admin in
                let terminated = try await admin.query(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid::int4))::int8 AS n FROM unnest(\(pids.map(Int.init))) AS pid"
                )
                #expect(try terminated.single().decode("n", as: Int.self) == 4)
                #expect(try await eventually {
                    let alive = try await admin.query(
                        "SELECT count(*)::int8 AS n FROM pg_stat_activity WHERE pid = ANY(\(pids.map(Int.init)))"
                    )
                    return try alive.single().decode("n", as: Int.self) == 0
                })
            }

            for _ in 0..<8 {
                let rows = try await pool.query("SELECT pg_backend_pid()::int8 AS pid")
                let pid = try rows.single().decode("pid", as: Int.self)
                #expect(!pids.contains(Int32(pid)))
            }
        }
    }

    @Test("a statement over its timeout is cancelled with a typed error, and the connection stays usable")
    func statementTimeout() async throws {
        try await withTestPool(maximumConnections: 1, statementTimeout: .milliseconds(200)) { pool in
            // The statement's own timeout cancelled it (57014), not its five seconds running out.
            await #expect {
                try await pool.query("SELECT pg_sleep(5)")
            } throws: { error in
                guard let error = error as? PostgresError else { return false }
                return error.kind == .queryCanceled && error.sqlState == "57014"
            }
            let rows = try await pool.query("SELECT 1::int8 AS one")
            #expect(try rows.single().decode("one", as: Int.self) == 1)
        }
    }

    @Test("cancelling the calling task cancels the statement on the server")
    func taskCancellation() async throws {
        try await withTestPool(maximumConnections: 2) { pool in
            let marker = TestDatabase.uniqueName("cancel_me")
            let task = Task { try await pool.query("SELECT pg_sleep(10), \(marker)::text") }
            // Cancel only once the statement is running on the server.
            try await withTestPool(maximumConnections: 1) { observer in
                let running = try await eventually {
                    try await observer.query("""
                        SELECT count(*)::int8 AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(10)%'
                          AND pid <> pg_backend_pid()
                        """).single().decode("n", as: Int.self) >= 1
                }
                #expect(running)
            }
            task.cancel()
            let outcome = await task.result
            #expect(throws: PostgresError.self) { try outcome.get() }
            if case .failure(let error as PostgresError) = outcome {
                #expect(error.kind == .queryCanceled)  // cut short, not run to its end
            }
            // The pool keeps working (the cancelled connection is replaced, not reused).
            let rows = try await pool.query("SELECT 3::int8 AS v")
            #expect(try rows.single().decode("v", as: Int.self) == 3)
        }
    }

    @Test("an unreachable server is a typed connection error, not a hang")
    func unreachable() async throws {
        let pool = PostgresPool(
            configuration: PostgresConfiguration(
                connectionString: "postgresql://nobody:secret-password@127.0.0.1:1/none",
                connectTimeout: .seconds(2)
            ),
            logger: TestDatabase.logger
        )
        await #expect {
            try await pool.query("SELECT 1")
        } throws: { error in
            guard let error = error as? PostgresError else { return false }
            return error.kind == .connectionFailed && !"\(error)".contains("secret-password")
        }
        #expect(pool.statistics.open == 0)
        await pool.close()
        await #expect {
            try await pool.query("SELECT 1")
        } throws: { error in
            (error as? PostgresError)?.kind == .poolClosed
        }
    }
}
