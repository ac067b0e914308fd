/// The outcome of one statement: its columns, its rows (text format) and, for INSERT / UPDATE /
/// DELETE, the number of rows it touched.
public struct PostgresResult: Sendable, RandomAccessCollection {
    public struct Column: Sendable, Equatable {
        public var name: String
        public var type: PostgresType
    }

    /// Shared by every row of one result, so rows stay two words wide.
    final class Layout: Sendable {
        let columns: [Column]
        let indexByName: [String: Int]

        init(columns: [Column]) {
            self.columns = columns
            var index: [String: Int] = [:]
            for (position, column) in columns.enumerated() where index[column.name] == nil {
                index[column.name] = position
            }
            self.indexByName = index
        }
    }

    let layout: Layout
    let values: [[String?]]
    /// Rows inserted, updated, deleted or returned, as the server counted them.
    public let affectedRows: Int

    init(layout: Layout, values: [[String?]], affectedRows: Int) {
        self.layout = layout
        self.values = values
        self.affectedRows = affectedRows
    }

    public var columns: [Column] { layout.columns }
    public var startIndex: Int { values.startIndex }
    public var endIndex: Int { values.endIndex }
    public subscript(position: Int) -> PostgresRow { PostgresRow(layout: layout, values: values[position]) }

    /// The single row a statement must return, or a decoding error naming what was found.
    public func single() throws -> PostgresRow {
        guard count == 1 else {
            throw PostgresError(.decoding, message: "expected exactly one row, got \(count)")
        }
        return self[0]
    }
}

/// One row of a result. Values decode by column name or position into `PostgresDecodable`
/// types; a type mismatch or an unexpected NULL is a `PostgresError` of kind `.decoding` that
/// names the column and both types.
public struct PostgresRow: Sendable {
    let layout: PostgresResult.Layout
    let values: [String?]

    public var columnCount: Int { values.count }

    public func decode<Value: PostgresDecodable>(_ column: String, as type: Value.Type = Value.self) throws -> Value {
        guard let index = layout.indexByName[column] else {
            throw PostgresError(.decoding, message: "no column named \"\(column)\" in the result")
        }
        return try decode(at: index, as: type)
    }

    public func decode<Value: PostgresDecodable>(at index: Int, as type: Value.Type = Value.self) throws -> Value {
        guard values.indices.contains(index) else {
            throw PostgresError(.decoding, message: "no column at position \(index) in the result")
        }
        let column = layout.columns[index]
        do throws(PostgresDecodingFailure) {
            if let text = values[index] {
                return try Value.decode(postgresText: text, type: column.type)
            }
            return try Value.decodeNull(type: column.type)
        } catch {
            let reason: String
            switch error {
            case .typeMismatch(let expected, let actual):
                reason = "cannot decode \(actual) as \(Value.self) (expects \(expected))"
            case .unexpectedNull:
                reason = "is NULL but \(Value.self) is not optional"
            case .malformed(let what):
                reason = "holds a value that is \(what)"
            }
            throw PostgresError(.decoding, message: "column \"\(column.name)\" \(reason)", column: column.name)
        }
    }

    /// True when the column holds SQL NULL.
    public func isNull(_ column: String) -> Bool {
        guard let index = layout.indexByName[column] else { return true }
        return values[index] == nil
    }
}
