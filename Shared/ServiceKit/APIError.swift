import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// An error a client is meant to see: a status, a stable code and a sentence, rendered as the
/// platform's one error shape `{"error":{"code":"…","message":"…","field":"…"}}`.
///
/// Anything thrown that is not an `APIError` becomes a 500 `internal_error` (or, for a database
/// that cannot be reached, 503 `database_unavailable`) whose details go to the log only (see
/// `ErrorMiddleware`).
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var field: String?
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, field: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Self.render(status: status, envelope: ErrorEnvelope(code: code, message: message, field: field), headers: headers)
    }

    static func render(status: HTTPResponse.Status, envelope: ErrorEnvelope, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = jsonContentType
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: encoded(envelope))))
    }

    /// The envelope's JSON bytes, exactly as `render` sends them (idempotency keys store them
    /// to replay the same answer later).
    static func encoded(_ envelope: ErrorEnvelope) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding two strings and an optional cannot fail; an empty body is the fallback.
        return Array((try? encoder.encode(envelope)) ?? Data())
    }

    /// This error's body, as `response(from:context:)` renders it.
    var encodedBody: [UInt8] { Self.encoded(ErrorEnvelope(code: code, message: message, field: field)) }

    // MARK: Common errors

    public static func notFound(_ what: String = "resource") -> APIError {
        APIError(.notFound, code: "not_found", message: "The \(what) was not found.")
    }

    public static func validation(field: String, _ message: String) -> APIError {
        APIError(.unprocessableContent, code: "validation_failed", message: message, field: field)
    }

    public static func conflict(code: String = "conflict", _ message: String) -> APIError {
        APIError(.conflict, code: code, message: message)
    }

    public static func unauthorized(_ message: String = "Authentication is required.") -> APIError {
        APIError(.unauthorized, code: "unauthorized", message: message)
    }

    public static func serviceUnavailable(code: String = "service_unavailable", _ message: String) -> APIError {
        APIError(.serviceUnavailable, code: code, message: message)
    }
}

/// Turns every error into the platform's error shape.
///
/// `APIError`s render as they are; Hummingbird's own `HTTPError`s (unknown route, body too
/// large, bad method) keep their status and get a code derived from it — except that a path
/// some route serves, asked with a method none does, is 405 `method_not_allowed` with `Allow`
/// (Hummingbird answers 404 there); a database that cannot be reached is 503
/// `database_unavailable` with `Retry-After` (`APIError.databaseUnavailable(for:)`); everything
/// else is logged with the request id and answered with a generic 500 that reveals nothing.
public struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The router's routes (recorded when the application is made), for 405's `Allow`.
    let routes: RouteTable?

    public init(routes: RouteTable? = nil) {
        self.routes = routes
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as HTTPError {
            if error.status == .notFound, let allowed = routes?.allowedMethods(forPath: request.uri.path),
               !allowed.isEmpty, !allowed.contains(request.method.rawValue) {
                return APIError.render(
                    status: .methodNotAllowed,
                    envelope: ErrorEnvelope(code: Self.code(for: .methodNotAllowed), message: Self.message(for: .methodNotAllowed)),
                    headers: [.allow: allowed.joined(separator: ", ")]
                )
            }
            return APIError.render(
                status: error.status,
                envelope: ErrorEnvelope(code: Self.code(for: error.status), message: Self.message(for: error.status)),
                headers: error.headers
            )
        } catch {
            if let unavailable = APIError.databaseUnavailable(for: error) {
                context.logger.warning("database unavailable", metadata: Self.metadata(error, request, context))
                return try unavailable.response(from: request, context: context)
            }
            context.logger.error("unhandled error", metadata: Self.metadata(error, request, context))
            return APIError.render(
                status: .internalServerError,
                envelope: ErrorEnvelope(code: "internal_error", message: "An internal error occurred. It has been logged.")
            )
        }
    }

    /// What the log says about an error the client sees only as a generic answer.
    private static func metadata(_ error: any Error, _ request: Request, _ context: Context) -> Logger.Metadata {
        [
            "error.type": "\(type(of: error))",
            "error": "\(error)",
            "http.route": "\(context.endpointPath ?? request.uri.path)",
        ]
    }

    static func code(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "bad_request"
        case 401: "unauthorized"
        case 403: "forbidden"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 408: "request_timeout"
        case 409: "conflict"
        case 413: "payload_too_large"
        case 415: "unsupported_media_type"
        case 422: "validation_failed"
        case 429: "rate_limited"
        case 503: "service_unavailable"
        default: status.code >= 500 ? "internal_error" : "request_error"
        }
    }

    static func message(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 404: "No route matches this method and path."
        case 405: "This method is not allowed on this path."
        case 413: "The request body is too large."
        default: status.reasonPhrase.isEmpty ? "The request failed." : status.reasonPhrase + "."
        }
    }
}

/// The Content-Type of every JSON answer.
let jsonContentType = "application/json; charset=utf-8"

extension Request {
    /// Decodes a JSON body, answering 400 `invalid_json` for malformed JSON and 422
    /// `validation_failed` (with the field's path) for JSON of the wrong shape.
    public func decodeJSON<Value: Decodable>(as type: Value.Type, context: some RequestContext) async throws -> Value {
        try ServiceKit.decodeJSON(Value.self, from: try await collectBody(context: context))
    }

    /// The whole body, or 413 `payload_too_large` when it exceeds the context's upload limit.
    public func collectBody(context: some RequestContext) async throws -> ByteBuffer {
        do {
            return try await body.collect(upTo: context.maxUploadSize)
        } catch {
            throw APIError(.contentTooLarge, code: "payload_too_large", message: "The request body is too large.")
        }
    }
}

/// Decodes a JSON body already collected (as `IdempotencyStore` hands it to its operation),
/// with the same answers as `Request.decodeJSON`: 400 `invalid_json` for malformed JSON and
/// 422 `validation_failed` (with the field's path) for JSON of the wrong shape, or for a string
/// or key holding a NUL character (`\u0000`), which PostgreSQL's text and jsonb cannot store.
public func decodeJSON<Value: Decodable>(_ type: Value.Type, from buffer: ByteBuffer) throws -> Value {
    let data = Data(buffer: buffer)
    let value: Value
    do {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        value = try decoder.decode(Value.self, from: data)
    } catch let error as DecodingError {
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            throw APIError(.badRequest, code: "invalid_json", message: "The request body is not valid JSON.")
        case .keyNotFound(let key, let context):
            let path = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            throw APIError.validation(field: path, "The field \(path) is required.")
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw APIError.validation(field: path, "The field \(path) has the wrong type or format.")
        @unknown default:
            throw APIError(.badRequest, code: "invalid_json", message: "The request body could not be read.")
        }
    } catch {
        throw APIError(.badRequest, code: "invalid_json", message: "The request body is not valid JSON.")
    }
    if let path = JSONNulScan.firstPath(in: data) {
        let field = path.isEmpty ? "body" : path
        throw APIError.validation(field: field, "The field \(field) must not contain NUL characters (\\u0000).")
    }
    return value
}

/// Finds strings and keys holding U+0000 in a JSON document.
enum JSONNulScan {
    /// The dotted path of the first string with a NUL character, or of the object holding a key
    /// with one; nil when there is none. Only documents whose bytes spell `\u0000` are parsed.
    static func firstPath(in data: Data) -> String? {
        guard mayHoldNul(data), let object = try? JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed) else {
            return nil
        }
        return search(object, path: [])
    }

    /// `\u0000` appears in the bytes (an escaped backslash before `u0000` is a false positive,
    /// which the parse that follows rules out).
    static func mayHoldNul(_ data: Data) -> Bool {
        let pattern = Array(#"\u0000"#.utf8)
        let bytes = [UInt8](data)
        guard bytes.count >= pattern.count else { return false }
        for start in 0...(bytes.count - pattern.count) where bytes[start] == pattern[0] {
            if bytes[start..<(start + pattern.count)].elementsEqual(pattern) { return true }
        }
        return false
    }

    private static func search(_ node: Any, path: [String]) -> String? {
        if let string = node as? String {
            return string.unicodeScalars.contains("\0") ? path.joined(separator: ".") : nil
        }
        if let object = node as? [String: Any] {
            for key in object.keys.sorted() {
                if key.unicodeScalars.contains("\0") { return path.joined(separator: ".") }
                if let found = search(object[key] as Any, path: path + [key]) { return found }
            }
        }
        if let array = node as? [Any] {
            for (index, element) in array.enumerated() {
                if let found = search(element, path: path + [String(index)]) { return found }
            }
        }
        return nil
    }
}

/// Encodes a value as a JSON response with the given status.
public func jsonResponse<Value: Encodable>(
    _ value: Value,
    status: HTTPResponse.Status = .ok,
    headers: HTTPFields = [:]
) throws -> Response {
    let data = try jsonEncoder().encode(value)
    var fields = headers
    fields[.contentType] = jsonContentType
    return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// How every JSON answer is encoded: RFC 3339 dates in UTC (`Z`), sorted keys (stable bytes),
/// slashes unescaped; UUIDs lower-case (Contracts' `KeyedEncodingContainer` overloads).
func jsonEncoder() -> JSONEncoder {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}
