/// JSON text written by hand where a `JSONEncoder` per value would cost too much: log lines, and
/// realtime frames encoded once and fanned out to many sockets.
public enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    public static func quote(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// `value` as compact JSON text. Whole numbers within ±2^53 are written without a fraction.
    /// With `sortedKeys`, every object's keys in order, so equal values give equal text (an
    /// object's keys otherwise come in no set order).
    public static func serialize(_ value: JSONValue, sortedKeys: Bool = false) -> String {
        var out = ""
        write(value, into: &out, sortedKeys: sortedKeys)
        return out
    }

    private static func write(_ value: JSONValue, into out: inout String, sortedKeys: Bool) {
        switch value {
        case .null: out += "null"
        case .bool(let flag): out += flag ? "true" : "false"
        case .number(let number):
            if number.rounded() == number, abs(number) <= 9_007_199_254_740_992 {
                out += String(Int64(number))
            } else if number.isFinite {
                out += "\(number)"
            } else {
                out += "null"
            }
        case .string(let text): out += quote(text)
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                write(item, into: &out, sortedKeys: sortedKeys)
            }
            out += "]"
        case .object(let members):
            out += "{"
            var first = true
            for key in sortedKeys ? members.keys.sorted() : Array(members.keys) {
                if !first { out += "," }
                first = false
                out += quote(key)
                out += ":"
                write(members[key]!, into: &out, sortedKeys: sortedKeys)
            }
            out += "}"
        }
    }
}
