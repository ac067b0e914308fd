import Foundation
import HTTPTypes
import Hummingbird

/// The TUS 1.0 headers as `/storage/v1/upload/resumable` reads and writes them
/// (docs/protocols/storage-reference.md §6): pure parsing, no I/O.
enum TusHeaders {
    /// The one protocol version spoken, sent back as `Tus-Resumable` on every answer.
    static let version = "1.0.0"
    /// What PATCH (and a creation that carries bytes) must declare as its Content-Type.
    static let chunkContentType = "application/offset+octet-stream"
    /// What `OPTIONS` advertises. Not `creation-defer-length`: an upload's length is its
    /// object's size, needed up front for the bucket's limit and the project's quota.
    static let extensions = "creation,creation-with-upload,termination,expiration"

    static let tusResumable = HTTPField.Name("Tus-Resumable")!
    static let tusVersion = HTTPField.Name("Tus-Version")!
    static let tusExtension = HTTPField.Name("Tus-Extension")!
    static let tusMaxSize = HTTPField.Name("Tus-Max-Size")!
    static let tusComplete = HTTPField.Name("Tus-Complete")!
    static let uploadLength = HTTPField.Name("Upload-Length")!
    static let uploadDeferLength = HTTPField.Name("Upload-Defer-Length")!
    static let uploadOffset = HTTPField.Name("Upload-Offset")!
    static let uploadMetadata = HTTPField.Name("Upload-Metadata")!
    static let uploadExpires = HTTPField.Name("Upload-Expires")!
    static let upsert = HTTPField.Name("x-upsert")!

    /// 412 unless the request speaks TUS 1.0.0 (every request but OPTIONS must say so).
    static func requireVersion(_ headers: HTTPFields) throws(TusError) {
        guard let value = headers[tusResumable] else { throw TusError(.preconditionFailed, "Tus-Resumable Required") }
        guard value.trimmingCharacters(in: .whitespaces) == version else {
            throw TusError(.preconditionFailed, "Tus-Resumable \(version) Required", headers: [tusVersion: version])
        }
    }

    /// A header holding a non-negative decimal integer: nil when absent, 400 `Invalid <name>`
    /// when anything else (a sign, spaces inside, letters, more than 18 digits).
    static func integer(_ headers: HTTPFields, _ name: HTTPField.Name) throws(TusError) -> Int64? {
        guard let raw = headers[name] else { return nil }
        let text = raw.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let value = Int64(text)
        else { throw TusError(.badRequest, "Invalid \(name.canonicalName.lowercased())") }
        return value
    }

    /// Whether a request's Content-Type is TUS's chunk type (parameters, case ignored).
    static func isChunk(_ headers: HTTPFields) -> Bool {
        guard let value = headers[.contentType] else { return false }
        return value.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() == chunkContentType
    }

    // MARK: Upload-Metadata

    /// `Upload-Metadata`: comma-separated `key` or `key base64(value)` pairs (tuspy sends an
    /// empty value as `key ` with a trailing space). Keys are printable ASCII without spaces
    /// or commas, each at most once; values standard base64 of UTF-8 text. Anything else is 400
    /// `Invalid upload-metadata`. A key without a value maps to "".
    static func metadata(_ header: String) throws(TusError) -> [String: String] {
        let invalid = TusError(.badRequest, "Invalid upload-metadata")
        guard !header.trimmingCharacters(in: .whitespaces).isEmpty else { throw invalid }
        var pairs: [String: String] = [:]
        for pair in header.split(separator: ",", omittingEmptySubsequences: false) {
            let tokens = pair.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: false)
            guard (1...2).contains(tokens.count) else { throw invalid }
            let key = String(tokens[0])
            guard !key.isEmpty, key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") }), pairs[key] == nil else {
                throw invalid
            }
            let encoded = tokens.count == 2 ? String(tokens[1]) : ""
            guard let value = decodeBase64(encoded) else { throw invalid }
            pairs[key] = value
        }
        return pairs
    }

    /// The pairs as `Upload-Metadata` again (HEAD sends them back), keys in a stable order.
    static func encodeMetadata(_ pairs: [String: String]) -> String {
        pairs.keys.sorted().map { key in
            let value = pairs[key] ?? ""
            return value.isEmpty ? key : key + " " + Data(value.utf8).base64EncodedString()
        }.joined(separator: ",")
    }

    /// Standard base64 (padding required when present, length a multiple of 4) of UTF-8 text.
    private static func decodeBase64(_ text: String) -> String? {
        if text.isEmpty { return "" }
        guard text.utf8.count % 4 == 0,
              text.utf8.allSatisfy({ byte in
                  (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                      || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
                      || byte == UInt8(ascii: "=")
              }),
              let data = Data(base64Encoded: text)
        else { return nil }
        return String(data: data, encoding: .utf8)
    }
}

/// A TUS error: plain text (the message and a newline) with the real HTTP status, as
/// `@tus/server` answers, and `Tus-Resumable` like every TUS answer.
struct TusError: Error, Equatable, Sendable {
    var status: HTTPResponse.Status
    var message: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    func response(for method: HTTPRequest.Method) -> Response {
        var fields = headers
        fields[TusHeaders.tusResumable] = TusHeaders.version
        fields[.contentType] = "text/plain; charset=utf-8"
        if method == .head { return Response(status: status, headers: fields) }
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: message + "\n")))
    }

    // MARK: The errors `@tus/server` words (storage-reference §6)

    static let notFound = TusError(.notFound, "The file for this url was not found")
    static let gone = TusError(.gone, "The file for this url no longer exists")
    static let offsetConflict = TusError(.conflict, "Upload-Offset conflict")
    static let sizeExceeded = TusError(.contentTooLarge, "upload's size exceeded")
    static let maximumSizeExceeded = TusError(.contentTooLarge, "Maximum size exceeded")
    static let offsetRequired = TusError(.forbidden, "Upload-Offset header required")
    static let lengthRequired = TusError(.badRequest, "Upload-Length header required")
    static let metadataRequired = TusError(.badRequest, "Metadata header is required")
    static let chunkTypeRequired = TusError(.unsupportedMediaType, "Content-Type must be \(TusHeaders.chunkContentType)")
    static let locked = TusError(HTTPResponse.Status(code: 423, reasonPhrase: "Locked"), "The upload is being written by another request")
}
