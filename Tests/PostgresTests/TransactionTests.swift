import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Transactions")
struct TransactionTests {
    struct Boom: Error {}

    /// Runs `body` with a fresh table `name (id int8 primary key, label text unique)` and drops it.
    func withTable(_ body: (PostgresPool, String) async throws -> Void) async throws {
        try await withTestPool { pool in
            let table = TestDatabase.uniqueName("tx")
            try await pool.query("CREATE TABLE \(identifier: table) (id int8 PRIMARY KEY, label text UNIQUE)")
            do {
                try await body(pool, table)
            } catch {
                _ = try? await pool.query("DROP TABLE IF EXISTS \(identifier: table)")
                throw error
            }
            try await pool.query("DROP TABLE IF EXISTS \(identifier: table)")
        }
    }

    func count(_ pool: PostgresPool, _ table: String) async throws -> Int {
        try await pool.query("SELECT count(*)::int8 AS n FROM \(identifier: table)").single().decode("n")
    }

    @Test("commit on success")
    func commit() async throws {
        try await withTable { pool, table in
            try await pool.withTransaction { tx in
                try await tx.query("INSERT INTO \(identifier: table) VALUES (\(1), \("one"))")
                try await tx.query("INSERT INTO \(identifier: table) VALUES (\(2), \("two"))")
            }
            #expect(try await count(pool, table) == 2)
        }
    }

    @Test("rollback on throw leaves nothing")
    func rollbackOnThrow() async throws {
        try await withTable { pool, table in
            await #expect(throws: Boom.self) {
                try await pool.withTransaction { tx in
                    try await tx.query("INSERT INTO \(identifier: table) VALUES (\(1), \("one"))")
                    throw Boom()
                }
            }
            let remaining = try await count(pool, table)
            #expect(remaining == 0)
            #expect(pool.statistics.inUse == 0)
        }
    }

    @Test("savepoint rollback keeps the outer work")
    func savepoint() async throws {
        try await withTable { pool, table in
            try await pool.withTransaction { tx in
                try await tx.query("INSERT INTO \(identifier: table) VALUES (\(1), \("outer"))")
                await #expect(throws: PostgresError.self) {
                    try await tx.withSavepoint { sp in
                        try await sp.query("INSERT INTO \(identifier: table) VALUES (\(2), \("inner"))")
                        try await sp.query("INSERT INTO \(identifier: table) VALUES (\(3), \("outer"))")  // unique violation
                    }
                }
                try await tx.withSavepoint { sp in
                    try await sp.query("INSERT INTO \(identifier: table) VALUES (\(4), \("kept"))")
                }
            }
            let labels = try await pool.query("SELECT label FROM \(identifier: table) ORDER BY id").map { try $0.decode("label", as: String.self) }
            #expect(labels == ["outer", "kept"])
        }
    }

    @Test("a unique violation surfaces as the typed error, with its constraint")
    func uniqueViolation() async throws {
        try await withTable { pool, table in
            try await pool.query("INSERT INTO \(identifier: table) VALUES (\(1), \("zebra-value"))")
            await #expect {
                try await pool.query("INSERT INTO \(identifier: table) VALUES (\(2), \("zebra-value"))")
            } throws: { error in
                guard let error = error as? PostgresError else { return false }
                return error.kind == .uniqueViolation && error.sqlState == "23505"
                    && error.constraint == "\(table)_label_key" && error.table == table
                    && !error.description.contains("zebra-value")  // no parameter values in descriptions
            }
        }
    }

    @Test("other constraint violations are typed too")
    func constraintKinds() async throws {
        try await withTestPool { pool in
            let parent = TestDatabase.uniqueName("parent")
            let child = TestDatabase.uniqueName("child")
            try await pool.withConnection { c in
                try await c.execute(simple: """
                    CREATE TABLE \(parent) (id int8 PRIMARY KEY);
                    CREATE TABLE \(child) (id int8 PRIMARY KEY, parent int8 REFERENCES \(parent), n int8 NOT NULL CHECK (n > 0));
                    """)
            }
            func kind(_ query: PostgresQuery) async -> PostgresError.Kind? {
                do { try await pool.query(query); return nil } catch { return (error as? PostgresError)?.kind }
            }
            #expect(await kind("INSERT INTO \(identifier: child) VALUES (1, 99, 1)") == .foreignKeyViolation)
            #expect(await kind("INSERT INTO \(identifier: child) VALUES (1, NULL, NULL)") == .notNullViolation)
            #expect(await kind("INSERT INTO \(identifier: child) VALUES (1, NULL, -1)") == .checkViolation)
            #expect(await kind("SELECT * FROM \(identifier: parent + "_missing")") == .statementError)
            #expect(await kind("SELECT 'x'::int") == .dataException)
            try await pool.withConnection { try await $0.execute(simple: "DROP TABLE \(child); DROP TABLE \(parent);") }
        }
    }

    @Test("a transaction that failed inside its body is rolled back, never committed")
    func failedBodyNotCommitted() async throws {
        try await withTable { pool, table in
            await #expect(throws: PostgresError.self) {
                try await pool.withTransaction { tx in
                    try await tx.query("INSERT INTO \(identifier: table) VALUES (\(1), \("a"))")
                    _ = try? await tx.query("SELECT 1/0")  // error swallowed by the body
                }
            }
            let remaining = try await count(pool, table)
            #expect(remaining == 0)
        }
    }

    /// Starts a transaction in its own task that inserts a row, reports its backend pid, and then
    /// runs `rest` (which waits for the task to be cancelled).
    func transactionInsertingThen(
        _ rest: @escaping @Sendable (PostgresConnection) async throws -> Void,
        pool: PostgresPool,
        table: String
    ) async -> (task: Task<Void, any Error>, backendPID: Int32?) {
        let (inserted, reportInsert) = AsyncStream<Int32>.makeStream()
        let task = Task {
            try await pool.withTransaction { tx in
                try await tx.query("INSERT INTO \(identifier: table) VALUES (\(1), \("cancelled"))")
                reportInsert.yield(tx.backendPID)
                try await rest(tx)
            }
        }
        var iterator = inserted.makeAsyncIterator()
        return (task, await iterator.next())
    }

    /// The state of the backend `pid` in `pg_stat_activity` (nil once the session is gone), seen
    /// from a connection of its own.
    func sessionState(of pid: Int32) async throws -> String? {
        try await withTestPool(maximumConnections: 1) { observer in
            let rows = try await observer.query("SELECT state FROM pg_stat_activity WHERE pid = \(Int(pid))")
            return try rows.first?.decode("state", as: String?.self) ?? nil
        }
    }

    @Test("a transaction whose task is cancelled while its body waits is rolled back, and its connection pooled clean")
    func cancelledWhileWaiting() async throws {
        try await withTable { pool, table in
            let (task, pid) = await transactionInsertingThen({ _ in
                // Parks until the task is cancelled: a stream nobody yields to ends on cancellation.
                let (never, keep) = AsyncStream<Never>.makeStream()
                for await _ in never {}
                keep.finish()
                try Task.checkCancellation()
            }, pool: pool, table: table)
            let backendPID = try #require(pid)
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }

            #expect(try await count(pool, table) == 0)
            // The ROLLBACK ran despite the cancellation: the session is idle, not idle in a
            // transaction, and the pool handed the very same connection out again.
            #expect(try await sessionState(of: backendPID) == "idle")
            #expect(try await pool.withConnection { $0.backendPID } == backendPID)
            #expect(pool.statistics.inUse == 0)
        }
    }

    @Test("a transaction whose task is cancelled during a statement is rolled back, and its connection closed")
    func cancelledDuringStatement() async throws {
        try await withTable { pool, table in
            let (task, pid) = await transactionInsertingThen({ tx in
                try await tx.query("SELECT pg_sleep(60)")
            }, pool: pool, table: table)
            let backendPID = try #require(pid)
            // Cancel only once the statement is running on the server.
            let sleeping = try await eventually {
                try await withTestPool(maximumConnections: 1) { observer in
                    try await observer.query("""
                        SELECT count(*)::int8 AS n FROM pg_stat_activity
                        WHERE pid = \(Int(backendPID)) AND state = 'active' AND query LIKE 'SELECT pg_sleep(60)%'
                        """).single().decode("n", as: Int.self) == 1
                }
            }
            #expect(sleeping)
            task.cancel()
            await #expect {
                try await task.value
            } throws: { error in
                (error as? PostgresError)?.kind == .queryCanceled
            }

            #expect(try await count(pool, table) == 0)
            // Rolled back before the pool closed it (a connection that sent a cancel request is
            // never reused): whether or not the session has ended yet, it is not in a transaction.
            let state = try await sessionState(of: backendPID)
            #expect(state == nil || state == "idle")
            #expect(try await pool.withConnection { $0.backendPID } != backendPID)
            #expect(pool.statistics.inUse == 0)
        }
    }

    @Test("identifiers and values cannot inject SQL")
    func injection() async throws {
        try await withTable { pool, table in
            let hostile = "x'); DROP TABLE \(table); --"
            try await pool.query("INSERT INTO \(identifier: table) VALUES (\(1), \(hostile))")
            let label = try await pool.query("SELECT label FROM \(identifier: table)").single().decode("label", as: String.self)
            #expect(label == hostile)
            await #expect(throws: PostgresError.self) {
                try await pool.query("SELECT * FROM \(identifier: table + "\"; DROP TABLE \"" + table)")
            }
            #expect(try await count(pool, table) == 1)
        }
    }
}
