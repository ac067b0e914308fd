import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// GoTrue's words for every error on `/auth/v1/` (`ProtocolErrorMiddleware` applies them): the
/// platform's own errors from shared code (a malformed body, the rate limits, an unreachable
/// database) get GoTrue's codes, Hummingbird's get GoTrue's generic ones (`not_found`, and
/// `method_not_allowed` for a routed path asked with another method), anything unexpected is
/// GoTrue's 500 `unexpected_failure`. Answers to clients that ask for an API version echo it,
/// errors or not.
struct GoTrueErrors: ProtocolErrorVocabulary {
    func own(_ error: any Error) -> GoTrueError? { error as? GoTrueError }

    func failure(_ failure: ProjectResolver.Failure) -> GoTrueError { GoTrueError(failure) }

    /// The platform's error with GoTrue's code for the same thing (its status kept, except that
    /// GoTrue's validation failures are 400).
    func failure(_ error: APIError) -> GoTrueError {
        switch error.code {
        case "invalid_json":
            GoTrueError(.badRequest, "bad_json", "Could not parse request body as JSON: \(error.message)")
        case "validation_failed":
            GoTrueError.validation(error.message)
        case "payload_too_large":
            GoTrueError(error.status, "request_too_large", error.message, headers: error.headers)
        case "rate_limited", "tenant_busy":
            // A project past its concurrency budget (TenantConcurrency) is a rate limit to a client.
            GoTrueError(error.status, "over_request_rate_limit", "Request rate limit reached", headers: error.headers)
        default:
            GoTrueError(error.status, error.code, error.message, headers: error.headers)
        }
    }

    func failure(_ error: HTTPError) -> GoTrueError {
        switch error.status {
        case .notFound: GoTrueError(.notFound, "not_found", "Not Found", headers: error.headers)
        case .methodNotAllowed: GoTrueError(.methodNotAllowed, "method_not_allowed", "This method is not allowed on this path.", headers: error.headers)
        default: GoTrueError(error.status, "unknown", error.status.reasonPhrase.isEmpty ? "Request failed" : error.status.reasonPhrase, headers: error.headers)
        }
    }

    var unexpected: GoTrueError {
        GoTrueError(.internalServerError, "unexpected_failure", "Unexpected failure, please check server logs for more information")
    }

    func decorate(_ response: inout Response, for request: Request) {
        if let version = GoTrueError.apiVersion(of: request) {
            response.headers[GoTrueError.apiVersionField] = version
        }
    }
}
