import Contracts
import Foundation

/// One `postgres_changes` binding of a join (docs/protocols/realtime-reference.md §6.1):
/// `{"event": "*"|"INSERT"|"UPDATE"|"DELETE", "schema": "public", "table"?: …, "filter"?: …}`.
///
/// A project's tables live in its own schema (`tenant_<slug>`); `public`, what Supabase's
/// clients send by default, names that schema, as do `*` and the schema's own name. The filter
/// is Supabase's `column=op.value`, several joined by `,` (all must hold), each optionally
/// `not.`-negated; the operators are `eq`, `neq`, `lt`, `lte`, `gt`, `gte`, `in` (up to 100
/// values), `is` (`null`, `true`, `false`), `like` and `ilike`. Values compare as numbers when
/// the row's value is a number, as `true`/`false` for booleans, else as text.
struct PostgresBinding: Sendable, Equatable {
    enum Event: String, Sendable {
        case all = "*", insert = "INSERT", update = "UPDATE", delete = "DELETE"
    }

    struct Filter: Sendable, Equatable {
        var column: String
        var op: String
        var values: [String]
        var negated: Bool
    }

    /// A binding that cannot be honoured, with Supabase's wording where it has one.
    struct Invalid: Error, Equatable {
        var message: String
    }

    /// The id the join reply gives the binding and change events name.
    var id: Int
    var event: Event
    /// Nil: every table of the schema.
    var table: String?
    var filters: [Filter]

    static let operators: Set<String> = ["eq", "neq", "lt", "lte", "gt", "gte", "in", "is", "like", "ilike"]

    init(_ value: JSONValue, schema tenantSchema: String) throws(Invalid) {
        guard case .object(let fields) = value else { throw Invalid(message: "a postgres_changes binding must be an object") }
        id = Self.id(of: fields)
        let event = JoinConfig.string(fields["event"]) ?? "*"
        guard let parsed = Event(rawValue: event.uppercased()) else {
            throw Invalid(message: "Error parsing `event`: \(event) is not *, INSERT, UPDATE or DELETE")
        }
        self.event = parsed
        let schema = JoinConfig.string(fields["schema"]) ?? "public"
        guard schema == "public" || schema == "*" || schema == tenantSchema else {
            throw Invalid(message: "Unknown schema \(schema): a project's tables are in public")
        }
        let table = JoinConfig.string(fields["table"])
        self.table = table == "*" ? nil : table
        filters = try Self.filters(JoinConfig.string(fields["filter"]))
    }

    /// Whether a change of `table` of type `type` whose row (the record, or the old record of a
    /// delete) is `row` is one this binding asks for.
    func matches(table changed: String, type: String, row: [String: JSONValue]) -> Bool {
        guard event == .all || event.rawValue == type, table == nil || table == changed else { return false }
        return filters.allSatisfy { Self.holds($0, on: row[$0.column]) }
    }

    // MARK: Filters

    static func filters(_ text: String?) throws(Invalid) -> [Filter] {
        guard let text, !text.isEmpty else { return [] }
        var filters: [Filter] = []
        for part in splitTopLevel(text) {
            guard let equals = part.firstIndex(of: "=") else { throw Invalid(message: "Error parsing `filter` params: \(part)") }
            let column = String(part[..<equals])
            var rest = String(part[part.index(after: equals)...])
            var negated = false
            if rest.hasPrefix("not.") {
                negated = true
                rest.removeFirst(4)
            }
            guard let dot = rest.firstIndex(of: "."), !column.isEmpty else { throw Invalid(message: "Error parsing `filter` params: \(part)") }
            let op = String(rest[..<dot])
            let operand = String(rest[rest.index(after: dot)...])
            guard operators.contains(op) else { throw Invalid(message: "Error parsing `filter` params: unknown operator \(op)") }
            var values = [operand]
            if op == "in" {
                guard operand.hasPrefix("("), operand.hasSuffix(")") else { throw Invalid(message: "Error parsing `filter` params: in takes (a,b,…)") }
                values = operand.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false).map {
                    $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                }
                guard values.count <= 100 else { throw Invalid(message: "Error parsing `filter` params: in takes at most 100 values") }
            }
            if op == "is", !["null", "true", "false", "unknown"].contains(operand.lowercased()) {
                throw Invalid(message: "Error parsing `filter` params: is takes null, true, false or unknown")
            }
            filters.append(Filter(column: column, op: op, values: values, negated: negated))
        }
        return filters
    }

    /// Splits at commas outside parentheses (`a=eq.1,b=in.(1,2)`).
    private static func splitTopLevel(_ text: String) -> [Substring] {
        var parts: [Substring] = []
        var depth = 0
        var start = text.startIndex
        for index in text.indices {
            switch text[index] {
            case "(": depth += 1
            case ")": depth = max(0, depth - 1)
            case "," where depth == 0:
                parts.append(text[start..<index])
                start = text.index(after: index)
            default: break
            }
        }
        parts.append(text[start...])
        return parts
    }

    static func holds(_ filter: Filter, on value: JSONValue?) -> Bool {
        let result: Bool
        let value = value ?? .null
        switch filter.op {
        case "is":
            switch (filter.values[0].lowercased(), value) {
            case ("null", .null), ("unknown", .null): result = true
            case ("true", .bool(true)), ("false", .bool(false)): result = true
            default: result = false
            }
        case "in":
            result = value != .null && filter.values.contains { compare(value, $0) == .orderedSame }
        case "like", "ilike":
            guard case .string(let text) = value else { result = false; break }
            result = like(text, pattern: filter.values[0], caseInsensitive: filter.op == "ilike")
        default:
            // SQL: a comparison with NULL holds for no operator.
            guard value != .null, let order = compare(value, filter.values[0]) else { return false }
            switch filter.op {
            case "eq": result = order == .orderedSame
            case "neq": result = order != .orderedSame
            case "lt": result = order == .orderedAscending
            case "lte": result = order != .orderedDescending
            case "gt": result = order == .orderedDescending
            default: result = order != .orderedAscending  // gte
            }
        }
        return filter.negated ? !result : result
    }

    /// The row's value against a filter's text: numerically for numbers, as text otherwise.
    static func compare(_ value: JSONValue, _ operand: String) -> ComparisonResult? {
        switch value {
        case .number(let number):
            guard let other = Double(operand) else { return nil }
            return number < other ? .orderedAscending : number > other ? .orderedDescending : .orderedSame
        case .bool(let flag):
            guard let other = Bool(operand.lowercased()) else { return nil }
            return flag == other ? .orderedSame : (!flag ? .orderedAscending : .orderedDescending)
        case .string(let text):
            return text < operand ? .orderedAscending : text > operand ? .orderedDescending : .orderedSame
        case .null:
            return nil
        case .array, .object:
            let text = JSONText.serialize(value)
            return text == operand ? .orderedSame : (text < operand ? .orderedAscending : .orderedDescending)
        }
    }

    /// SQL LIKE: `%` any run, `_` any one character.
    static func like(_ text: String, pattern: String, caseInsensitive: Bool) -> Bool {
        var expression = "^"
        for character in pattern {
            switch character {
            case "%": expression += ".*"
            case "_": expression += "."
            default: expression += NSRegularExpression.escapedPattern(for: String(character))
            }
        }
        expression += "$"
        guard let regex = try? NSRegularExpression(pattern: expression, options: caseInsensitive ? [.caseInsensitive, .dotMatchesLineSeparators] : [.dotMatchesLineSeparators]) else {
            return false
        }
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    // MARK: The join reply

    /// The bindings as the join reply echoes them (both clients require it): each as sent, in
    /// order, plus its `id`.
    static func echo(_ bindings: [JSONValue]) -> String {
        "[" + bindings.map { binding in
            guard case .object(var fields) = binding else { return JSONText.serialize(binding) }
            fields["id"] = .number(Double(id(of: fields)))
            return JSONText.serialize(.object(fields))
        }.joined(separator: ",") + "]"
    }

    /// FNV-1a over the binding's event, schema, table and filter, kept to 31 bits: the same
    /// binding gets the same id at every join.
    static func id(of fields: [String: JSONValue]) -> Int {
        let identity = ["event", "schema", "table", "filter"].map { JSONText.serialize(fields[$0] ?? .null) }.joined(separator: "\u{1}")
        var hash: UInt32 = 2_166_136_261
        for byte in identity.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return Int(hash & 0x7fff_ffff)
    }
}
