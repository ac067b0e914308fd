import Foundation
import Hummingbird
import Synchronization

/// A streaming reader of a `multipart/form-data` body (RFC 7578 over RFC 2046), pulled part by
/// part from a sequence of buffers as they arrive.
///
/// Memory: it holds the buffer in hand plus, between buffers, at most the few bytes that could
/// start a delimiter (`CRLF--boundary`, at most 74 bytes), or a part's header block while it is
/// being read (at most `Limits.partHeaderBytes`). A part's body is handed on in slices of the
/// buffers that arrived, never gathered; what the caller keeps is its own business.
///
/// Every malformation is an `UploadBodyError` (`.truncated` when the source ends before the
/// closing delimiter); nothing here traps on input.
struct MultipartReader<Source: AsyncIteratorProtocol> where Source.Element == ByteBuffer {
    struct Limits: Sendable {
        /// A part's header block (everything between its delimiter line and the empty line).
        var partHeaderBytes = 16 * 1024
        /// Bytes before the first delimiter (RFC 2046's preamble, which is ignored).
        var preambleBytes = 64 * 1024
        /// Transport padding (spaces and tabs) after a delimiter, before its CRLF.
        var paddingBytes = 256
    }

    /// What a part's headers say.
    struct PartHead: Sendable, Equatable {
        /// Content-Disposition's `name`: nil when absent, or when the part has no
        /// `form-data` disposition (such parts are ignored, as busboy does).
        var name: String?
        /// Content-Disposition's `filename` (or `filename*`, undecoded): present, even empty,
        /// marks a file part.
        var filename: String?
        /// The part's Content-Type, trimmed; nil when absent.
        var contentType: String?

        var isFile: Bool { filename != nil }
    }

    private enum State {
        /// Before the first delimiter: bytes are skipped.
        case preamble
        /// Just after a delimiter: either `--` (the close) or padding and CRLF follow.
        case delimiter
        /// The header block of a part.
        case headers
        /// A part's body.
        case body
        /// After the closing delimiter: what remains is the epilogue.
        case closed
    }

    private var source: Source
    private var sourceFinished = false
    /// Bytes received and not yet handed on or skipped.
    private var window: ByteBuffer
    /// `CRLF--boundary`.
    private let delimiter: [UInt8]
    private var state = State.preamble
    private let limits: Limits
    private let gauge: BufferGauge?
    /// Every byte consumed from the body so far (handed on or skipped), for callers' caps.
    private(set) var bytesConsumed = 0

    /// - Parameters:
    ///   - boundary: the boundary from the Content-Type, 1 to 70 characters (see
    ///     `UploadBody.multipartBoundary`).
    ///   - gauge: sees the window's size each time it grows (tests use it to check the
    ///     memory bound).
    init(boundary: String, source: Source, limits: Limits = Limits(), gauge: BufferGauge? = nil) {
        self.source = source
        self.delimiter = Array("\r\n--\(boundary)".utf8)
        self.limits = limits
        self.gauge = gauge
        // The first delimiter may open the body without the CRLF that precedes every other
        // one: start with one, so that a single rule finds them all (a preamble then ends
        // with it, and is skipped either way).
        self.window = ByteBuffer(bytes: [UInt8(ascii: "\r"), UInt8(ascii: "\n")])
        self.bytesConsumed = -2
    }

    /// Moves to the next part and reads its headers; nil after the closing delimiter.
    /// The rest of the current part's body, if any, is skipped.
    mutating func nextPart() async throws -> PartHead? {
        while true {
            switch state {
            case .closed:
                return nil
            case .preamble:
                while let skipped = try await nextSegment() {
                    _ = skipped
                    if bytesConsumed > limits.preambleBytes {
                        throw UploadBodyError.malformed("more than \(limits.preambleBytes) bytes before the first multipart boundary")
                    }
                }
            case .body:
                while try await nextSegment() != nil {}
            case .delimiter:
                try await ensure(2)
                if window.readableBytesView.starts(with: [UInt8(ascii: "-"), UInt8(ascii: "-")]) {
                    _ = consume(2)
                    state = .closed
                    return nil
                }
                let lineEnd = try await scan(for: Self.crlf, within: limits.paddingBytes, what: "the line after a multipart boundary")
                let padding = consume(lineEnd)
                guard padding.readableBytesView.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) else {
                    throw UploadBodyError.malformed("a multipart boundary is followed by other characters than the line's end")
                }
                _ = consume(2)
                state = .headers
            case .headers:
                try await ensure(2)
                var block = ByteBuffer()
                if window.readableBytesView.starts(with: Self.crlf) {
                    _ = consume(2)  // no headers at all
                } else {
                    let end = try await scan(for: Self.headerEnd, within: limits.partHeaderBytes, what: "a part's header block")
                    block = consume(end)
                    _ = consume(Self.headerEnd.count)
                }
                let head = try Self.parseHead(block)
                state = .body
                return head
            }
        }
    }

    /// The next piece of the current part's body, as it arrives; nil at the part's end (and
    /// whenever no part's body is being read). Never empty.
    mutating func nextBodyChunk() async throws -> ByteBuffer? {
        guard case .body = state else { return nil }
        return try await nextSegment()
    }

    /// After the closing delimiter: what follows it (RFC 2046's epilogue, which is ignored),
    /// so a caller can drain the body; nil at its end, or before the close.
    mutating func nextEpilogueChunk() async throws -> ByteBuffer? {
        guard case .closed = state else { return nil }
        if window.readableBytes > 0 { return consume(window.readableBytes) }
        while !sourceFinished {
            guard let chunk = try await source.next() else {
                sourceFinished = true
                return nil
            }
            if chunk.readableBytes > 0 {
                bytesConsumed += chunk.readableBytes
                return chunk
            }
        }
        return nil
    }

    // MARK: Delimiters

    /// In the preamble or a body: the bytes before the next delimiter, as far as they are
    /// known not to start one; nil once the delimiter is reached (and consumed).
    private mutating func nextSegment() async throws -> ByteBuffer? {
        while true {
            if let index = window.withUnsafeReadableBytes({ bytes in
                delimiter.withUnsafeBytes { Self.firstIndex(of: $0, in: bytes, from: 0) }
            }) {
                if index > 0 { return consume(index) }
                _ = consume(delimiter.count)
                state = .delimiter
                return nil
            }
            let safe = window.readableBytes - partialDelimiterLength()
            if safe > 0 { return consume(safe) }
            guard try await fill() else { throw UploadBodyError.truncated }
        }
    }

    /// The length of the longest end of the window that could be the start of a delimiter
    /// (the window holds no whole one); 0 when none could.
    private func partialDelimiterLength() -> Int {
        window.withUnsafeReadableBytes { bytes in
            let count = bytes.count
            var start = max(0, count - (delimiter.count - 1))
            while start < count {
                if bytes[start] == delimiter[0], bytes[start...].elementsEqual(delimiter.prefix(count - start)) {
                    return count - start
                }
                start += 1
            }
            return 0
        }
    }

    // MARK: The window

    /// Reads buffers until the window holds at least `count` bytes.
    private mutating func ensure(_ count: Int) async throws {
        while window.readableBytes < count {
            guard try await fill() else { throw UploadBodyError.truncated }
        }
    }

    /// Where `pattern` starts in the window, reading on as needed while the window (up to the
    /// pattern's end) stays within `limit` bytes.
    private mutating func scan(for pattern: [UInt8], within limit: Int, what: String) async throws -> Int {
        var from = 0
        while true {
            let found = window.withUnsafeReadableBytes { bytes in
                pattern.withUnsafeBytes { Self.firstIndex(of: $0, in: bytes, from: from) }
            }
            if let found {
                guard found <= limit else { break }
                return found
            }
            guard window.readableBytes < limit + pattern.count else { break }
            from = max(0, window.readableBytes - pattern.count + 1)
            guard try await fill() else { throw UploadBodyError.truncated }
        }
        throw UploadBodyError.malformed("\(what) is longer than \(limit) bytes")
    }

    /// Appends the source's next non-empty buffer to the window; false when the source ended.
    private mutating func fill() async throws -> Bool {
        while !sourceFinished {
            guard var chunk = try await source.next() else {
                sourceFinished = true
                return false
            }
            guard chunk.readableBytes > 0 else { continue }
            if window.readableBytes == 0 {
                window = chunk  // the usual case in a body: no copy
            } else {
                // A short tail (or a header block in progress) and the new buffer, in fresh
                // storage: the slices already handed on keep theirs.
                var joined = ByteBufferAllocator().buffer(capacity: window.readableBytes + chunk.readableBytes)
                joined.writeBuffer(&window)
                joined.writeBuffer(&chunk)
                window = joined
            }
            gauge?.record(window.readableBytes)
            return true
        }
        return false
    }

    private mutating func consume(_ count: Int) -> ByteBuffer {
        bytesConsumed += count
        return window.readSlice(length: count) ?? ByteBuffer()
    }

    // MARK: Byte search

    private static var crlf: [UInt8] { [UInt8(ascii: "\r"), UInt8(ascii: "\n")] }
    private static var headerEnd: [UInt8] { crlf + crlf }

    /// The first index at or after `from` where `pattern` occurs whole in `bytes`.
    static func firstIndex(of pattern: UnsafeRawBufferPointer, in bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        let length = pattern.count
        guard length > 0, bytes.count >= length, let base = bytes.baseAddress, let first = pattern.baseAddress else {
            return nil
        }
        let last = bytes.count - length
        var index = from
        while index <= last {
            guard let hit = memchr(base + index, Int32(pattern[0]), last - index + 1) else { return nil }
            let candidate = base.distance(to: UnsafeRawPointer(hit))
            if memcmp(base + candidate, first, length) == 0 { return candidate }
            index = candidate + 1
        }
        return nil
    }

    // MARK: Part headers

    /// Reads a part's header block: `Name: value` lines (folded lines continue the previous
    /// value); only Content-Disposition and Content-Type matter here.
    static func parseHead(_ block: ByteBuffer) throws -> PartHead {
        let text = Self.headerText(block)
        var fields: [(name: String, value: String)] = []
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: false) where !text.isEmpty {
            if let first = line.unicodeScalars.first, first == " " || first == "\t" {
                guard !fields.isEmpty else { throw UploadBodyError.malformed("a part's headers begin with a continuation line") }
                fields[fields.count - 1].value += " " + String(line).trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let colon = line.firstIndex(of: ":") else {
                throw UploadBodyError.malformed("a part's header line has no colon")
            }
            let name = String(line[..<colon]).trimmingCharacters(in: .whitespaces).lowercased()
            guard !name.isEmpty else { throw UploadBodyError.malformed("a part's header line has no name") }
            fields.append((name, String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
        }
        var head = PartHead()
        if let disposition = fields.first(where: { $0.name == "content-disposition" })?.value {
            let (type, parameters) = HeaderParameters.parse(disposition)
            if type.lowercased() == "form-data" {
                head.name = parameters["name"] ?? ""
                head.filename = parameters["filename"] ?? parameters["filename*"]
            }
        }
        if let type = fields.first(where: { $0.name == "content-type" })?.value, !type.isEmpty {
            head.contentType = type
        }
        return head
    }

    /// Header bytes as text: UTF-8 (what browsers and undici send for non-ASCII names), else
    /// ISO-8859-1 (each byte its own character), so that no header block is unreadable.
    private static func headerText(_ block: ByteBuffer) -> String {
        if let text = String(validating: block.readableBytesView, as: UTF8.self) { return text }
        var text = ""
        text.unicodeScalars.append(contentsOf: block.readableBytesView.map { Unicode.Scalar($0) })
        return text
    }
}

/// `value; name=token; other="quoted \" string"`: the first item and the parameters (names
/// lower-cased; the first of a repeated name wins), as Content-Type and Content-Disposition
/// carry them.
enum HeaderParameters {
    static func parse(_ header: String) -> (value: String, parameters: [String: String]) {
        let scalars = Array(header.unicodeScalars)
        var index = 0
        func skipSpaces() {
            while index < scalars.count, scalars[index] == " " || scalars[index] == "\t" { index += 1 }
        }
        func take(until stop: (Unicode.Scalar) -> Bool) -> String {
            var text = String.UnicodeScalarView()
            while index < scalars.count, !stop(scalars[index]) {
                text.append(scalars[index])
                index += 1
            }
            return String(text).trimmingCharacters(in: .whitespaces)
        }
        let value = take(until: { $0 == ";" })
        var parameters: [String: String] = [:]
        while index < scalars.count {
            index += 1  // the ";"
            skipSpaces()
            let name = take(until: { $0 == "=" || $0 == ";" }).lowercased()
            var parameter = ""
            if index < scalars.count, scalars[index] == "=" {
                index += 1
                skipSpaces()
                if index < scalars.count, scalars[index] == "\"" {
                    index += 1
                    var text = String.UnicodeScalarView()
                    while index < scalars.count, scalars[index] != "\"" {
                        if scalars[index] == "\\", index + 1 < scalars.count { index += 1 }
                        text.append(scalars[index])
                        index += 1
                    }
                    index += 1  // the closing quote
                    parameter = String(text)
                    _ = take(until: { $0 == ";" })  // anything after the quotes is ignored
                } else {
                    parameter = take(until: { $0 == ";" })
                }
            }
            if !name.isEmpty, parameters[name] == nil { parameters[name] = parameter }
        }
        return (value, parameters)
    }
}

/// The largest window a reader held (tests check the memory bound with it).
final class BufferGauge: Sendable {
    private let highest = Atomic<Int>(0)

    var highWater: Int { highest.load(ordering: .relaxed) }

    func record(_ bytes: Int) {
        _ = highest.max(bytes, ordering: .relaxed)
    }
}
