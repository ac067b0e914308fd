import Contracts
import Foundation
import NIOCore

/// One Phoenix-channels message, as clients send it (docs/protocols/realtime-reference.md §2).
///
/// Two text forms reach the socket, chosen by the `vsn` query parameter (`PhoenixSerializer`):
/// V1 objects `{"topic","event","payload","ref","join_ref"}` (supabase-py) and V2 arrays
/// `[join_ref, ref, topic, event, payload]` (realtime-js). realtime-js also sends each broadcast
/// as a binary "user broadcast push" (kind 3), decoded here into the same message a text
/// broadcast makes.
struct PhoenixMessage: Sendable, Equatable {
    var joinRef: String?
    var ref: String?
    var topic: String
    var event: String
    var payload: JSONValue

    /// Why a frame is not a message; the socket answers nothing to it (Phoenix drops it too).
    struct Malformed: Error, Equatable {
        var reason: String
    }

    /// A text frame in `serializer`'s form.
    static func decode(text: String, serializer: PhoenixSerializer) throws(Malformed) -> PhoenixMessage {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch {
            throw Malformed(reason: "not JSON")
        }
        switch (serializer, value) {
        case (.v1, .object(let fields)):
            guard case .string(let topic)? = fields["topic"], case .string(let event)? = fields["event"] else {
                throw Malformed(reason: "a message needs a topic and an event")
            }
            return PhoenixMessage(joinRef: reference(fields["join_ref"]), ref: reference(fields["ref"]), topic: topic, event: event,
                                  payload: fields["payload"] ?? .emptyObject)
        case (.v2, .array(let items)) where items.count == 5:
            guard case .string(let topic) = items[2], case .string(let event) = items[3] else {
                throw Malformed(reason: "a message needs a topic and an event")
            }
            return PhoenixMessage(joinRef: reference(items[0]), ref: reference(items[1]), topic: topic, event: event, payload: items[4])
        default:
            throw Malformed(reason: "not a \(serializer.vsn) message")
        }
    }

    /// A ref is a string; a number is taken as its text, null or absent as nil.
    private static func reference(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text): text
        case .number(let number): JSONText.serialize(.number(number))
        default: nil
        }
    }

    /// Kind 3 of realtime's V2 binary form, a user broadcast push:
    /// `3, len(join_ref), len(ref), len(topic), len(event), len(metadata), encoding, join_ref,
    /// ref, topic, event, metadata, payload`; encoding 1 is JSON, 0 raw bytes.
    static func decode(binary buffer: ByteBuffer) throws(Malformed) -> PhoenixMessage {
        var buffer = buffer
        guard let kind = buffer.readInteger(as: UInt8.self) else { throw Malformed(reason: "empty binary frame") }
        guard kind == 3 else { throw Malformed(reason: "binary frames of kind \(kind) are not accepted") }
        guard let lengths = buffer.readBytes(length: 6) else { throw Malformed(reason: "truncated binary frame") }
        var fields: [String] = []
        for length in lengths.prefix(5) {
            guard let field = buffer.readString(length: Int(length)) else { throw Malformed(reason: "truncated binary frame") }
            fields.append(field)
        }
        guard lengths[5] == 1 else { throw Malformed(reason: "binary broadcast payloads are not supported; send JSON") }
        let body = buffer.readableBytesView
        let payload: JSONValue
        do {
            payload = try JSONDecoder().decode(JSONValue.self, from: Data(body))
        } catch {
            throw Malformed(reason: "the broadcast payload is not JSON")
        }
        return PhoenixMessage(
            joinRef: fields[0].isEmpty ? nil : fields[0], ref: fields[1].isEmpty ? nil : fields[1], topic: fields[2], event: "broadcast",
            payload: .object(["type": .string("broadcast"), "event": .string(fields[3]), "payload": payload])
        )
    }
}

/// The frame forms of Phoenix's `vsn` query parameter.
enum PhoenixSerializer: String, Sendable {
    /// Phoenix's V1 JSON objects: what supabase-py speaks (and the default without `vsn`).
    case v1 = "1.0.0"
    /// V2 JSON arrays: what realtime-js speaks.
    case v2 = "2.0.0"

    var vsn: String { rawValue }

    /// The serializer a `vsn` names; absent means V1, as Phoenix assumes.
    init?(vsn: String?) {
        guard let vsn else { self = .v1; return }
        self.init(rawValue: vsn)
    }

    /// A server frame whose payload is JSON text already. V1 frames carry `ref` always (null when
    /// none: supabase-py drops a frame without it) and no `join_ref`; V2 frames carry both.
    func frame(topic: String, event: String, payload: String, ref: String? = nil, joinRef: String? = nil) -> String {
        let topic = JSONText.quote(topic), event = JSONText.quote(event)
        let ref = ref.map(JSONText.quote) ?? "null"
        switch self {
        case .v1:
            return "{\"topic\":\(topic),\"event\":\(event),\"payload\":\(payload),\"ref\":\(ref)}"
        case .v2:
            return "[\(joinRef.map(JSONText.quote) ?? "null"),\(ref),\(topic),\(event),\(payload)]"
        }
    }
}
