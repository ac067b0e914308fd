import Contracts

/// The `postgres_changes` bindings of a join, echoed in its reply as both clients require
/// (docs/protocols/realtime-reference.md §3.2): each binding as sent, in order, plus an integer `id` that
/// later change events name. The id is a hash of the binding's event, schema, table and filter,
/// so the same binding gets the same id at every join.
enum PostgresBindings {
    static func echo(_ bindings: [JSONValue]) -> String {
        "[" + bindings.map { binding in
            guard case .object(var fields) = binding else { return JSONText.serialize(binding) }
            fields["id"] = .number(Double(id(of: fields)))
            return JSONText.serialize(.object(fields))
        }.joined(separator: ",") + "]"
    }

    /// FNV-1a over the binding's identifying fields, kept to 31 bits.
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
