import Contracts
import Foundation

/// One row's change as a tenant's `realtime_capture()` trigger announces it (tenant migration
/// `0005_realtime_changes`) on `NOTIFY realtime_changes`: the change itself, or, when it did not
/// fit a notification, `{"schema", "outbox": <id>}` naming the row of the tenant's
/// `realtime_outbox` that holds it.
struct DatabaseChange: Decodable, Sendable {
    var schema: String
    var table: String
    var type: String
    var commitTimestamp: String
    var columns: JSONValue
    var primaryKey: [String]
    var record: [String: JSONValue]?
    var oldRecord: [String: JSONValue]?

    enum CodingKeys: String, CodingKey {
        case schema, table, type, columns, record
        case commitTimestamp = "commit_timestamp"
        case primaryKey = "primary_key"
        case oldRecord = "old_record"
    }

    /// A change too large for its notification: where it is kept.
    struct OutboxReference: Decodable, Sendable {
        var schema: String
        var outbox: Int64
    }

    enum Notice: Sendable {
        case change(DatabaseChange)
        case outbox(OutboxReference)
    }

    static func notice(_ text: String) -> Notice? {
        let data = Data(text.utf8)
        if let change = try? JSONDecoder().decode(DatabaseChange.self, from: data) { return .change(change) }
        if let reference = try? JSONDecoder().decode(OutboxReference.self, from: data) { return .outbox(reference) }
        return nil
    }

    static func decode(_ text: String) -> DatabaseChange? {
        try? JSONDecoder().decode(DatabaseChange.self, from: Data(text.utf8))
    }

    /// The row filters are evaluated on: the new record, or the old one of a delete.
    var row: [String: JSONValue] { record ?? oldRecord ?? [:] }

    /// The `data` of a `postgres_changes` event (docs/protocols/realtime-reference.md §6.2):
    /// INSERT has `record`; UPDATE `record` and `old_record`; DELETE `old_record`. The schema is
    /// `public`, the name clients subscribe with. `oldRecord` replaces the old record (a delete
    /// on a table with row-level security shows only its primary key).
    func eventData(oldRecord shown: [String: JSONValue]? = nil) -> String {
        var fields: [String: JSONValue] = [
            "schema": .string("public"), "table": .string(table), "commit_timestamp": .string(commitTimestamp),
            "type": .string(type), "columns": columns, "errors": .null,
        ]
        if type != "DELETE" { fields["record"] = .object(record ?? [:]) }
        if type != "INSERT" { fields["old_record"] = .object(shown ?? oldRecord ?? [:]) }
        return JSONText.serialize(.object(fields))
    }
}
