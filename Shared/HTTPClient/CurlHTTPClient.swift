import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An async HTTP/1.1 client for service-to-service JSON calls, built on libcurl's multi interface.
///
/// One instance serves any number of concurrent requests: all transfers run on a single engine
/// thread owned by the client, and connections are kept alive and reused across requests (at most
/// ``HTTPClientConfiguration/maxConnectionsPerHost`` per host). Create one per process, share it,
/// and call ``shutdown()`` when done.
///
/// ```swift
/// let client = try CurlHTTPClient(configuration: .init(), logger: logger)
/// let tenant = try await client.get("http://provisioning:8080/tenants/\(id)", as: Tenant.self)
/// let created = try await client.send(.post, "http://auth:8080/users", body: newUser, as: User.self)
/// ```
///
/// **Request ids.** Every request carries `X-Request-Id`: the caller's header if set, else
/// ``CorrelationContext/requestID`` if bound, else a fresh UUID. Retries reuse the same id.
///
/// **Retries** follow ``HTTPClientConfiguration/retry`` (capped exponential backoff, full jitter,
/// `Retry-After` honoured up to the cap) and happen only for transient failures
/// (``HTTPClientError/isTransient``: connection failures, timeouts, dropped connections, and
/// the statuses 408, 429, 500, 502, 503, 504), and only when repeating is safe:
/// - a connection that could not be established (``HTTPClientError/cannotConnect(url:)``) is
///   retried for every method, since the request never left the process;
/// - every other transient failure is retried only for idempotent requests
///   (``HTTPClientRequest/isIdempotent``: GET, HEAD, PUT, DELETE, OPTIONS, or any request with an
///   `Idempotency-Key` header or explicitly marked idempotent).
///
/// The error thrown after the last attempt is that attempt's error. Cancelling the calling task
/// aborts the transfer (or the backoff sleep) and throws `CancellationError` at once.
public final class CurlHTTPClient: Sendable {
    public let configuration: HTTPClientConfiguration
    private let engine: CurlEngine
    private let logger: Logger

    /// Starts the client's engine thread.
    ///
    /// - Throws: ``HTTPClientError/transport(code:message:)`` when libcurl cannot be initialised.
    public init(
        configuration: HTTPClientConfiguration = HTTPClientConfiguration(),
        logger: Logger = Logger(label: "http-client")
    ) throws {
        self.configuration = configuration
        self.logger = logger
        self.engine = try CurlEngine(maxConnectionsPerHost: configuration.maxConnectionsPerHost, logger: logger)
    }

    /// Stops the engine thread, failing queued and in-flight requests with
    /// ``HTTPClientError/shutdown``, and releases every connection. Later calls fail with
    /// ``HTTPClientError/shutdown``. Safe to call more than once.
    public func shutdown() async {
        await self.engine.shutdown()
    }

    // MARK: - Raw requests

    /// Sends `request`, retrying as described in the type's documentation, and returns the final
    /// response whatever its status (non-2xx statuses are not errors here).
    ///
    /// - Throws: ``HTTPClientError``, or `CancellationError`.
    public func execute(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        let prepared = try self.prepare(request)
        return try await self.execute(prepared, idempotent: request.isIdempotent)
    }

    // MARK: - JSON calls

    /// GETs `url` and decodes a 2xx JSON body as `Response`.
    ///
    /// - Throws: ``HTTPClientError/status(_:body:)`` for a non-2xx status (with the body as
    ///   received), ``HTTPClientError/undecodableBody(type:reason:)``,
    ///   any other ``HTTPClientError``, or `CancellationError`.
    public func get<Response: Decodable>(
        _ url: String,
        as type: Response.Type = Response.self,
        headers: HTTPClientHeaders = [:]
    ) async throws -> Response {
        try await self.send(.get, url, headers: headers).decode(type)
    }

    /// Sends `body` as JSON and decodes a 2xx JSON body as `Response`.
    ///
    /// A POST or PATCH is only retried when `headers` carry an `Idempotency-Key`.
    ///
    /// - Throws: like ``get(_:as:headers:)``, plus ``HTTPClientError/unencodableBody(type:reason:)``.
    public func send<Body: Encodable, Response: Decodable>(
        _ method: HTTPMethod,
        _ url: String,
        body: Body,
        as type: Response.Type = Response.self,
        headers: HTTPClientHeaders = [:]
    ) async throws -> Response {
        try await self.send(method, url, body: body, headers: headers).decode(type)
    }

    /// Sends `body` as JSON and returns the 2xx response itself, for callers that need the status
    /// (201 vs 200, 204) or headers; ``HTTPClientResponse/decode(_:)`` decodes its body.
    ///
    /// - Throws: ``HTTPClientError/status(_:body:)`` for a non-2xx status, and like
    ///   ``send(_:_:body:as:headers:)`` otherwise.
    public func send<Body: Encodable>(
        _ method: HTTPMethod,
        _ url: String,
        body: Body,
        headers: HTTPClientHeaders = [:]
    ) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(method: method, url: url, headers: headers, body: try JSONCoding.encode(body))
        Self.addDefault(&request.headers, "Content-Type", "application/json")
        return try await self.sendExpectingSuccess(request)
    }

    /// Sends a body-less request (e.g. DELETE) accepting JSON and returns the 2xx response.
    ///
    /// - Throws: ``HTTPClientError/status(_:body:)`` for a non-2xx status, any other
    ///   ``HTTPClientError``, or `CancellationError`.
    public func send(
        _ method: HTTPMethod,
        _ url: String,
        headers: HTTPClientHeaders = [:]
    ) async throws -> HTTPClientResponse {
        try await self.sendExpectingSuccess(HTTPClientRequest(method: method, url: url, headers: headers))
    }

    private func sendExpectingSuccess(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        var request = request
        Self.addDefault(&request.headers, "Accept", "application/json")
        let response = try await self.execute(request)
        guard response.isSuccess else {
            throw HTTPClientError.status(response.status, body: response.body)
        }
        return response
    }

    private static func addDefault(_ headers: inout HTTPClientHeaders, _ name: String, _ value: String) {
        if !headers.contains(name) {
            headers.add(name: name, value: value)
        }
    }

    // MARK: - Preparation

    /// Validates `request` and renders it for the engine thread.
    func prepare(_ request: HTTPClientRequest) throws(HTTPClientError) -> PreparedRequest {
        guard request.method.isValidToken else {
            throw .invalidHeader(name: ":method")
        }
        let url = try ValidatedURL(request.url)

        var lines: [String] = []
        lines.reserveCapacity(request.headers.count + 4)
        for (name, value) in request.headers {
            guard !name.isEmpty, name.utf8.allSatisfy(\.isHTTPTokenCharacter) else {
                throw .invalidHeader(name: "<not a token>")
            }
            guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) else {
                throw .invalidHeader(name: name)
            }
            // libcurl reads "Name:" as "remove this header" and "Name;" as "send it empty".
            lines.append(value.isEmpty ? "\(name);" : "\(name): \(value)")
        }
        if !request.headers.contains(CorrelationContext.header) {
            lines.append("\(CorrelationContext.header): \(CorrelationContext.requestID ?? Self.makeRequestID())")
        }
        if !request.headers.contains("User-Agent") {
            lines.append("User-Agent: \(self.configuration.userAgent)")
        }
        let sendsBody = request.body != nil || [.post, .put, .patch].contains(request.method)
        if sendsBody && !request.headers.contains("Content-Type") {
            lines.append("Content-Type:")  // suppress libcurl's application/x-www-form-urlencoded
        }
        if sendsBody && !request.headers.contains("Expect") {
            // Bodies are small and sent at once; `Expect: 100-continue` would only add a round trip
            // (or a 1 s stall with servers that do not answer it).
            lines.append("Expect:")
        }

        return PreparedRequest(
            method: request.method,
            url: url,
            headerLines: lines,
            body: request.body,
            connectTimeoutMilliseconds: self.configuration.connectTimeout.curlMilliseconds,
            timeoutMilliseconds: (request.timeout ?? self.configuration.requestTimeout).curlMilliseconds,
            maxResponseBodySize: self.configuration.maxResponseBodySize,
            connectTo: try request.pinnedAddress.map { address throws(HTTPClientError) in
                guard !address.isEmpty, address.allSatisfy({ $0 == ":" || $0 == "." || $0.isHexDigit }) else {
                    throw .invalidURL(reason: "the pinned address is not an IP address")
                }
                // An IPv6 address goes in brackets.
                return "\(url.host):\(url.port):" + (address.contains(":") ? "[\(address)]" : address) + ":\(url.port)"
            }
        )
    }

    private static func makeRequestID() -> String {
        UUID().uuidString.lowercased()
    }

    // MARK: - Retries

    private func execute(_ request: PreparedRequest, idempotent: Bool) async throws -> HTTPClientResponse {
        let policy = self.configuration.retry
        var generator = SystemRandomNumberGenerator()
        var attempt = 1
        while true {
            try Task.checkCancellation()
            let outcome: Result<HTTPClientResponse, HTTPClientError>
            do {
                outcome = .success(try await self.engine.execute(request))
            } catch let error as HTTPClientError {
                outcome = .failure(error)
            }

            guard attempt < policy.maxAttempts,
                let delay = Self.retryDelay(after: outcome, attempt: attempt, idempotent: idempotent, policy: policy, using: &generator)
            else {
                return try outcome.get()
            }
            self.logger.debug(
                "retrying HTTP request",
                metadata: [
                    "http.method": "\(request.method)",
                    "http.url": "\(request.url.redacted)",
                    "http.attempt": "\(attempt)",
                    "http.outcome": "\(Self.summary(of: outcome))",
                    "http.retry_delay_ms": "\(delay.nanosecondsClamped / 1_000_000)",
                ]
            )
            try await Task.sleep(for: delay)
            attempt += 1
        }
    }

    /// How long to wait before retrying after `outcome`, or nil when it must not be retried.
    static func retryDelay<Generator: RandomNumberGenerator>(
        after outcome: Result<HTTPClientResponse, HTTPClientError>,
        attempt: Int,
        idempotent: Bool,
        policy: RetryPolicy,
        using generator: inout Generator
    ) -> Duration? {
        switch outcome {
        case .success(let response):
            guard idempotent, HTTPClientError.isTransient(status: response.status) else { return nil }
            if let retryAfter = response.headers["Retry-After"].flatMap(Self.parseDeltaSeconds) {
                return policy.delay(honouringRetryAfterSeconds: retryAfter)
            }
        case .failure(let error):
            guard error.isTransient, idempotent || error.requestNeverSent else { return nil }
        }
        return policy.backoff.delay(beforeRetry: attempt, using: &generator)
    }

    /// `Retry-After` in its delay-seconds form (RFC 9110 §10.2.3). The HTTP-date form is not
    /// used between the platform's services and falls back to the computed backoff.
    static func parseDeltaSeconds(_ value: String) -> Int? {
        let digits = value.utf8.drop { $0 == UInt8(ascii: " ") }.prefix { $0 != UInt8(ascii: " ") }
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    private static func summary(of outcome: Result<HTTPClientResponse, HTTPClientError>) -> String {
        switch outcome {
        case .success(let response): "status \(response.status)"
        case .failure(let error): error.description
        }
    }
}
