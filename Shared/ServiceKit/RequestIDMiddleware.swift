import Contracts
import Foundation
import HTTPClient
import HTTPTypes
import Hummingbird
import Logging

/// Gives every request an id and carries it everywhere:
/// - taken from an incoming `X-Request-Id` (when it is a sane token), or made fresh;
/// - put on the request's logger as `request.id`, so every log line of the request carries it;
/// - bound to `CorrelationContext.requestID`, so every outgoing service call sends it;
/// - echoed in the response's `X-Request-Id`.
/// It also writes one access-log line per request (operational probes at debug level).
public struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    static var headerName: HTTPField.Name { HTTPField.Name(PlatformHeader.requestID)! }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = Self.acceptable(request.headers[Self.headerName]) ?? UUID().uuidString.lowercased()
        var context = context
        context.logger[metadataKey: "request.id"] = .string(id)
        let started = ContinuousClock.now
        var response = try await CorrelationContext.$requestID.withValue(id) {
            try await next(request, context)
        }
        response.headers[Self.headerName] = id
        let elapsed = ContinuousClock.now - started
        let path = request.uri.path
        let level: Logger.Level = ["/health", "/ready", "/metrics"].contains(path) ? .debug : .info
        context.logger.log(level: level, "request", metadata: [
            "http.method": "\(request.method)",
            "http.route": "\(context.endpointPath ?? "unmatched")",
            "http.status": "\(response.status.code)",
            "duration_ms": "\(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)",
        ])
        return response
    }

    /// Accepts ids of 1…128 characters from `[A-Za-z0-9._:-]`; anything else is replaced, so
    /// a client cannot inject log lines or oversized headers through it.
    static func acceptable(_ value: String?) -> String? {
        guard let value, (1...128).contains(value.utf8.count) else { return nil }
        let allowed = value.utf8.allSatisfy { byte in
            (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
                || byte == 45 || byte == 46 || byte == 58 || byte == 95
        }
        return allowed ? value : nil
    }
}
