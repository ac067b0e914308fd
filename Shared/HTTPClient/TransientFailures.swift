import CCurl

/// Which failed calls may succeed if the same request is sent again: the one rule for the
/// client's own retries (``CurlHTTPClient``) and for callers that retry on a larger scale (the
/// provisioning saga's steps), so that both agree on what is worth repeating.
///
/// Transient:
/// - no connection could be made (``cannotConnect(url:)``): the service is restarting or not
///   up yet;
/// - the attempt timed out (``timedOut``), or the connection dropped mid-exchange (libcurl's
///   empty reply, send and receive errors, as ``transport(code:message:)``): the path or the
///   service was momentarily overloaded, or a kept-alive connection was closed under the
///   request;
/// - the statuses in ``transientStatuses``: 408 (the server gave up waiting for the request),
///   429 (rate limited), 500 (an error the handler did not handle, which on this platform
///   includes a lost database connection, an exhausted pool and a deadlock), 502, 503 and 504
///   (overload, or the way to the service).
///
/// Everything else is permanent and repeating it only adds load: other 4xx (the request itself
/// is wrong), 501 and 505 and up (the server lacks the feature), and the client's own failures
/// (invalid URL or header, a body that cannot be encoded or decoded, a response too large, a
/// client shut down).
///
/// Transient says whether repeating may help, not whether it is safe: a request that may have
/// reached the server is only repeated when it is idempotent (``HTTPClientRequest/isIdempotent``).
/// Only a request that provably never left the process (``requestNeverSent``) is repeated
/// whatever its method.
extension HTTPClientError {
    /// Whether the same request may succeed when sent again (see the rule above).
    public var isTransient: Bool {
        switch self {
        case .cannotConnect, .timedOut:
            return true
        case .transport(let code, _):
            return Self.droppedConnectionCodes.contains(code)
        case .status(let status, _):
            return Self.isTransient(status: status)
        case .undecodableBody, .unencodableBody, .invalidURL, .invalidHeader, .responseTooLarge, .shutdown:
            return false
        }
    }

    /// Whether the request provably never reached the other side (no connection could be made),
    /// so that repeating it is safe whatever its method, and it cannot have acted.
    public var requestNeverSent: Bool {
        if case .cannotConnect = self { return true }
        return false
    }

    /// Whether a response with `status` reports a transient failure (see the rule above).
    public static func isTransient(status: Int) -> Bool {
        transientStatuses.contains(status)
    }

    /// 408, 429, 500, 502, 503, 504.
    public static let transientStatuses: Set<Int> = [408, 429, 500, 502, 503, 504]

    /// The connection dropped mid-exchange (e.g. the server closed a kept-alive connection while
    /// the request was on its way): the server may or may not have processed the request.
    static let droppedConnectionCodes: Set<Int> = [
        Int(CURLE_GOT_NOTHING.rawValue), Int(CURLE_SEND_ERROR.rawValue), Int(CURLE_RECV_ERROR.rawValue),
    ]
}
