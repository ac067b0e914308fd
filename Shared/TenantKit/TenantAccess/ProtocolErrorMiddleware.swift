import Foundation
import Hummingbird
import ServiceKit

/// How one client protocol words its errors (GoTrue's under `/auth/v1/`, the Storage API's under
/// `/storage/v1/`): its own error type, and that type for each of the platform's errors.
public protocol ProtocolErrorVocabulary: Sendable {
    associatedtype Failure: Error & HTTPResponseError

    /// The protocol's own error, when `error` already is one.
    func own(_ error: any Error) -> Failure?
    /// A request that names no project, or a wrong one (`ProjectResolver`).
    func failure(_ failure: ProjectResolver.Failure) -> Failure
    /// One of the platform's errors from shared code: a malformed body, a rate limit, a missing
    /// or foreign credential (`TenantAuthenticator`), an unreachable database.
    func failure(_ error: APIError) -> Failure
    /// Hummingbird's own (an unknown route, a body too large), and a routed path asked with a
    /// method no route serves (405, `Allow` in its headers).
    func failure(_ error: HTTPError) -> Failure
    /// Anything else: logged, never shown.
    var unexpected: Failure { get }
    /// Adds what every answer of the protocol carries (GoTrue's echoed API version).
    func decorate(_ response: inout Response, for request: Request)
}

extension ProtocolErrorVocabulary {
    public func decorate(_ response: inout Response, for request: Request) {}
}

/// Keeps every answer under a protocol's prefix in that protocol's shape, whatever threw: the
/// platform's errors are reworded by the vocabulary, and anything unexpected is logged with the
/// route and answered with the vocabulary's generic failure, revealing nothing.
///
/// Given the prefix and the router's routes, it belongs on the router, before the protocol's
/// routes are added: those routes pass through it, and so does the router's not-found answer, so
/// an unknown path under the prefix (404) and a routed path asked with a method no route serves
/// (405 with `Allow`, as the platform's `ErrorMiddleware` answers elsewhere) are the protocol's
/// errors too; requests outside the prefix pass untouched.
public struct ProtocolErrorMiddleware<Vocabulary: ProtocolErrorVocabulary, Context: RequestContext>: RouterMiddleware {
    let vocabulary: Vocabulary
    /// The protocol's path prefix (`/auth/v1`).
    let prefix: String
    /// The router's routes, for a 405's `Allow`.
    let routes: RouteTable

    /// Every answer under `prefix`, routed or not.
    public init(_ vocabulary: Vocabulary, prefix: String, routes: RouteTable) {
        self.vocabulary = vocabulary
        self.prefix = prefix
        self.routes = routes
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path == prefix || path.hasPrefix(prefix + "/") else { return try await next(request, context) }
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = try failure(for: error, request, context).response(from: request, context: context)
        }
        vocabulary.decorate(&response, for: request)
        return response
    }

    func failure(for error: any Error, _ request: Request, _ context: Context) -> Vocabulary.Failure {
        if let own = vocabulary.own(error) { return own }
        switch error {
        case let failure as ProjectResolver.Failure:
            return vocabulary.failure(failure)
        case let error as APIError:
            return vocabulary.failure(error)
        case let error as HTTPError:
            if error.status == .notFound, case let allowed = routes.allowedMethods(forPath: request.uri.path),
               !allowed.isEmpty, !allowed.contains(request.method.rawValue) {
                return vocabulary.failure(HTTPError(.methodNotAllowed, headers: [.allow: allowed.joined(separator: ", ")]))
            }
            return vocabulary.failure(error)
        default:
            if let unavailable = APIError.databaseUnavailable(for: error) {
                context.logger.warning("database unavailable", metadata: ["error.type": "\(type(of: error))", "error": "\(error)"])
                return vocabulary.failure(unavailable)
            }
            context.logger.error("unhandled error", metadata: [
                "error.type": "\(type(of: error))", "error": "\(error)", "http.route": "\(context.endpointPath ?? request.uri.path)",
            ])
            return vocabulary.unexpected
        }
    }
}
