import Resilience

/// Settings of one ``CurlHTTPClient``. Every value has a production-sensible default.
public struct HTTPClientConfiguration: Sendable, Hashable {
    /// Longest time to establish a TCP connection (`CURLOPT_CONNECTTIMEOUT_MS`).
    public var connectTimeout: Duration
    /// Longest time for one attempt, from hand-off to the engine to the last response byte,
    /// connecting included (`CURLOPT_TIMEOUT_MS`). A request can override it
    /// (``HTTPClientRequest/timeout``). Retries each get a fresh budget.
    public var requestTimeout: Duration
    /// When and how failed attempts are repeated.
    public var retry: RetryPolicy
    /// Sent as `User-Agent` unless a request sets its own.
    public var userAgent: String
    /// Upper bound on concurrent connections to one host (`CURLMOPT_MAX_HOST_CONNECTIONS`).
    /// Transfers beyond it wait inside libcurl for a connection to free up (their wait counts
    /// against their ``requestTimeout``). Must be at least 1.
    public var maxConnectionsPerHost: Int
    /// Responses whose body grows past this many bytes fail with
    /// ``HTTPClientError/responseTooLarge(limit:)`` instead of exhausting memory.
    public var maxResponseBodySize: Int

    public init(
        connectTimeout: Duration = .seconds(2),
        requestTimeout: Duration = .seconds(10),
        retry: RetryPolicy = .default,
        userAgent: String = "swift-tenant-platform-http-client",
        maxConnectionsPerHost: Int = 32,
        maxResponseBodySize: Int = 16 * 1024 * 1024
    ) {
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.retry = retry
        self.userAgent = userAgent
        self.maxConnectionsPerHost = maxConnectionsPerHost
        self.maxResponseBodySize = maxResponseBodySize
    }
}

/// Bounded retries, spaced by the platform's one backoff rule (``Backoff``: capped exponential,
/// full jitter). A `Retry-After: <seconds>` response header replaces the computed delay, capped
/// at the backoff's cap.
///
/// Which failures are retried, and for which requests, is decided by the client; see
/// ``CurlHTTPClient`` and ``HTTPClientError/isTransient``.
public struct RetryPolicy: Sendable, Hashable {
    /// Total number of attempts, the first one included. `1` disables retries.
    public var maxAttempts: Int
    /// The delay before each retry. Its cap also bounds any single delay, `Retry-After` included.
    public var backoff: Backoff

    /// `baseDelay` is the ceiling of the first retry's delay, `maxDelay` the ceiling of every delay.
    public init(
        maxAttempts: Int = 4,
        baseDelay: Duration = .milliseconds(100),
        maxDelay: Duration = .seconds(2)
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.backoff = Backoff(base: baseDelay, cap: maxDelay)
    }

    /// Four attempts, 100 ms base delay, 2 s cap.
    public static let `default` = RetryPolicy()

    /// A single attempt: nothing is retried.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// The delay a `Retry-After: <seconds>` value asks for, capped like every other delay.
    func delay(honouringRetryAfterSeconds seconds: Int) -> Duration {
        min(self.backoff.cap, .seconds(max(0, seconds)))
    }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped to `0 ... Int64.max`.
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = self.components
        guard seconds >= 0 else { return 0 }
        let (fromSeconds, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        let (total, overflow2) = fromSeconds.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? .max : total
    }

    /// The duration in whole milliseconds for libcurl's `*_MS` options: at least 1 (0 means
    /// "no timeout" to libcurl), rounded up so that sub-millisecond values do not vanish.
    var curlMilliseconds: Int {
        let nanoseconds = self.nanosecondsClamped
        let milliseconds = nanoseconds / 1_000_000 + (nanoseconds % 1_000_000 == 0 ? 0 : 1)
        return Int(max(1, min(milliseconds, Int64(Int.max))))
    }
}
