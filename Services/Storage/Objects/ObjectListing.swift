import Foundation
import ServiceKit

/// One page of a bucket's keys by cursor — S3's ListObjectsV2 / ListObjects (storage-reference
/// §8.3) and the Storage API's list v2 (§3.4): the keys under `prefix`, in byte order, after a
/// cursor; with a `delimiter`, the keys holding it past the prefix are rolled up into their
/// common prefix (each counted once, as one entry). Rows are read in batches by name
/// (`ObjectStore.page`), and a common prefix is skipped in one step (the next read starts past
/// every key under it), so a page costs about its size in rows whatever lies under each prefix.
struct ObjectListing: Sendable {
    typealias Entry = StoredObject

    /// Where a page starts: after a key (exclusive), or at a bound (inclusive: the first key
    /// past a common prefix).
    struct Cursor: Sendable, Equatable {
        var key: String
        var inclusive: Bool

        /// `continuation-token`: opaque to clients, base64url of the cursor.
        var token: String {
            Base64URL.encode(((inclusive ? "i" : "e") + key).utf8)
        }

        init(key: String, inclusive: Bool) {
            self.key = key
            self.inclusive = inclusive
        }

        init?(token: String) {
            guard token.utf8.count <= 4096, let data = Base64URL.decode(token), let decoded = String(data: data, encoding: .utf8),
                  let first = decoded.first, first == "i" || first == "e"
            else { return nil }
            self.init(key: String(decoded.dropFirst()), inclusive: first == "i")
        }
    }

    struct Page: Sendable, Equatable {
        var objects: [Entry] = []
        var commonPrefixes: [String] = []
        var isTruncated = false
        /// Where the next page starts (when truncated).
        var next: Cursor?
        /// The last key or common prefix of the page (ListObjects v1's `NextMarker`).
        var lastEntry: String?
    }

    /// Reads up to `limit` rows of the bucket whose names start with `prefix`, past `cursor`, by name.
    typealias Fetch = @Sendable (_ prefix: String, _ cursor: Cursor, _ limit: Int) async throws -> [Entry]

    static let batch = 1000

    static func page(prefix: String, delimiter: String, start: Cursor, maxKeys: Int, fetch: Fetch) async throws -> Page {
        var page = Page()
        var cursor = start
        guard maxKeys > 0 else {
            page.isTruncated = !(try await fetch(prefix, cursor, 1)).isEmpty
            page.next = page.isTruncated ? cursor : nil
            return page
        }
        var count = 0
        reading: while true {
            let rows = try await fetch(prefix, cursor, batch)
            if rows.isEmpty { return page }
            for row in rows {
                if count == maxKeys {
                    page.isTruncated = true
                    page.next = cursor
                    return page
                }
                if !delimiter.isEmpty, let common = commonPrefix(of: row.name, prefix: prefix, delimiter: delimiter) {
                    page.commonPrefixes.append(common)
                    page.lastEntry = common
                    count += 1
                    // Past every key under the common prefix, read afresh.
                    cursor = Cursor(key: successor(common), inclusive: true)
                    continue reading
                }
                page.objects.append(row)
                page.lastEntry = row.name
                count += 1
                cursor = Cursor(key: row.name, inclusive: false)
            }
            if rows.count < batch {
                return page
            }
        }
    }

    /// `name` up to and including the first `delimiter` after `prefix` (compared by Unicode
    /// scalars, as the database compares bytes), or nil when there is none.
    static func commonPrefix(of name: String, prefix: String, delimiter: String) -> String? {
        let scalars = Array(name.unicodeScalars), needle = Array(delimiter.unicodeScalars)
        let start = prefix.unicodeScalars.count
        guard !needle.isEmpty, scalars.count >= start + needle.count else { return nil }
        for index in start...(scalars.count - needle.count) where scalars[index..<(index + needle.count)].elementsEqual(needle) {
            var out = ""
            out.unicodeScalars.append(contentsOf: scalars[..<(index + needle.count)])
            return out
        }
        return nil
    }

    /// The least string greater than every string starting with `text` (byte order): its last
    /// scalar plus one (UTF-8 keeps scalar order in byte order).
    static func successor(_ text: String) -> String {
        var scalars = Array(text.unicodeScalars)
        while let last = scalars.popLast() {
            var value = last.value + 1
            if (0xD800...0xDFFF).contains(value) { value = 0xE000 }
            if let next = Unicode.Scalar(value) {
                scalars.append(next)
                var out = ""
                out.unicodeScalars.append(contentsOf: scalars)
                return out
            }
        }
        return text + "\u{10FFFF}"
    }

}
