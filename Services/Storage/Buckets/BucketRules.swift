import Contracts
import Foundation

/// What a bucket's fields must be (docs/protocols/storage-reference.md §2), for create and update
/// alike; each refusal is the Storage API's error.
enum BucketRules {
    /// 1–100 characters of the Storage API's set, no surrounding whitespace, and none of the
    /// words the object routes use in a bucket's place (`/object/public/…`, `/object/list/…`):
    /// a bucket so named could not be reached. (Supabase allows them, and shadows the bucket.)
    static func validID(_ id: String) throws -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_!.*'() &$@=;:+,?-")
        guard (1...100).contains(id.count), id.allSatisfy(allowed.contains), id.trimmingCharacters(in: .whitespaces) == id,
              !reservedIDs.contains(id) else {
            throw StorageError(.badRequest, "InvalidBucketName", error: "Invalid Input", "Bucket name invalid")
        }
        return id
    }

    /// The bucket a route's path names: its `{bucket}` segment percent-decoded once (clients
    /// encode a name's spaces and reserved characters: `my%20files`); nil when the result cannot
    /// be a bucket's id, so no bucket has it — and nothing undecodable, or holding a NUL, reaches
    /// the database.
    static func fromPath(_ raw: String) -> String? {
        guard let decoded = raw.removingPercentEncoding, (try? validID(decoded)) != nil else { return nil }
        return decoded
    }

    static let reservedIDs: Set<String> = ["public", "authenticated", "info", "list", "list-v2", "move", "copy", "sign", "upload"]

    /// A size in bytes: a non-negative integer, or a decimal size such as `"10MB"` (GB, MB, KB, B;
    /// powers of 1000, as Supabase reads them); nil clears the limit. Above `maximum` → 413.
    static func fileSizeLimit(_ value: JSONValue?, maximum: Int64) throws -> Int64? {
        let bytes: Double
        switch value {
        case nil, .null?: return nil
        case .number(let number)?:
            bytes = number
        case .string(let text)?:
            let upper = text.trimmingCharacters(in: .whitespaces).uppercased()
            let units: [(String, Double)] = [("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1)]
            guard let (unit, scale) = units.first(where: { upper.hasSuffix($0.0) }),
                  let number = Double(upper.dropLast(unit.count)), upper.dropLast(unit.count).allSatisfy({ $0.isNumber || $0 == "." })
            else { throw Self.badSize }
            bytes = (number * scale).rounded()
        default:
            throw Self.badSize
        }
        guard bytes >= 0, bytes == bytes.rounded(), bytes < 9.2e18 else { throw Self.badSize }
        guard Int64(bytes) <= maximum else { throw StorageError.tooLarge }
        return Int64(bytes)
    }

    static let badSize = StorageError.invalidRequest("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")

    /// `type/subtype`, a `type/*` wildcard, or `type/subtype; charset=…`; empty entries dropped;
    /// an empty list is no restriction (nil).
    static func allowedMimeTypes(_ types: [String]?) throws -> [String]? {
        guard let types else { return nil }
        let kept = types.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for type in kept where !isMimePattern(type) { throw StorageError.invalidMimeType(type) }
        return kept.isEmpty ? nil : kept
    }

    /// A media type as HTTP writes one (RFC 9110 §8.3.1): `type/subtype`, both tokens, then any
    /// parameters (`; charset=UTF-8`, not examined). What an upload stores is served back as its
    /// downloads' `Content-Type`, so it must be one.
    static func isMediaType(_ value: String) -> Bool {
        let special = Set("!#$%&'*+-.^_`|~")
        let token = { (part: Substring) in !part.isEmpty && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || special.contains($0)) } }
        let essence = (value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingCharacters(in: .whitespaces)
        let parts = essence.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && token(parts[0]) && token(parts[1])
    }

    static func isMimePattern(_ type: String) -> Bool {
        let token = { (part: Substring) in !part.isEmpty && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-+.".contains($0)) } }
        // Not `split(…)[0]`: a type of nothing but `;` splits into no parts at all.
        let main = (type.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingCharacters(in: .whitespaces)
        let parts = main.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, token(parts[0]) else { return false }
        return parts[1] == "*" || token(parts[1])
    }

    /// Whether a bucket's allow-list admits `contentType`. Parameters (`;charset=…`) are ignored
    /// on both sides — a departure from Supabase, which refuses storage3's default
    /// `text/plain;charset=UTF-8` in a bucket allowing `text/plain`.
    static func admits(_ contentType: String, in allowed: [String]?) -> Bool {
        guard let allowed, !allowed.isEmpty else { return true }
        let essence = { (value: String) in
            value.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        }
        let type = essence(contentType).split(separator: "/", maxSplits: 1).map(String.init)
        guard type.count == 2 else { return false }
        return allowed.contains { pattern in
            let parts = essence(pattern).split(separator: "/", maxSplits: 1).map(String.init)
            return parts.count == 2 && parts[0] == type[0] && (parts[1] == "*" || parts[1] == type[1])
        }
    }
}
