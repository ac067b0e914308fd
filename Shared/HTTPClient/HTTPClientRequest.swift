#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A request for ``CurlHTTPClient/execute(_:)``.
///
/// (Named `HTTPClientRequest` rather than `HTTPRequest` so that files importing both this module
/// and Hummingbird, which re-exports `HTTPTypes.HTTPRequest`, need no module qualification.)
public struct HTTPClientRequest: Sendable {
    public var method: HTTPMethod
    /// Absolute `http://` or `https://` URL.
    public var url: String
    public var headers: HTTPClientHeaders
    /// Bytes sent as the request body, or nil for none. `POST`, `PUT` and `PATCH` without a body
    /// are sent with `Content-Length: 0`.
    public var body: [UInt8]?
    /// Overrides the configuration's ``HTTPClientConfiguration/requestTimeout`` for each attempt.
    public var timeout: Duration?
    /// Overrides the idempotency inferred by ``isIdempotent`` (e.g. `true` for a POST the server
    /// de-duplicates by another means, `false` for a PUT that must not be repeated).
    public var idempotent: Bool?
    /// Connects to exactly this IP address for the URL's host (libcurl's `CURLOPT_CONNECT_TO`)
    /// instead of resolving the name again: a caller that checked where a name points (webhook
    /// targets, against private addresses) sends the request there and nowhere else.
    public var pinnedAddress: String?

    public init(
        method: HTTPMethod = .get,
        url: String,
        headers: HTTPClientHeaders = [:],
        body: [UInt8]? = nil,
        timeout: Duration? = nil,
        idempotent: Bool? = nil,
        pinnedAddress: String? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.idempotent = idempotent
        self.pinnedAddress = pinnedAddress
    }

    /// Whether repeating this request is safe, which is what allows the client to retry it after
    /// a timeout or a retryable status: ``idempotent`` when set; otherwise true for idempotent
    /// methods (GET, HEAD, PUT, DELETE, OPTIONS) and for requests carrying an `Idempotency-Key`.
    public var isIdempotent: Bool {
        if let idempotent { return idempotent }
        return self.method.isIdempotent || self.headers.contains(Self.idempotencyKeyHeader)
    }

    /// `Idempotency-Key` (IETF draft-ietf-httpapi-idempotency-key-header): a request carrying it
    /// is one the server de-duplicates, so the client may repeat it like an idempotent method.
    public static let idempotencyKeyHeader = "Idempotency-Key"
}

extension HTTPClientRequest: CustomStringConvertible {
    /// `METHOD scheme://host/path headers, N body bytes`: the URL without credentials, query or
    /// fragment, credential headers redacted, and the body only counted, so requests can be logged.
    public var description: String {
        "\(self.method) \(Self.redact(self.url)) \(self.headers), \(self.body?.count ?? 0) body bytes"
    }

    static func redact(_ url: String) -> String {
        let withoutQuery = url.prefix { $0 != "?" && $0 != "#" }
        guard let schemeSeparator = withoutQuery.firstRange(of: "://") else { return String(withoutQuery) }
        let authorityAndPath = withoutQuery[schemeSeparator.upperBound...]
        let authorityEnd = authorityAndPath.firstIndex(of: "/") ?? authorityAndPath.endIndex
        guard let at = authorityAndPath[..<authorityEnd].lastIndex(of: "@") else { return String(withoutQuery) }
        return String(withoutQuery[..<schemeSeparator.upperBound] + authorityAndPath[authorityAndPath.index(after: at)...])
    }
}

/// A response, whatever its status.
///
/// (Named `HTTPClientResponse` for the same reason as ``HTTPClientRequest``.)
public struct HTTPClientResponse: Sendable, CustomStringConvertible {
    /// The status code, e.g. 200.
    public var status: Int
    /// Header fields of the final response, in the order received (interim `100 Continue`
    /// headers are not included).
    public var headers: HTTPClientHeaders
    /// The body, already de-chunked.
    public var body: [UInt8]

    public init(status: Int, headers: HTTPClientHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Whether the status is 2xx.
    public var isSuccess: Bool { (200..<300).contains(self.status) }

    /// `status headers, N body bytes`, credential headers redacted.
    public var description: String {
        "\(self.status) \(self.headers), \(self.body.count) body bytes"
    }

    /// Decodes the body as JSON (ISO-8601 dates, as everywhere on the platform).
    ///
    /// - Throws: ``HTTPClientError/undecodableBody(type:reason:)``.
    public func decode<Value: Decodable>(_ type: Value.Type = Value.self) throws(HTTPClientError) -> Value {
        try JSONCoding.decode(type, from: self.body)
    }
}

/// The platform's JSON settings, shared by every request. `JSONEncoder`/`JSONDecoder` are
/// thread-safe for concurrent `encode`/`decode` calls once configured, and they are never
/// reconfigured after initialisation.
enum JSONCoding {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .withoutEscapingSlashes
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    static func encode(_ value: some Encodable) throws(HTTPClientError) -> [UInt8] {
        do {
            return Array(try Self.encoder.encode(value))
        } catch {
            throw .unencodableBody(type: String(describing: type(of: value)), reason: describe(error))
        }
    }

    static func decode<Value: Decodable>(_ type: Value.Type, from body: [UInt8]) throws(HTTPClientError) -> Value {
        do {
            return try Self.decoder.decode(type, from: Data(body))
        } catch {
            throw .undecodableBody(type: String(describing: type), reason: describe(error))
        }
    }

    /// A description of a coding error that names the failing coding path and the problem but
    /// never echoes the payload (DecodingError's `underlyingError` can quote parts of the input).
    static func describe(_ error: any Error) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.isEmpty ? "<root>" : codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case DecodingError.typeMismatch(let type, let context):
            return "type mismatch for \(type) at \(path(context.codingPath))"
        case DecodingError.valueNotFound(let type, let context):
            return "missing value of type \(type) at \(path(context.codingPath))"
        case DecodingError.keyNotFound(let key, let context):
            return "missing key '\(key.stringValue)' at \(path(context.codingPath))"
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "not valid JSON" : "invalid value at \(path(context.codingPath))"
        case EncodingError.invalidValue(_, let context):
            return "invalid value at \(path(context.codingPath))"
        default:
            return "\(type(of: error))"
        }
    }
}
