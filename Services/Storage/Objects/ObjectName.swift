import Foundation

/// An object's key in its bucket, confined to it: the path of the URL (each segment decoded
/// once) or of a JSON body, checked before anything is read or written.
///
/// Refused with 422 `InvalidKey`: empty names, names over 1,024 UTF-8 bytes or with a segment
/// over 255, a leading `/`, empty, `.` or `..` segments, control characters (NUL included) and
/// backslashes, and names not already in Unicode NFC — so two names that differ only in their
/// Unicode normalisation can never both exist (nor one shadow the other). UTF-8 beyond ASCII is
/// allowed, a departure from Supabase that no client notices (they all percent-encode).
enum ObjectName {
    static let maximumBytes = 1024
    static let maximumSegmentBytes = 255

    static func valid(_ name: String) throws -> String {
        let refuse = StorageError(.unprocessableContent, "InvalidKey", "Invalid key: \(name.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : String($0) }.joined())")
        guard !name.isEmpty, name.utf8.count <= maximumBytes, !name.hasPrefix("/") else { throw refuse }
        guard name.precomposedStringWithCanonicalMapping.unicodeScalars.elementsEqual(name.unicodeScalars) else { throw refuse }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "\\" }) else { throw refuse }
        // A trailing `/` is refused too: it would name a folder, which is not an object.
        for segment in name.split(separator: "/", omittingEmptySubsequences: false) {
            guard !segment.isEmpty, segment != ".", segment != "..", segment.utf8.count <= maximumSegmentBytes else { throw refuse }
        }
        return name
    }

    /// The name a request's path holds after the route's fixed segments (`endpoint`, e.g.
    /// `/storage/v1/object/{bucket}/**`), read from the raw path: the router's catch-all drops
    /// empty segments, which would turn `a//b` or `a/` into another name instead of refusing it.
    static func fromRequest(path: String, endpoint: String) throws -> String {
        let fixed = endpoint.split(separator: "/").prefix { $0 != "**" }.count
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var index = segments.startIndex, skipped = 0
        while skipped < fixed, index < segments.endIndex {
            if !segments[index].isEmpty { skipped += 1 }
            index += 1
        }
        return try fromPath(segments[index...].joined(separator: "/"))
    }

    /// A name as it stands in a URL path: each segment percent-decoded once.
    static func fromPath(_ raw: String) throws -> String {
        var decoded: [String] = []
        for segment in raw.split(separator: "/", omittingEmptySubsequences: false) {
            guard let text = String(segment).removingPercentEncoding else { throw StorageError.invalidKey(raw) }
            decoded.append(text)
        }
        return try valid(decoded.joined(separator: "/"))
    }
}
