import Contracts
import HTTPTypes
import Hummingbird
import ServiceKit
import TenantKit

/// An error on `/realtime/v1/`, in Supabase Realtime's shape (docs/protocols/realtime-reference.md
/// §1.2, §4.3): `{"message": "Unauthorized"}` on its HTTP API, `{"error": "…"}` on the websocket's
/// path (a refused upgrade). supabase-py raises `RealtimeHTTPError(body.error or body.message,
/// status)`.
struct RealtimeError: Error, HTTPResponseError, Sendable {
    var status: HTTPResponse.Status
    var message: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        let key = request.uri.path == RealtimeSocketController.path ? "error" : "message"
        return try jsonResponse(JSONValue.object([key: .string(message)]), status: status, headers: fields)
    }

    static let unauthorized = RealtimeError(.unauthorized, "Unauthorized")
    static let tenantNotFound = RealtimeError(.notFound, "Tenant not found")
}

/// Realtime's words for every error on `/realtime/v1/` (`ProtocolErrorMiddleware`).
struct RealtimeErrors: ProtocolErrorVocabulary {
    func own(_ error: any Error) -> RealtimeError? { error as? RealtimeError }

    func failure(_ failure: ProjectResolver.Failure) -> RealtimeError {
        switch failure {
        case .noAPIKey: RealtimeError(.unauthorized, "API key is missing")
        case .invalidAPIKey: RealtimeError(.unauthorized, "Invalid API key")
        case .hostMismatch: RealtimeError(.forbidden, "The API key belongs to another project than the host names")
        }
    }

    func failure(_ error: APIError) -> RealtimeError {
        switch error.code {
        case "rate_limited": RealtimeError(.tooManyRequests, "Too many requests", headers: error.headers)
        case "invalid_json", "validation_failed": RealtimeError(.unprocessableContent, error.message)
        default: RealtimeError(error.status, error.status.code >= 500 ? "Internal Server Error" : error.message, headers: error.headers)
        }
    }

    func failure(_ error: HTTPError) -> RealtimeError {
        RealtimeError(error.status, error.status == .notFound ? "Not Found" : error.status.reasonPhrase, headers: error.headers)
    }

    var unexpected: RealtimeError { RealtimeError(.internalServerError, "Internal Server Error") }
}
