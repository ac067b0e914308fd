import Foundation

/// A statement and its bound parameters.
///
/// Written as a string literal, every interpolated value becomes a bind parameter (`$1`, `$2`, …),
/// so values are never spliced into SQL text:
///
/// ```swift
/// try await db.query("SELECT id FROM auth.developers WHERE email = \(email)")
/// ```
///
/// Identifiers that cannot be parameters (a tenant's schema name) go through
/// `\(identifier: name)`, which quotes them the way PostgreSQL's `quote_ident` does.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation {
    public var sql: String
    public var binds: [PostgresBind]

    public init(unsafeSQL sql: String, binds: [PostgresBind] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.sql = value
        self.binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        self.sql = stringInterpolation.sql
        self.binds = stringInterpolation.binds
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [PostgresBind] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// A bound parameter.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value) {
            binds.append(value.postgresBind)
            sql += "$\(binds.count)"
        }

        /// A bound parameter that may be NULL.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            binds.append(value.postgresBind)
            sql += "$\(binds.count)"
        }

        /// A quoted identifier (schema, table, role, channel name).
        public mutating func appendInterpolation(identifier: String) {
            sql += PostgresQuery.quoteIdentifier(identifier)
        }

        /// A quoted string literal, for the few statements that take no parameters
        /// (`CREATE ROLE … PASSWORD`, `NOTIFY`, `SET`).
        public mutating func appendInterpolation(literal: String) {
            sql += PostgresQuery.quoteLiteral(literal)
        }

        /// SQL text spliced as is. Only for text the program itself wrote, never for input.
        public mutating func appendInterpolation(unescaped: String) {
            sql += unescaped
        }
    }

    /// Quotes an identifier: wraps it in double quotes and doubles any inside.
    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Quotes a string literal: wraps it in single quotes and doubles any inside. NUL bytes,
    /// which PostgreSQL text cannot hold, are dropped.
    public static func quoteLiteral(_ value: String) -> String {
        let cleaned = value.replacingOccurrences(of: "\0", with: "")
        return "'" + cleaned.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
