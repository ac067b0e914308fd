import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// An upload request's body as the Storage API clients send it (docs/protocols/storage-reference.md
/// §3.1): the file's bytes, streamed, and what to store with them.
///
/// - `multipart/form-data` (storage3, storage-js with a `Blob`/`File`/`FormData`): the first
///   part with a `filename` is the file, whatever its field name (storage3 names it `file`,
///   storage-js `""`). The text fields before it are read (`cacheControl`, `contentType`,
///   `metadata` or `userMetadata`; any other field is read and ignored), each within its
///   limit; parts after the file are ignored, and drained when the bytes have been read.
/// - Any other content type (storage-js with raw data, curl): the whole body is the file, and
///   what to store comes from the headers.
///
/// Errors before the file's first byte are thrown by `read`; after it (a body that ends before
/// its closing boundary, a malformed boundary, too much after the file) by the byte sequence, so
/// that the caller's write fails and removes what it wrote.
struct UploadBody: Sendable {
    /// The file's bytes, streamed as they arrive (never collected whole). Iterate it once.
    var bytes: UploadBytes
    /// The MIME type to store: multipart → the form field `contentType` if present, else the file
    /// part's Content-Type; raw → the request's Content-Type; else `application/octet-stream`.
    var contentType: String
    /// What to store as Cache-Control: multipart → `max-age=<cacheControl field>` when the field
    /// is a bare integer (storage3 and storage-js send `"3600"`), the field verbatim when it is
    /// already a directive list, `no-cache` when absent or empty; raw → the `cache-control`
    /// header verbatim (storage-js sends `max-age=3600`), `no-cache` when absent or empty.
    var cacheControl: String
    /// User metadata, always a JSON object: multipart → field `metadata` (or `userMetadata`) as
    /// JSON text, at most `Limits.metadataBytes`; raw → header `x-metadata`, base64 of JSON
    /// (undecodable, or not an object → nil, as Supabase ignores it).
    var userMetadata: JSONValue?
    /// The `Content-Length` of a raw body when known, so the caller can refuse an oversize upload
    /// before reading it (nil for multipart, where it counts the form around the file too).
    var declaredLength: Int64?

    struct Limits: Sendable {
        /// A text field before the file (`cacheControl`, `contentType`, any other).
        var fieldBytes = 64 * 1024
        /// The `metadata` / `userMetadata` field (Supabase's MAX_CUSTOM_METADATA_SIZE: 1 MiB).
        var metadataBytes = 1024 * 1024
        /// Parts before the file.
        var fieldsBeforeFile = 64
        /// Everything after the file's bytes: the parts that follow it, their headers, the
        /// closing boundary and any epilogue.
        var bytesAfterFile = 1024 * 1024
        /// The parser's own bounds (part header block, preamble).
        var multipart = MultipartReader<RequestBody.AsyncIterator>.Limits()
    }

    /// Reads the request's headers and, for multipart, its body up to the file's first byte.
    ///
    /// - Parameter gauge: sees the parser's window as it grows (tests).
    /// - Throws: `UploadBodyError`, or whatever the body's stream throws.
    static func read(_ request: Request, limits: Limits = Limits(), gauge: BufferGauge? = nil) async throws -> UploadBody {
        let requestType = request.headers[.contentType]
        if let requestType, let boundary = try multipartBoundary(requestType) {
            return try await readMultipart(request.body, boundary: boundary, limits: limits, gauge: gauge)
        }
        var userMetadata: JSONValue?
        if let encoded = request.headers[Self.xMetadata] {
            userMetadata = try decodeHeaderMetadata(encoded, limit: limits.metadataBytes)
        }
        var declaredLength: Int64?
        if let length = request.headers[.contentLength] {
            guard let value = Int64(length.trimmingCharacters(in: .whitespaces)), value >= 0 else {
                throw UploadBodyError.malformed("Content-Length is not a byte count")
            }
            declaredLength = value
        }
        let contentType = requestType.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        let cacheControl = request.headers[.cacheControl].map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return UploadBody(
            bytes: UploadBytes(raw: request.body),
            contentType: contentType.isEmpty ? defaultContentType : contentType,
            cacheControl: cacheControl.isEmpty ? "no-cache" : cacheControl,
            userMetadata: userMetadata,
            declaredLength: declaredLength
        )
    }

    static let defaultContentType = "application/octet-stream"
    private static let xMetadata = HTTPField.Name("x-metadata")!

    // MARK: multipart/form-data

    private static func readMultipart(_ body: RequestBody, boundary: String, limits: Limits, gauge: BufferGauge?) async throws -> UploadBody {
        var reader = MultipartReader(boundary: boundary, source: body.makeAsyncIterator(), limits: limits.multipart, gauge: gauge)
        var fields: [String: String] = [:]
        var partsBefore = 0
        while let head = try await reader.nextPart() {
            if head.isFile {
                let contentType = try fileContentType(field: fields["contentType"], part: head.contentType)
                let cacheControl = try storedCacheControl(field: fields["cacheControl"])
                let userMetadata = try (fields["metadata"] ?? fields["userMetadata"]).map(decodeFieldMetadata)
                return UploadBody(
                    bytes: UploadBytes(multipart: reader, bytesAfterFile: limits.bytesAfterFile),
                    contentType: contentType,
                    cacheControl: cacheControl,
                    userMetadata: userMetadata,
                    declaredLength: nil
                )
            }
            partsBefore += 1
            guard partsBefore <= limits.fieldsBeforeFile else {
                throw UploadBodyError.malformed("more than \(limits.fieldsBeforeFile) form fields before the file")
            }
            let name = head.name ?? ""
            let isMetadata = name == "metadata" || name == "userMetadata"
            let limit = isMetadata ? limits.metadataBytes : limits.fieldBytes
            var value = ByteBuffer()
            while let chunk = try await reader.nextBodyChunk() {
                guard value.readableBytes + chunk.readableBytes <= limit else {
                    // The client's name, shortened: the caller may quote it in its answer.
                    throw isMetadata ? UploadBodyError.metadataTooLarge : UploadBodyError.fieldTooLarge(String(name.prefix(100)))
                }
                value.writeImmutableBuffer(chunk)
            }
            guard head.name != nil, fields[name] == nil, Self.knownFields.contains(name) else { continue }
            guard let text = String(validating: value.readableBytesView, as: UTF8.self) else {
                throw UploadBodyError.malformed("the form field \(name) is not UTF-8 text")
            }
            fields[name] = text
        }
        throw UploadBodyError.noFile
    }

    /// The form fields read before the file (the first of a repeated name wins).
    private static let knownFields: Set<String> = ["cacheControl", "contentType", "metadata", "userMetadata"]

    /// The boundary when `contentType` is `multipart/form-data` (media type in any case), nil for
    /// any other type.
    static func multipartBoundary(_ contentType: String) throws -> String? {
        let (mediaType, parameters) = HeaderParameters.parse(contentType)
        guard mediaType.lowercased() == "multipart/form-data" else { return nil }
        guard let boundary = parameters["boundary"], !boundary.isEmpty else {
            throw UploadBodyError.malformed("multipart/form-data without a boundary")
        }
        // RFC 2046: 1 to 70 characters; printable ASCII keeps it out of the way of CR and LF.
        guard boundary.utf8.count <= 70, boundary.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw UploadBodyError.malformed("the multipart boundary is not 1 to 70 printable ASCII characters")
        }
        return boundary
    }

    private static func fileContentType(field: String?, part: String?) throws -> String {
        let chosen = [field, part].lazy.compactMap { $0?.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty }
        guard let chosen else { return defaultContentType }
        // Stored, then sent back as a Content-Type header: no control characters.
        guard !chosen.unicodeScalars.contains(where: isControl) else {
            throw UploadBodyError.malformed("the content type holds control characters")
        }
        return chosen
    }

    /// `max-age=<n>` for a bare integer (what the clients send), a directive list verbatim,
    /// `no-cache` when absent or empty (Supabase: `cacheTime ? max-age=… : no-cache`).
    static func storedCacheControl(field: String?) throws -> String {
        let value = (field ?? "").trimmingCharacters(in: .whitespaces)
        if value.isEmpty { return "no-cache" }
        if value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) { return "max-age=\(value)" }
        guard isDirectiveList(value) else {
            throw UploadBodyError.malformed("cacheControl is neither a number of seconds nor a Cache-Control directive list")
        }
        return value
    }

    /// RFC 9111 §5.2: `directive *( OWS "," OWS directive )`, directive = token [ "=" ( token /
    /// quoted-string ) ]; every directive name here begins with a letter (`max-age`, `public`, …).
    static func isDirectiveList(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        var index = 0
        func isTokenByte(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
            }
        }
        func skipSpaces() { while index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") { index += 1 } }
        func token() -> Bool {
            let start = index
            while index < bytes.count, isTokenByte(bytes[index]) { index += 1 }
            return index > start
        }
        while true {
            skipSpaces()
            guard index < bytes.count, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[index] | 0x20), token() else { return false }
            if index < bytes.count, bytes[index] == UInt8(ascii: "=") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                    index += 1
                    while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                        guard bytes[index] >= 0x20 || bytes[index] == UInt8(ascii: "\t"), bytes[index] != 0x7F else { return false }
                        if bytes[index] == UInt8(ascii: "\\") { index += 1 }
                        index += 1
                    }
                    guard index < bytes.count else { return false }
                    index += 1
                } else if !token() {
                    return false
                }
            }
            skipSpaces()
            if index == bytes.count { return true }
            guard bytes[index] == UInt8(ascii: ",") else { return false }
            index += 1
        }
    }

    // MARK: Metadata

    /// The `metadata` field: JSON text holding an object (its size was bounded as it was read).
    private static func decodeFieldMetadata(_ text: String) throws -> JSONValue {
        guard let value = jsonObject(Data(text.utf8)) else {
            throw UploadBodyError.malformed("metadata is not a JSON object (or holds a NUL character)")
        }
        return value
    }

    /// `x-metadata`: base64 of JSON text holding an object; nil when it is not (Supabase ignores
    /// what it cannot decode).
    private static func decodeHeaderMetadata(_ header: String, limit: Int) throws -> JSONValue? {
        var encoded = header.trimmingCharacters(in: .whitespaces)
        encoded += String(repeating: "=", count: (4 - encoded.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: encoded) else { return nil }
        guard data.count <= limit else { throw UploadBodyError.metadataTooLarge }
        return jsonObject(data)
    }

    /// A JSON object, with no NUL character in any string or key (PostgreSQL's jsonb cannot
    /// store one); nil for anything else.
    static func jsonObject(_ data: Data) -> JSONValue? {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: data), value.isObject, !holdsNul(value) else {
            return nil
        }
        return value
    }

    private static func holdsNul(_ value: JSONValue) -> Bool {
        switch value {
        case .string(let text): text.unicodeScalars.contains("\0")
        case .array(let values): values.contains(where: holdsNul)
        case .object(let members): members.contains { $0.key.unicodeScalars.contains("\0") || holdsNul($0.value) }
        case .null, .bool, .number: false
        }
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value < 0x20 && scalar != "\t") || scalar.value == 0x7F
    }
}

/// Why an upload's body cannot be read: all of them the client's doing (a 4xx), except that
/// `alreadyConsumed` is a programming error of the caller's.
enum UploadBodyError: Error, Equatable, CustomStringConvertible {
    /// A multipart body without a file part (Supabase: 400 `InvalidRequest`, "No content provided").
    case noFile
    /// Not what a multipart body or an upload's fields must be (400).
    case malformed(String)
    /// The `metadata` field (or `x-metadata`) above the limit (Supabase: 413 `EntityTooLarge`,
    /// entity `user_metadata`).
    case metadataTooLarge
    /// A form field before the file above its limit (413).
    case fieldTooLarge(String)
    /// The body ended before the multipart's closing boundary (400).
    case truncated
    /// `UploadBody.bytes` was iterated a second time.
    case alreadyConsumed

    var description: String {
        switch self {
        case .noFile: "No content provided"
        case .malformed(let reason): "The upload's body is malformed: \(reason)."
        case .metadataTooLarge: "The user metadata is too large."
        case .fieldTooLarge(let name): "The form field \"\(name)\" is too large."
        case .truncated: "The upload's body ended before its closing multipart boundary."
        case .alreadyConsumed: "The upload's body was already read."
        }
    }
}

/// The file's bytes of an `UploadBody`: the request body itself (raw), or the file part's body
/// (multipart), then the rest of the form drained. One iteration only: a second one throws
/// `UploadBodyError.alreadyConsumed`.
struct UploadBytes: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    typealias Failure = any Error
    typealias Reader = MultipartReader<RequestBody.AsyncIterator>

    private enum Source: Sendable {
        case raw(HandOff<RequestBody>)
        case multipart(HandOff<Reader>, bytesAfterFile: Int)
    }

    private let source: Source

    init(raw body: RequestBody) {
        source = .raw(HandOff(body))
    }

    init(multipart reader: Reader, bytesAfterFile: Int) {
        source = .multipart(HandOff(reader), bytesAfterFile: bytesAfterFile)
    }

    func makeAsyncIterator() -> AsyncIterator {
        switch source {
        case .raw(let handOff):
            return AsyncIterator(handOff.take().map { .raw($0.makeAsyncIterator()) } ?? .alreadyConsumed)
        case .multipart(let handOff, let bytesAfterFile):
            return AsyncIterator(handOff.take().map { .file($0, bytesAfterFile: bytesAfterFile) } ?? .alreadyConsumed)
        }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        fileprivate enum State {
            case raw(RequestBody.AsyncIterator)
            case file(Reader, bytesAfterFile: Int)
            case alreadyConsumed
            case done
        }

        private var state: State

        fileprivate init(_ state: State) {
            self.state = state
        }

        mutating func next() async throws -> ByteBuffer? {
            switch state {
            case .done:
                return nil
            case .alreadyConsumed:
                state = .done
                throw UploadBodyError.alreadyConsumed
            case .raw(var body):
                state = .done
                while let chunk = try await body.next() {
                    if chunk.readableBytes > 0 {
                        state = .raw(body)
                        return chunk
                    }
                }
                return nil
            case .file(var reader, let bytesAfterFile):
                state = .done  // an error ends the sequence
                if let chunk = try await reader.nextBodyChunk() {
                    state = .file(reader, bytesAfterFile: bytesAfterFile)
                    return chunk
                }
                try await Self.drain(&reader, limit: bytesAfterFile)
                return nil
            }
        }

        /// Reads what follows the file (ignored parts, the close, an epilogue) to the body's
        /// end, so a malformed or truncated form fails the upload, within `limit` bytes.
        private static func drain(_ reader: inout Reader, limit: Int) async throws {
            let start = reader.bytesConsumed
            func check(_ reader: Reader) throws {
                guard reader.bytesConsumed - start <= limit else {
                    throw UploadBodyError.malformed("more than \(limit) bytes follow the file")
                }
            }
            while try await reader.nextPart() != nil {
                try check(reader)
                while try await reader.nextBodyChunk() != nil { try check(reader) }
            }
            while try await reader.nextEpilogueChunk() != nil { try check(reader) }
            try check(reader)
        }
    }
}

/// Holds a value for the one consumer that takes it; later takers get nil. The value itself
/// need not be `Sendable` (a request body's iterator is not): it is only ever used by its one
/// taker, after the atomic exchange that makes it theirs.
final class HandOff<Value>: @unchecked Sendable {
    private let taken = Atomic<Bool>(false)
    private var value: Value?

    init(_ value: Value) {
        self.value = value
    }

    func take() -> Value? {
        guard taken.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return nil
        }
        defer { value = nil }
        return value
    }
}
