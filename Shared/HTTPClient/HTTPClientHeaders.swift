/// An ordered list of HTTP header fields with case-insensitive name lookup.
///
/// Order and duplicates are preserved as given. Literals work both ways:
/// `["Accept": "application/json"]` and `[("Accept", "application/json")]`.
///
/// `description` redacts the values of credential-carrying fields (`Authorization`, `Cookie`,
/// `X-Service-Token`, ...), so headers can be logged without leaking secrets.
public struct HTTPClientHeaders: Sendable, Hashable, CustomStringConvertible {
    public typealias Field = (name: String, value: String)

    private var fields: [StoredField]

    /// Creates an empty header list.
    public init() {
        self.fields = []
    }

    /// Creates a header list from `(name, value)` pairs, keeping their order.
    public init(_ fields: some Sequence<(String, String)>) {
        self.fields = fields.map { StoredField(name: $0.0, value: $0.1) }
    }

    /// Number of fields, duplicates included.
    public var count: Int { self.fields.count }

    public var isEmpty: Bool { self.fields.isEmpty }

    /// The value of the first field named `name` (case-insensitive), or nil.
    public subscript(name: String) -> String? {
        self.fields.first { $0.name.equalsCaseInsensitiveASCII(name) }?.value
    }

    /// Every value of the fields named `name` (case-insensitive), in order.
    public func values(for name: String) -> [String] {
        self.fields.lazy.filter { $0.name.equalsCaseInsensitiveASCII(name) }.map(\.value)
    }

    /// Whether a field named `name` (case-insensitive) is present.
    public func contains(_ name: String) -> Bool {
        self.fields.contains { $0.name.equalsCaseInsensitiveASCII(name) }
    }

    /// Appends a field, keeping any existing one with the same name.
    public mutating func add(name: String, value: String) {
        self.fields.append(StoredField(name: name, value: value))
    }

    /// Removes every field named `name` and appends `name: value`.
    public mutating func replaceOrAdd(name: String, value: String) {
        self.remove(name: name)
        self.add(name: name, value: value)
    }

    /// Removes every field named `name` (case-insensitive).
    public mutating func remove(name: String) {
        self.fields.removeAll { $0.name.equalsCaseInsensitiveASCII(name) }
    }

    public var description: String {
        let rendered = self.fields.map { field in
            let value = Self.isSensitive(field.name) ? "<redacted>" : field.value
            return "\(field.name): \(value)"
        }
        return "[" + rendered.joined(separator: ", ") + "]"
    }

    /// Names whose values are credentials and must never reach a log line or an error message.
    static func isSensitive(_ name: String) -> Bool {
        Self.sensitiveNames.contains { $0.equalsCaseInsensitiveASCII(name) }
    }

    private static let sensitiveNames = [
        "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Service-Token", "X-Api-Key",
        "apikey",  // Supabase's API-key header, which the platform's tenant routes read
    ]

    /// A named struct rather than a tuple so that the list is `Hashable`.
    fileprivate struct StoredField: Hashable, Sendable {
        var name: String
        var value: String
    }
}

extension HTTPClientHeaders: Sequence {
    public struct Iterator: IteratorProtocol {
        fileprivate var base: IndexingIterator<[StoredField]>

        public mutating func next() -> Field? {
            self.base.next().map { (name: $0.name, value: $0.value) }
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(base: self.fields.makeIterator())
    }

    public var underestimatedCount: Int { self.fields.count }
}

extension HTTPClientHeaders: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }
}

extension HTTPClientHeaders: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: (String, String)...) {
        self.init(elements)
    }
}

extension StringProtocol {
    /// ASCII case-insensitive comparison, without allocating lowercased copies (header names are
    /// ASCII tokens; non-ASCII bytes must match exactly).
    func equalsCaseInsensitiveASCII(_ other: some StringProtocol) -> Bool {
        self.utf8.elementsEqual(other.utf8) { lhs, rhs in
            lhs == rhs || (lhs | 0x20 == rhs | 0x20 && (lhs | 0x20) >= UInt8(ascii: "a") && (lhs | 0x20) <= UInt8(ascii: "z"))
        }
    }
}
