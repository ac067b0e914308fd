import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Encoding and decoding")
struct DecodingTests {
    struct Settings: Codable, Equatable, Sendable {
        var name: String
        var limits: [String: Int]
    }

    @Test("every supported type round-trips through bound parameters")
    func roundTrip() async throws {
        let id = UUID()
        let when = Date(timeIntervalSince1970: 1_790_000_000.123456)
        let bytes = Data([0, 1, 2, 0xfe, 0xff, 0x5c, 0x27])
        let settings = Settings(name: "ünïcode ✓ \"quoted\"", limits: ["a": 1, "b": 2])
        try await withTestPool { pool in
            let row = try await pool.query("""
                SELECT \(42)::int8 AS i8, \(Int32(-7))::int4 AS i4, 5::int2 AS i2,
                       \("héllo 'world'")::text AS t, \(true) AS b, \(false) AS f,
                       \(id) AS u, \(when) AS ts, \(bytes) AS raw, \(2.5) AS d, 1.25::numeric AS n,
                       \(PostgresJSON(settings)) AS j,
                       \(["a", "b,c", "d\"e", "NULL", ""]) AS texts, \([1, -2, 3]) AS ints,
                       \([id]) AS uuids, ARRAY[1,2]::int4[] AS int4s, \([true, false]) AS bools,
                       ARRAY[]::text[] AS empty
                """).single()
            #expect(try row.decode("i8", as: Int.self) == 42)
            #expect(try row.decode("i4", as: Int32.self) == -7)
            #expect(try row.decode("i2", as: Int.self) == 5)
            #expect(try row.decode("t", as: String.self) == "héllo 'world'")
            #expect(try row.decode("b", as: Bool.self) == true)
            #expect(try row.decode("f", as: Bool.self) == false)
            #expect(try row.decode("u", as: UUID.self) == id)
            let decodedWhen = try row.decode("ts", as: Date.self)
            #expect(abs(decodedWhen.timeIntervalSince1970 - when.timeIntervalSince1970) < 0.000002)
            #expect(try row.decode("raw", as: Data.self) == bytes)
            #expect(try row.decode("d", as: Double.self) == 2.5)
            #expect(try row.decode("n", as: Double.self) == 1.25)
            #expect(try row.decode("j", as: PostgresJSON<Settings>.self).value == settings)
            #expect(try row.decode("texts", as: [String].self) == ["a", "b,c", "d\"e", "NULL", ""])
            #expect(try row.decode("ints", as: [Int].self) == [1, -2, 3])
            #expect(try row.decode("uuids", as: [UUID].self) == [id])
            #expect(try row.decode("int4s", as: [Int].self) == [1, 2])
            #expect(try row.decode("bools", as: [Bool].self) == [true, false])
            #expect(try row.decode("empty", as: [String].self) == [])
            #expect(try row.decode(at: 0, as: Int.self) == 42)
        }
    }

    @Test("timestamps with offsets and without fractions parse to the right instant")
    func timestampFormats() async throws {
        try await withTestPool { pool in
            let row = try await pool.query("""
                SELECT '2026-01-02 03:04:05+00'::timestamptz AS a,
                       '2026-01-02 03:04:05.5'::timestamp AS b,
                       '1969-12-31 23:59:59.999999+00'::timestamptz AS c
                """).single()
            #expect(try row.decode("a", as: Date.self).timeIntervalSince1970 == 1_767_323_045)
            #expect(try row.decode("b", as: Date.self).timeIntervalSince1970 == 1_767_323_045.5)
            #expect(abs(try row.decode("c", as: Date.self).timeIntervalSince1970 - -0.000001) < 1e-7)
        }
    }

    @Test("NULL decodes as nil into optionals and is an error otherwise")
    func nulls() async throws {
        try await withTestPool { pool in
            let none: String? = nil
            let row = try await pool.query("SELECT \(none)::text AS t, NULL::uuid AS u, NULL::int8 AS i, ARRAY['a', NULL] AS a").single()
            #expect(try row.decode("t", as: String?.self) == nil)
            #expect(try row.decode("u", as: UUID?.self) == nil)
            #expect(try row.decode("i", as: Int?.self) == nil)
            #expect(row.isNull("t"))
            #expect(try row.decode("a", as: [String?].self) == ["a", nil])
            #expect {
                try row.decode("i", as: Int.self)
            } throws: { error in
                guard let error = error as? PostgresError else { return false }
                return error.kind == .decoding && error.column == "i" && error.message.contains("NULL")
            }
        }
    }

    @Test("a type mismatch is a clear decoding error naming the column and both types")
    func mismatch() async throws {
        try await withTestPool { pool in
            let row = try await pool.query("SELECT 'abc'::text AS name, 1::int4 AS n").single()
            #expect {
                try row.decode("name", as: Int.self)
            } throws: { error in
                guard let error = error as? PostgresError else { return false }
                return error.kind == .decoding && error.message.contains("\"name\"") && error.message.contains("text")
                    && error.message.contains("Int")
            }
            #expect(throws: PostgresError.self) { try row.decode("n", as: UUID.self) }
            #expect(throws: PostgresError.self) { try row.decode("n", as: String.self) }
            #expect(throws: PostgresError.self) { try row.decode("missing", as: Int.self) }
            #expect(throws: PostgresError.self) { try row.decode(at: 9, as: Int.self) }
        }
    }

    @Test("a text parameter holding NUL is refused, never cut short at it (a C string ends there)")
    func nulInText() async throws {
        try await withTestPool { pool in
            await #expect {
                try await pool.query("SELECT \("before\u{0}after")::text AS t")
            } throws: { error in
                (error as? PostgresError)?.kind == .dataException
            }
            // The pool is still fine, and text without NUL goes through whole.
            let row = try await pool.query("SELECT \("before after")::text AS t").single()
            #expect(try row.decode("t", as: String.self) == "before after")
        }
    }

    @Test("affected rows are reported for writes")
    func affectedRows() async throws {
        try await withTestPool { pool in
            let table = TestDatabase.uniqueName("aff")
            try await pool.query("CREATE TABLE \(identifier: table) (n int8)")
            let inserted = try await pool.query("INSERT INTO \(identifier: table) SELECT generate_series(1, 5)")
            #expect(inserted.affectedRows == 5)
            let updated = try await pool.query("UPDATE \(identifier: table) SET n = n + 1 WHERE n > \(2)")
            #expect(updated.affectedRows == 3)
            try await pool.query("DROP TABLE \(identifier: table)")
        }
    }
}
