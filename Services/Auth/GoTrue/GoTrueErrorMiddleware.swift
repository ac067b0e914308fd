import Foundation
import Hummingbird
import ServiceKit
import TenantKit

/// Keeps every answer on `/auth/v1/` in GoTrue's shape, whatever threw: the platform's own
/// errors from shared code (a malformed body, the rate limits, an unreachable database) are
/// reworded with GoTrue's codes, Hummingbird's get GoTrue's generic ones (an unknown path
/// there is 404 `not_found`; a routed path asked with a method no route serves, 405
/// `method_not_allowed` with `Allow`, as everywhere on the platform), and anything
/// unexpected is logged and answered as GoTrue's 500 `unexpected_failure`, revealing nothing.
/// Answers to clients that ask for an API version echo it, errors or not.
///
/// A router middleware (the router's not-found answer passes through it too), so it lets every
/// request outside `/auth/v1/` through untouched.
struct GoTrueErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    static var prefix: String { "/auth/v1" }

    /// The router's routes, for 405's `Allow`.
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path == Self.prefix || path.hasPrefix(Self.prefix + "/") else { return try await next(request, context) }
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = try Self.goTrueError(for: error, request, context, routes: routes).response(from: request, context: context)
        }
        if let version = GoTrueError.apiVersion(of: request) {
            response.headers[GoTrueError.apiVersionField] = version
        }
        return response
    }

    static func goTrueError(for error: any Error, _ request: Request, _ context: Context, routes: RouteTable) -> GoTrueError {
        switch error {
        case let error as GoTrueError:
            return error
        case let failure as ProjectResolver.Failure:
            return GoTrueError(failure)
        case let error as APIError:
            return translate(error)
        case let error as HTTPError:
            if error.status == .notFound {
                let allowed = routes.allowedMethods(forPath: request.uri.path)
                if !allowed.isEmpty, !allowed.contains(request.method.rawValue) {
                    return GoTrueError(.methodNotAllowed, "method_not_allowed", "This method is not allowed on this path.",
                                       headers: [.allow: allowed.joined(separator: ", ")])
                }
            }
            return GoTrueError(error.status, error.status == .notFound ? "not_found" : "unknown",
                               error.status.reasonPhrase.isEmpty ? "Request failed" : error.status.reasonPhrase, headers: error.headers)
        default:
            if let unavailable = APIError.databaseUnavailable(for: error) {
                context.logger.warning("database unavailable", metadata: ["error.type": "\(type(of: error))", "error": "\(error)"])
                return translate(unavailable)
            }
            context.logger.error("unhandled error", metadata: [
                "error.type": "\(type(of: error))", "error": "\(error)", "http.route": "\(context.endpointPath ?? request.uri.path)",
            ])
            return GoTrueError(.internalServerError, "unexpected_failure", "Unexpected failure, please check server logs for more information")
        }
    }

    /// The platform's error with GoTrue's code for the same thing (its status kept, except that
    /// GoTrue's validation failures are 400).
    static func translate(_ error: APIError) -> GoTrueError {
        switch error.code {
        case "invalid_json":
            GoTrueError(.badRequest, "bad_json", "Could not parse request body as JSON: \(error.message)")
        case "validation_failed":
            GoTrueError.validation(error.message)
        case "payload_too_large":
            GoTrueError(error.status, "request_too_large", error.message, headers: error.headers)
        case "rate_limited":
            GoTrueError(error.status, "over_request_rate_limit", "Request rate limit reached", headers: error.headers)
        default:
            GoTrueError(error.status, error.code, error.message, headers: error.headers)
        }
    }
}
