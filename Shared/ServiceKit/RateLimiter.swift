import Crypto
import Foundation
import HTTPTypes
import Synchronization

/// A fixed-window rate limiter kept in memory, per key (a client address, an account).
///
/// Per process: with N replicas behind a load balancer a client gets up to N times the limit,
/// which is the trade most token endpoints make (GoTrue's limits are per instance too); what it
/// stops is a single client hammering one endpoint.
///
/// Memory is bounded whatever the clients send: a key (an address, an email of up to the body
/// cap) is kept only as its 128-bit SHA-256 prefix, and at most `capacity` windows are held,
/// the least recently touched evicted first in O(1) (`LRUCache`). Evicting a live window resets
/// that key's count, so a flood of distinct keys could reset a quiet key's window early; the
/// per-address limit in front bounds how fast one client can flood.
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

    /// A key's fixed-size stand-in: the first 128 bits of its SHA-256.
    struct Digest: Hashable, Sendable {
        var high: UInt64
        var low: UInt64

        init(_ key: String) {
            let bytes = Array(SHA256.hash(data: Data(key.utf8)))
            high = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
            low = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
        }
    }

    public let limit: Int
    public let window: Duration
    private let windows: Mutex<LRUCache<Digest, Window>>

    /// `capacity`: how many keys' windows are held at most (about 100 bytes each).
    public init(limit: Int, per window: Duration, capacity: Int = 100_000) {
        self.limit = max(1, limit)
        self.window = window
        windows = Mutex(LRUCache(capacity: capacity))
    }

    /// How many keys' windows are held now.
    public var trackedKeys: Int { windows.withLock { $0.count } }

    /// Counts `cost` attempts (one by default; a batch counts each of its items) for `key` and
    /// says whether they may proceed, against `limit` when given (a limit per key, such as a
    /// tenant's own), else the limiter's.
    public func check(_ key: String, limit: Int? = nil, cost: Int = 1, now: ContinuousClock.Instant = .now) -> Decision {
        let limit = limit.map { max(1, $0) } ?? self.limit
        let digest = Digest(key)
        return windows.withLock { windows in
            var current = windows.get(digest) ?? Window(start: now, count: 0)
            if now - current.start >= window { current = Window(start: now, count: 0) }
            current.count += max(1, cost)
            windows.set(digest, current)
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
