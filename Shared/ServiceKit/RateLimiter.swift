import Foundation
import HTTPTypes
import Synchronization

/// A fixed-window rate limiter kept in memory, per key (a client address, an account).
///
/// Per process: with N replicas behind a load balancer a client gets up to N times the limit,
/// which is the trade most token endpoints make (GoTrue's limits are per instance too); what it
/// stops is a single client hammering one endpoint. Windows that ended are dropped as the map
/// is touched, so memory follows the number of active clients.
public final class RateLimiter: Sendable {
    public struct Decision: Sendable, Equatable {
        public var allowed: Bool
        public var limit: Int
        public var remaining: Int
        /// Seconds until the window resets.
        public var resetSeconds: Int
    }

    private struct Window {
        var start: ContinuousClock.Instant
        var count: Int
    }

    public let limit: Int
    public let window: Duration
    private let windows = Mutex<[String: Window]>([:])

    public init(limit: Int, per window: Duration) {
        self.limit = max(1, limit)
        self.window = window
    }

    /// Counts `cost` attempts (one by default; a batch counts each of its items) for `key` and
    /// says whether they may proceed, against `limit` when given (a limit per key, such as a
    /// tenant's own), else the limiter's.
    public func check(_ key: String, limit: Int? = nil, cost: Int = 1, now: ContinuousClock.Instant = .now) -> Decision {
        let limit = limit.map { max(1, $0) } ?? self.limit
        return windows.withLock { windows in
            if windows.count > 10_000 {
                windows = windows.filter { now - $0.value.start < window }
            }
            var current = windows[key] ?? Window(start: now, count: 0)
            if now - current.start >= window { current = Window(start: now, count: 0) }
            current.count += max(1, cost)
            windows[key] = current
            let reset = window - (now - current.start)
            let resetSeconds = max(1, Int(reset.components.seconds) + (reset.components.attoseconds > 0 ? 1 : 0))
            return Decision(allowed: current.count <= limit, limit: limit, remaining: max(0, limit - current.count), resetSeconds: resetSeconds)
        }
    }
}

extension RateLimiter.Decision {
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (and `Retry-After` when
    /// refused).
    public var headers: HTTPFields {
        var fields = HTTPFields()
        fields[HTTPField.Name("X-RateLimit-Limit")!] = String(limit)
        fields[HTTPField.Name("X-RateLimit-Remaining")!] = String(remaining)
        fields[HTTPField.Name("X-RateLimit-Reset")!] = String(resetSeconds)
        if !allowed { fields[.retryAfter] = String(resetSeconds) }
        return fields
    }

    /// Throws the 429 the platform answers when refused.
    public func enforce() throws {
        guard allowed else {
            throw APIError(.tooManyRequests, code: "rate_limited",
                           message: "Too many attempts; try again in \(resetSeconds) seconds.", headers: headers)
        }
    }
}
