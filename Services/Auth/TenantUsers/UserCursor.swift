import Foundation
import ServiceKit

/// A keyset position in a tenant's users, `(created_at, id)` of the last user of a page, as
/// GoTrue's cursor pagination spells it: base64url (unpadded) of
/// `{"created_at":"2024-05-01T12:00:00.123456Z","id":"…"}`. Clients treat it as opaque.
///
/// `created_at` travels as text with PostgreSQL's full microseconds (a `Date` would round them,
/// and a rounded cursor could skip or repeat a user).
struct UserCursor: Sendable, Equatable {
    var createdAt: String
    var id: UUID

    /// The cursor's wire form.
    var token: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding a string and a UUID cannot fail.
        let json = (try? encoder.encode(Wire(created_at: createdAt, id: id.uuidString.lowercased()))) ?? Data()
        return Base64URL.encode(json)
    }

    private struct Wire: Codable {
        var created_at: String
        var id: String
    }

    /// Reads a cursor a client sent back; nil for anything this service did not write (bad
    /// encoding, JSON, id, or a timestamp that is not a real UTC instant).
    init?(token: String) {
        guard token.utf8.count <= 512, let data = Base64URL.decode(token),
              let wire = try? JSONDecoder().decode(Wire.self, from: data),
              let id = UUID(uuidString: wire.id), Self.isTimestamp(wire.created_at)
        else { return nil }
        self.init(createdAt: wire.created_at, id: id)
    }

    init(createdAt: String, id: UUID) {
        self.createdAt = createdAt
        self.id = id
    }

    /// `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, a date that exists: PostgreSQL is never sent a timestamp
    /// it would refuse.
    static func isTimestamp(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        let digit = UInt8(ascii: "d")
        func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
        let pattern = Array("dddd-dd-ddTdd:dd:dd".utf8)
        guard bytes.count > pattern.count, bytes.last == UInt8(ascii: "Z"),
              zip(bytes, pattern).allSatisfy({ byte, expected in expected == digit ? isDigit(byte) : byte == expected })
        else { return false }
        let fraction = bytes[pattern.count..<(bytes.count - 1)]
        if let dot = fraction.first {
            guard dot == UInt8(ascii: "."), (2...7).contains(fraction.count), fraction.dropFirst().allSatisfy(isDigit) else { return false }
        }
        func number(_ range: Range<Int>) -> Int { Int(String(decoding: bytes[range], as: UTF8.self)) ?? -1 }
        let (year, month, day) = (number(0..<4), number(5..<7), number(8..<10))
        guard year >= 1, number(11..<13) < 24, number(14..<16) < 60, number(17..<19) < 60,
              let utc = TimeZone(identifier: "UTC")
        else { return false }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = utc
        return DateComponents(calendar: calendar, timeZone: utc, year: year, month: month, day: day).isValidDate(in: calendar)
    }
}
