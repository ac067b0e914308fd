/// Every failure ``CurlHTTPClient`` reports, besides `CancellationError` when the calling task is
/// cancelled.
///
/// Descriptions are safe to log: URLs are reduced to `scheme://host:port/path` (no query, no
/// credentials), and nothing from request bodies, request headers or response bodies ever
/// appears. After retries, the error is the last attempt's.
///
/// The kit knows no server's error format: a status error carries the response body as
/// received, for the callers that know the format to decode.
public enum HTTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No connection could be established: refused, unreachable, or the host name did not resolve.
    /// `url` is the target reduced to `scheme://host:port/path`.
    case cannotConnect(url: String)
    /// The attempt did not complete within its timeout (connect or total).
    case timedOut
    /// The server answered with a status the call does not accept (non-2xx for the typed calls).
    /// `body` is the response body as received; it is not part of the description.
    case status(Int, body: [UInt8])
    /// A 2xx body could not be decoded as `type`. `reason` names the failing coding path only.
    case undecodableBody(type: String, reason: String)
    /// The request body could not be encoded as JSON.
    case unencodableBody(type: String, reason: String)
    /// The URL is not an absolute `http`/`https` URL. `reason` says why; the URL itself is not
    /// repeated (it may carry credentials).
    case invalidURL(reason: String)
    /// A header name is not an RFC 9110 token, or a value contains CR, LF or NUL (which would
    /// allow header injection), or the method is not a token. Values are never echoed.
    case invalidHeader(name: String)
    /// The response body exceeded ``HTTPClientConfiguration/maxResponseBodySize``.
    case responseTooLarge(limit: Int)
    /// Any other libcurl failure: `code` is the `CURLcode`, `message` libcurl's explanation.
    case transport(code: Int, message: String)
    /// The client was shut down before or while the request ran.
    case shutdown

    public var description: String {
        switch self {
        case .cannotConnect(let url):
            return "cannot connect to \(url)"
        case .timedOut:
            return "request timed out"
        case .status(let status, _):
            return "unexpected HTTP status \(status)"
        case .undecodableBody(let type, let reason):
            return "cannot decode response body as \(type): \(reason)"
        case .unencodableBody(let type, let reason):
            return "cannot encode request body of type \(type): \(reason)"
        case .invalidURL(let reason):
            return "invalid URL: \(reason)"
        case .invalidHeader(let name):
            return "invalid header field '\(name)'"
        case .responseTooLarge(let limit):
            return "response body larger than \(limit) bytes"
        case .transport(let code, let message):
            return "transport error (curl \(code)): \(message)"
        case .shutdown:
            return "HTTP client is shut down"
        }
    }
}
