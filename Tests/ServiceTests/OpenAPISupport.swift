import Foundation

/// A service's OpenAPI document, parsed for the checks in `OpenAPITests`: which operations it
/// describes, whether its references resolve, and a small JSON Schema validator for the subset
/// of JSON Schema 2020-12 the documents use (enough to hold the Contracts types against them;
/// schemathesis validates the real answers in `deploy/scripts/fuzz.sh`).
struct OpenAPIDocumentFile {
    let name: String
    let root: [String: Any]

    static let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    /// The repository's `Services/<Name>/openapi.json`.
    static func url(service: String) -> URL {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let folder = service.prefix(1).uppercased() + service.dropFirst()
        return repository.appendingPathComponent("Services").appendingPathComponent(folder).appendingPathComponent("openapi.json")
    }

    init(service: String) throws {
        try self.init(name: service, bytes: try Data(contentsOf: Self.url(service: service)))
    }

    init(name: String, bytes: Data) throws {
        self.name = name
        guard let root = try JSONSerialization.jsonObject(with: bytes) as? [String: Any] else {
            throw OpenAPIProblem("\(name): the document is not a JSON object")
        }
        self.root = root
    }

    var version: String? { root["openapi"] as? String }
    var paths: [String: [String: Any]] { (root["paths"] as? [String: Any] ?? [:]).compactMapValues { $0 as? [String: Any] } }

    /// Every operation as `METHOD /path`.
    var operations: Set<String> {
        var result = Set<String>()
        for (path, item) in paths {
            for method in Self.methods where item[method] != nil { result.insert(method.uppercased() + " " + path) }
        }
        return result
    }

    /// Each operation with its path, method and object.
    var operationObjects: [(path: String, method: String, operation: [String: Any], item: [String: Any])] {
        paths.sorted { $0.key < $1.key }.flatMap { path, item in
            Self.methods.compactMap { method in
                (item[method] as? [String: Any]).map { (path, method, $0, item) }
            }
        }
    }

    // MARK: References

    /// The value a local reference (`#/components/schemas/X`) points at, or nil.
    func resolve(_ reference: String) -> Any? {
        guard reference.hasPrefix("#") else { return nil }
        var node: Any = root
        for raw in reference.dropFirst().split(separator: "/", omittingEmptySubsequences: true) {
            let token = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if let object = node as? [String: Any], let next = object[token] {
                node = next
            } else if let array = node as? [Any], let index = Int(token), array.indices.contains(index) {
                node = array[index]
            } else {
                return nil
            }
        }
        return node
    }

    /// Every `$ref` in the document, with where it was found.
    var references: [(at: String, target: String)] {
        var found: [(String, String)] = []
        func walk(_ node: Any, _ location: String) {
            if let object = node as? [String: Any] {
                if let target = object["$ref"] as? String { found.append((location, target)) }
                for (key, value) in object { walk(value, location + "/" + key) }
            } else if let array = node as? [Any] {
                for (index, value) in array.enumerated() { walk(value, location + "/\(index)") }
            }
        }
        walk(root, "#")
        return found
    }

    /// An object with its `$ref` followed (repeatedly); siblings of the reference are dropped.
    func dereferenced(_ node: Any) -> [String: Any]? {
        var current = node
        for _ in 0..<16 {
            guard let object = current as? [String: Any] else { return nil }
            guard let reference = object["$ref"] as? String else { return object }
            guard let target = resolve(reference) else { return nil }
            current = target
        }
        return nil
    }

    // MARK: Schema validation

    /// Problems with `value` against `schema` (empty when it validates).
    func validate(_ value: Any, against schema: Any, at path: String = "$") -> [String] {
        if let flag = schema as? Bool { return flag ? [] : ["\(path): no value is allowed here"] }
        guard let schema = schema as? [String: Any] else { return ["\(path): the schema is not an object"] }
        var problems: [String] = []
        if let reference = schema["$ref"] as? String {
            guard let target = resolve(reference) else { return ["\(path): unresolved \(reference)"] }
            problems += validate(value, against: target, at: path)
        }
        if let types = schema["type"] {
            let allowed = (types as? [String]) ?? [(types as? String) ?? ""]
            if !allowed.contains(where: { Self.matches(value, type: $0) }) {
                return problems + ["\(path): \(Self.describe(value)) is not of type \(allowed.joined(separator: "|"))"]
            }
        }
        if let constant = schema["const"], !Self.equal(constant, value) { problems.append("\(path): \(value) is not \(constant)") }
        if let options = schema["enum"] as? [Any], !options.contains(where: { Self.equal($0, value) }) {
            problems.append("\(path): \(value) is not one of \(options)")
        }
        if let string = value as? String {
            if let pattern = schema["pattern"] as? String, string.range(of: pattern, options: .regularExpression) == nil {
                problems.append("\(path): \"\(string)\" does not match \(pattern)")
            }
            if let minimum = schema["minLength"] as? Int, string.count < minimum { problems.append("\(path): shorter than \(minimum)") }
            if let maximum = schema["maxLength"] as? Int, string.count > maximum { problems.append("\(path): longer than \(maximum)") }
            switch schema["format"] as? String {
            case "uuid" where UUID(uuidString: string) == nil || string != string.lowercased():
                problems.append("\(path): \"\(string)\" is not a lower-case UUID")
            case "date-time" where (ISO8601DateFormatter().date(from: string) == nil && Self.fractionalDates.date(from: string) == nil)
                || !string.hasSuffix("Z"):
                problems.append("\(path): \"\(string)\" is not an RFC 3339 date-time in UTC (Z)")
            default: break
            }
        }
        if let number = value as? NSNumber, !Self.isBool(value) {
            if let minimum = schema["minimum"] as? NSNumber, number.doubleValue < minimum.doubleValue { problems.append("\(path): below \(minimum)") }
            if let maximum = schema["maximum"] as? NSNumber, number.doubleValue > maximum.doubleValue { problems.append("\(path): above \(maximum)") }
        }
        if let object = value as? [String: Any] {
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for key in schema["required"] as? [String] ?? [] where object[key] == nil {
                problems.append("\(path): the required property \(key) is missing")
            }
            for (key, child) in object {
                if let propertySchema = properties[key] {
                    problems += validate(child, against: propertySchema, at: path + "." + key)
                } else if let additional = schema["additionalProperties"] {
                    problems += validate(child, against: additional, at: path + "." + key)
                }
            }
        }
        if let array = value as? [Any] {
            if let minimum = schema["minItems"] as? Int, array.count < minimum { problems.append("\(path): fewer than \(minimum) items") }
            if let maximum = schema["maxItems"] as? Int, array.count > maximum { problems.append("\(path): more than \(maximum) items") }
            if let items = schema["items"] {
                for (index, item) in array.enumerated() { problems += validate(item, against: items, at: path + "[\(index)]") }
            }
        }
        if let all = schema["allOf"] as? [Any] {
            for part in all { problems += validate(value, against: part, at: path) }
        }
        if let any = schema["anyOf"] as? [Any], !any.contains(where: { validate(value, against: $0, at: path).isEmpty }) {
            problems.append("\(path): matches none of anyOf")
        }
        if let one = schema["oneOf"] as? [Any], one.filter({ validate(value, against: $0, at: path).isEmpty }).count != 1 {
            problems.append("\(path): does not match exactly one of oneOf")
        }
        return problems
    }

    /// RFC 3339 date-times may carry fractional seconds (the Storage API writes milliseconds).
    static var fractionalDates: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }

    /// The property names a schema (after `$ref`s) declares.
    func propertyNames(of schema: Any) -> Set<String> {
        guard let object = dereferenced(schema) else { return [] }
        return Set((object["properties"] as? [String: Any] ?? [:]).keys)
    }

    static func isBool(_ value: Any) -> Bool {
        // JSONSerialization gives booleans as `__NSCFBoolean` (an NSNumber that `is Bool`, as 0
        // and 1 are too).
        String(describing: type(of: value)) == "__NSCFBoolean"
    }

    static func matches(_ value: Any, type: String) -> Bool {
        switch type {
        case "object": return value is [String: Any]
        case "array": return value is [Any]
        case "string": return value is String
        case "boolean": return isBool(value)
        case "null": return value is NSNull
        case "integer":
            guard let number = value as? NSNumber, !isBool(value) else { return false }
            return number.doubleValue.rounded() == number.doubleValue
        case "number": return value is NSNumber && !isBool(value)
        default: return false
        }
    }

    static func equal(_ a: Any, _ b: Any) -> Bool {
        (a as? NSObject)?.isEqual(b) ?? false
    }

    static func describe(_ value: Any) -> String {
        if value is [String: Any] { return "an object" }
        if value is [Any] { return "an array" }
        return "\(value)"
    }
}

struct OpenAPIProblem: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
