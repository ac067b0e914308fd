import Foundation

/// One bound parameter, ready for `PQexecParams`: a value in PostgreSQL's text format (or raw
/// bytes for `bytea`), with the type the server should read it as.
public struct PostgresBind: Sendable, Equatable {
    enum Storage: Sendable, Equatable {
        case null
        case text(String)
        case binary([UInt8])
    }

    var storage: Storage
    public var type: PostgresType

    public static func null(_ type: PostgresType = .unspecified) -> PostgresBind {
        PostgresBind(storage: .null, type: type)
    }
    public static func text(_ value: String, type: PostgresType = .unspecified) -> PostgresBind {
        PostgresBind(storage: .text(value), type: type)
    }
    public static func binary(_ bytes: [UInt8], type: PostgresType) -> PostgresBind {
        PostgresBind(storage: .binary(bytes), type: type)
    }
}

/// A Swift value that can be sent as a bound parameter.
public protocol PostgresEncodable: Sendable {
    var postgresBind: PostgresBind { get }
}

/// A Swift value that can be read from a result column (text format).
public protocol PostgresDecodable: Sendable {
    /// Decodes the column's text representation; `type` is the column's type, checked first.
    static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> Self
    /// The value for SQL NULL; everything but `Optional` refuses it.
    static func decodeNull(type: PostgresType) throws(PostgresDecodingFailure) -> Self
}

extension PostgresDecodable {
    public static func decodeNull(type: PostgresType) throws(PostgresDecodingFailure) -> Self {
        throw .unexpectedNull
    }
}

/// Why one value failed to decode; the row adds the column name and turns it into a
/// `PostgresError` of kind `.decoding`.
public enum PostgresDecodingFailure: Error, Sendable, Equatable {
    case typeMismatch(expected: String, actual: PostgresType)
    case unexpectedNull
    case malformed(String)
}

// MARK: - Scalars

extension String: PostgresEncodable, PostgresDecodable {
    // Sent untyped: the server infers text/varchar/uuid/… from where the parameter is used.
    public var postgresBind: PostgresBind { .text(self) }

    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> String {
        guard type.isTextLike || type == .unspecified else { throw .typeMismatch(expected: "text", actual: type) }
        return text
    }
}

extension Int: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { .text(String(self), type: .int8) }

    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> Int {
        guard type.isInteger else { throw .typeMismatch(expected: "integer", actual: type) }
        guard let value = Int(text) else { throw .malformed("not an integer") }
        return value
    }
}

extension Int32: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { .text(String(self), type: .int4) }

    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> Int32 {
        guard type == .int2 || type == .int4 else { throw .typeMismatch(expected: "int2 or int4", actual: type) }
        guard let value = Int32(text) else { throw .malformed("not a 32-bit integer") }
        return value
    }
}

extension Int64: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { .text(String(self), type: .int8) }

    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> Int64 {
        guard type.isInteger else { throw .typeMismatch(expected: "integer", actual: type) }
        guard let value = Int64(text) else { throw .malformed("not an integer") }
        return value
    }
}

extension Double: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { .text(String(self), type: .float8) }

    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> Double {
        guard type == .float4 || type == .float8 || type == .numeric || type.isInteger else {
            throw .typeMismatch(expected: "float8 or numeric", actual: type)
        }
        switch text {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default:
            guard let value = Double(text) else { throw .malformed("not a number") }
            return value
        }
    }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { .text(self ? "t" : "f", type: .bool) }

    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> Bool {
        guard type == .bool else { throw .typeMismatch(expected: "bool", actual: type) }
        switch text {
        case "t": return true
        case "f": return false
        default: throw .malformed("not a boolean")
        }
    }
}

extension UUID: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { .text(uuidString.lowercased(), type: .uuid) }

    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> UUID {
        guard type == .uuid else { throw .typeMismatch(expected: "uuid", actual: type) }
        guard let value = UUID(uuidString: text) else { throw .malformed("not a uuid") }
        return value
    }
}

extension Data: PostgresEncodable, PostgresDecodable {
    // bytea travels in binary format: no escaping, no size blow-up.
    public var postgresBind: PostgresBind { .binary([UInt8](self), type: .bytea) }

    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> Data {
        guard type == .bytea else { throw .typeMismatch(expected: "bytea", actual: type) }
        // Text output of bytea is `\x` followed by hex digits (bytea_output = hex, set on connect).
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
            throw .malformed("not hex-encoded bytea")
        }
        var bytes = Data(capacity: (utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = hexValue(utf8[index]), let low = hexValue(utf8[index + 1]) else {
                throw .malformed("not hex-encoded bytea")
            }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Date: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { .text(PostgresTimestamp.format(self), type: .timestamptz) }

    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> Date {
        guard type == .timestamptz || type == .timestamp else {
            throw .typeMismatch(expected: "timestamptz", actual: type)
        }
        guard let date = PostgresTimestamp.parse(text) else { throw .malformed("not an ISO timestamp") }
        return date
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresBind: PostgresBind {
        switch self {
        case .some(let value): value.postgresBind
        case .none: .null()
        }
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> Wrapped? {
        try Wrapped.decode(postgresText: text, type: type)
    }

    public static func decodeNull(type: PostgresType) throws(PostgresDecodingFailure) -> Wrapped? { nil }
}

// MARK: - JSON

/// A `Codable` value stored in a `jsonb` (or `json`) column.
public struct PostgresJSON<Value: Codable & Sendable>: PostgresEncodable, PostgresDecodable, Sendable {
    public var value: Value
    public init(_ value: Value) { self.value = value }

    public var postgresBind: PostgresBind {
        // Encoding a Codable value into JSON fails only for non-finite floats; send NULL rather
        // than crash, and let a NOT NULL constraint say so.
        guard let data = try? PostgresJSONCoding.encoder.encode(value) else { return .null(.jsonb) }
        return .text(String(decoding: data, as: UTF8.self), type: .jsonb)
    }

    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> PostgresJSON<Value> {
        guard type == .jsonb || type == .json else { throw .typeMismatch(expected: "jsonb", actual: type) }
        do {
            return PostgresJSON(try PostgresJSONCoding.decoder.decode(Value.self, from: Data(text.utf8)))
        } catch {
            throw .malformed("JSON does not match \(Value.self)")
        }
    }
}

enum PostgresJSONCoding {
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

// MARK: - Arrays

/// An element type that can travel inside a one-dimensional PostgreSQL array.
public protocol PostgresArrayElement: PostgresEncodable, PostgresDecodable {
    static var postgresArrayType: PostgresType { get }
    static var postgresElementType: PostgresType { get }
}

extension String: PostgresArrayElement {
    public static var postgresArrayType: PostgresType { .textArray }
    public static var postgresElementType: PostgresType { .text }
}
extension Int: PostgresArrayElement {
    public static var postgresArrayType: PostgresType { .int8Array }
    public static var postgresElementType: PostgresType { .int8 }
}
extension UUID: PostgresArrayElement {
    public static var postgresArrayType: PostgresType { .uuidArray }
    public static var postgresElementType: PostgresType { .uuid }
}
extension Bool: PostgresArrayElement {
    public static var postgresArrayType: PostgresType { .boolArray }
    public static var postgresElementType: PostgresType { .bool }
}

extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement {
    public static var postgresArrayType: PostgresType { Wrapped.postgresArrayType }
    public static var postgresElementType: PostgresType { Wrapped.postgresElementType }
}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    public var postgresBind: PostgresBind {
        var literal = "{"
        for (index, element) in enumerated() {
            if index > 0 { literal += "," }
            switch element.postgresBind.storage {
            case .null: literal += "NULL"
            case .text(let text): literal += PostgresArrayLiteral.quote(text)
            case .binary: literal += "NULL"  // no binary array elements are declared
            }
        }
        literal += "}"
        return .text(literal, type: Element.postgresArrayType)
    }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    public static func decode(postgresText text: String, type: PostgresType) throws(PostgresDecodingFailure) -> [Element] {
        let elementType: PostgresType
        if type == Element.postgresArrayType {
            elementType = Element.postgresElementType
        } else if Element.postgresArrayType == .int8Array, type == .int2Array || type == .int4Array {
            elementType = .int4
        } else if Element.postgresArrayType == .textArray, type == .varcharArray {
            elementType = .varchar
        } else {
            throw .typeMismatch(expected: "\(Element.postgresArrayType)", actual: type)
        }
        guard let items = PostgresArrayLiteral.parse(text) else { throw .malformed("not a one-dimensional array") }
        var result: [Element] = []
        result.reserveCapacity(items.count)
        for item in items {
            if let item {
                result.append(try Element.decode(postgresText: item, type: elementType))
            } else {
                result.append(try Element.decodeNull(type: elementType))
            }
        }
        return result
    }
}

/// PostgreSQL's text representation of one-dimensional arrays: `{a,"b c",NULL}`.
enum PostgresArrayLiteral {
    static func quote(_ text: String) -> String {
        var out = "\""
        for character in text {
            if character == "\"" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        out.append("\"")
        return out
    }

    /// Parses `{…}`; `nil` for malformed or multi-dimensional input. Unquoted `NULL` is nil.
    static func parse(_ text: String) -> [String?]? {
        var chars = Array(text.unicodeScalars)
        // A lower-bound decoration such as `[0:1]={…}` is not produced for the types we bind.
        guard chars.first == "{", chars.last == "}" else { return nil }
        chars.removeFirst()
        chars.removeLast()
        if chars.isEmpty { return [] }
        var items: [String?] = []
        var index = 0
        while index <= chars.count {
            var value = String.UnicodeScalarView()
            var quoted = false
            if index < chars.count, chars[index] == "\"" {
                quoted = true
                index += 1
                while index < chars.count, chars[index] != "\"" {
                    if chars[index] == "\\", index + 1 < chars.count { index += 1 }
                    value.append(chars[index])
                    index += 1
                }
                guard index < chars.count else { return nil }
                index += 1  // closing quote
            } else {
                while index < chars.count, chars[index] != "," {
                    if chars[index] == "{" { return nil }
                    value.append(chars[index])
                    index += 1
                }
            }
            let string = String(value)
            items.append(!quoted && string == "NULL" ? nil : string)
            guard index == chars.count || chars[index] == "," else { return nil }
            index += 1
        }
        return items
    }
}

// MARK: - Timestamps

/// Formats and parses timestamps in the ISO style the kit pins on every connection
/// (`DateStyle=ISO`, `TimeZone=UTC`): `2026-11-22 02:41:10.123456+00`.
enum PostgresTimestamp {
    static func format(_ date: Date) -> String {
        let totalMicros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        var seconds = Int64((totalMicros / 1_000_000).rounded(.down))
        let micros = Int64(totalMicros) - seconds * 1_000_000
        let days = Int64((Double(seconds) / 86_400).rounded(.down))
        seconds -= days * 86_400
        let (year, month, day) = civil(fromDays: days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) "
            + "\(pad(seconds / 3600, 2)):\(pad(seconds / 60 % 60, 2)):\(pad(seconds % 60, 2)).\(pad(micros, 6))+00"
    }

    static func parse(_ text: String) -> Date? {
        let s = Array(text.utf8)
        var i = 0
        func number(_ width: Int) -> Int64? {
            guard i + width <= s.count else { return nil }
            var value: Int64 = 0
            for _ in 0..<width {
                let c = s[i]
                guard c >= 48, c <= 57 else { return nil }
                value = value * 10 + Int64(c - 48)
                i += 1
            }
            return value
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < s.count, s[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect(45), let month = number(2), expect(45), let day = number(2),
              expect(32) || expect(84),
              let hour = number(2), expect(58), let minute = number(2), expect(58), let second = number(2)
        else { return nil }
        var micros: Int64 = 0
        if i < s.count, s[i] == 46 {  // '.'
            i += 1
            var digits = 0
            while i < s.count, s[i] >= 48, s[i] <= 57 {
                if digits < 6 { micros = micros * 10 + Int64(s[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            if digits < 6 { for _ in digits..<6 { micros *= 10 } }
        }
        var offsetSeconds: Int64 = 0
        if i < s.count {
            let sign: Int64
            switch s[i] {
            case 43: sign = 1   // '+'
            case 45: sign = -1  // '-'
            case 90: sign = 0; i += 1  // 'Z'
            default: return nil
            }
            if sign != 0 {
                i += 1
                guard let oh = number(2) else { return nil }
                var om: Int64 = 0
                var os: Int64 = 0
                if expect(58) { guard let m = number(2) else { return nil }; om = m }
                if expect(58) { guard let sec = number(2) else { return nil }; os = sec }
                offsetSeconds = sign * (oh * 3600 + om * 60 + os)
            }
        }
        guard i == s.count, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else {
            return nil
        }
        let days = daysFromCivil(year: year, month: month, day: day)
        let epochSeconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Date(timeIntervalSince1970: Double(epochSeconds) + Double(micros) / 1_000_000)
    }

    // Howard Hinnant's civil calendar algorithms (proleptic Gregorian, UTC).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
