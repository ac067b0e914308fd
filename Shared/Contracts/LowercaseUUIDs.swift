import Foundation

// UUIDs are written lower-case in every JSON body, as PostgreSQL and URLs write them
// (Foundation's own `UUID` encoding is upper-case). These overloads are more specific than the
// containers' generic `encode`, so the `Codable` conformances Swift synthesises in any module
// that imports Contracts pick them for their `UUID`, `UUID?` and `[UUID]` properties. Decoding accepts
// either case, as `UUID(uuidString:)` does.
extension KeyedEncodingContainer {
    public mutating func encode(_ value: UUID, forKey key: Key) throws {
        try encode(value.uuidString.lowercased(), forKey: key)
    }

    public mutating func encodeIfPresent(_ value: UUID?, forKey key: Key) throws {
        guard let value else { return }
        try encode(value.uuidString.lowercased(), forKey: key)
    }

    public mutating func encode(_ value: [UUID], forKey key: Key) throws {
        try encode(value.map { $0.uuidString.lowercased() }, forKey: key)
    }

    public mutating func encodeIfPresent(_ value: [UUID]?, forKey key: Key) throws {
        guard let value else { return }
        try encode(value, forKey: key)
    }
}
