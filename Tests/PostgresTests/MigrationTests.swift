import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Migrations")
struct MigrationTests {
    let migrations = [
        Migration(version: 1, name: "create_items", sql: "CREATE TABLE items (id int8 PRIMARY KEY, name text NOT NULL);"),
        Migration(version: 2, name: "seed", sql: "INSERT INTO items VALUES (1, 'first'); INSERT INTO items VALUES (2, 'second');"),
        Migration(version: 3, name: "add_column", sql: "ALTER TABLE items ADD COLUMN note text;"),
    ]

    func withSchema(_ body: (PostgresPool, String) async throws -> Void) async throws {
        try await withTestPool(maximumConnections: 4) { pool in
            let schema = TestDatabase.uniqueName("mig")
            do {
                try await body(pool, schema)
            } catch {
                _ = try? await pool.query("DROP SCHEMA IF EXISTS \(identifier: schema) CASCADE")
                throw error
            }
            try await pool.query("DROP SCHEMA IF EXISTS \(identifier: schema) CASCADE")
        }
    }

    @Test("each migration is applied once and recorded with its checksum")
    func appliedOnce() async throws {
        try await withSchema { pool, schema in
            let runner = MigrationRunner(schema: schema, migrations: migrations)
            let first = try await runner.run(on: pool, logger: TestDatabase.logger)
            #expect(first.applied == [1, 2, 3])
            let second = try await runner.run(on: pool, logger: TestDatabase.logger)
            #expect(second.applied == [])
            #expect(second.alreadyApplied == [1, 2, 3])
            let items = try await pool.query("SELECT count(*)::int8 AS n FROM \(identifier: schema).items").single()
            #expect(try items.decode("n", as: Int.self) == 2)
            let ledger = try await pool.query("SELECT version, checksum FROM \(identifier: schema)._migrations ORDER BY version")
            #expect(try ledger.map { try $0.decode("version", as: Int.self) } == [1, 2, 3])
            #expect(try ledger.allSatisfy { try $0.decode("checksum", as: String.self).count == 64 })
            #expect(try await runner.isFullyApplied(on: pool))
        }
    }

    @Test("two runners started at once apply each migration exactly once")
    func concurrentRunners() async throws {
        try await withSchema { pool, schema in
            // Separate pools stand in for separate processes (separate sessions).
            let reports = try await withThrowingTaskGroup(of: MigrationReport.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await withTestPool(maximumConnections: 1) { own in
                            try await MigrationRunner(schema: schema, migrations: migrations).run(on: own, logger: TestDatabase.logger)
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let appliedTotal = reports.flatMap(\.applied).sorted()
            #expect(appliedTotal == [1, 2, 3])
            let items = try await pool.query("SELECT count(*)::int8 AS n FROM \(identifier: schema).items").single()
            #expect(try items.decode("n", as: Int.self) == 2)
        }
    }

    @Test("start-up is refused when an applied migration's text changed")
    func changedFileRefused() async throws {
        try await withSchema { pool, schema in
            try await MigrationRunner(schema: schema, migrations: migrations).run(on: pool, logger: TestDatabase.logger)
            var edited = migrations
            edited[1].sql = "INSERT INTO items VALUES (1, 'first'); -- edited"
            await #expect {
                try await MigrationRunner(schema: schema, migrations: edited).run(on: pool, logger: TestDatabase.logger)
            } throws: { error in
                guard let error = error as? PostgresError else { return false }
                return error.kind == .migration && error.message.contains("2_seed") && error.message.contains("changed")
            }
            // The advisory lock was released: an unchanged runner still proceeds.
            let report = try await MigrationRunner(schema: schema, migrations: migrations).run(on: pool, logger: TestDatabase.logger)
            #expect(report.alreadyApplied == [1, 2, 3])
        }
    }

    @Test("a failing migration rolls back alone and names itself")
    func failingMigration() async throws {
        try await withSchema { pool, schema in
            var broken = migrations
            broken[2].sql = "ALTER TABLE items ADD COLUMN note text; SELECT no_such_function();"
            await #expect {
                try await MigrationRunner(schema: schema, migrations: broken).run(on: pool, logger: TestDatabase.logger)
            } throws: { error in
                (error as? PostgresError)?.kind == .migration && "\(error)".contains("3_add_column")
            }
            let ledger = try await pool.query("SELECT version FROM \(identifier: schema)._migrations ORDER BY version")
            #expect(try ledger.map { try $0.decode("version", as: Int.self) } == [1, 2])
            let columns = try await pool.query("""
                SELECT count(*)::int8 AS n FROM information_schema.columns
                WHERE table_schema = \(schema) AND table_name = 'items' AND column_name = 'note'
                """).single()
            #expect(try columns.decode("n", as: Int.self) == 0)
        }
    }

    @Test("in one transaction: every pending migration or none; a later run applies only what is missing")
    func oneTransaction() async throws {
        try await withSchema { pool, schema in
            var broken = migrations
            broken[2].sql = "ALTER TABLE items ADD COLUMN note text; SELECT no_such_function();"
            await #expect {
                try await MigrationRunner(schema: schema, migrations: broken, oneTransaction: true).run(on: pool, logger: TestDatabase.logger)
            } throws: { error in
                (error as? PostgresError)?.kind == .migration && "\(error)".contains("3_add_column")
            }
            // Nothing of 1 and 2 either, the ledger included.
            let ledgers = try await pool.query("""
                SELECT count(*)::int8 AS n FROM pg_tables WHERE schemaname = \(schema) AND tablename IN ('_migrations', 'items')
                """).single()
            #expect(try ledgers.decode("n", as: Int.self) == 0)

            let first = try await MigrationRunner(schema: schema, migrations: Array(migrations.prefix(2)), oneTransaction: true)
                .run(on: pool, logger: TestDatabase.logger)
            #expect(first.applied == [1, 2])
            let second = try await MigrationRunner(schema: schema, migrations: migrations, oneTransaction: true)
                .run(on: pool, logger: TestDatabase.logger)
            #expect(second.applied == [3] && second.alreadyApplied == [1, 2])
            let ledger = try await pool.query("SELECT version FROM \(identifier: schema)._migrations ORDER BY version")
            #expect(try ledger.map { try $0.decode("version", as: Int.self) } == [1, 2, 3])
        }
    }

    @Test("files load in version order and badly named files are refused")
    func loading() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestDatabase.uniqueName("migdir"))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "SELECT 2;".write(to: directory.appendingPathComponent("0002_second.sql"), atomically: true, encoding: .utf8)
        try "SELECT 1;".write(to: directory.appendingPathComponent("0001_first.sql"), atomically: true, encoding: .utf8)
        try "notes".write(to: directory.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        let loaded = try Migration.load(from: directory)
        #expect(loaded.map(\.version) == [1, 2])
        #expect(loaded.map(\.name) == ["first", "second"])
        try "SELECT 3;".write(to: directory.appendingPathComponent("third.sql"), atomically: true, encoding: .utf8)
        #expect(throws: PostgresError.self) { try Migration.load(from: directory) }
    }
}
