/// How long to wait before retrying something that failed: capped exponential backoff with
/// full jitter, the one retry-delay rule of the platform (HTTP client retries, saga steps,
/// migrations at start-up, the LISTEN connection's reconnects).
///
/// Retry `n` (1-based) waits a uniformly random duration in `0 ... ceiling(beforeRetry: n)`,
/// where the ceiling is `min(cap, base * 2^(n-1))`. The ceiling grows so that a longer outage
/// costs fewer attempts; the cap keeps recovery prompt once the outage ends; and "full jitter"
/// (the whole range, not a few percent around the ceiling) spreads the retries of many callers
/// that failed at the same moment instead of letting them hit a recovering service in lockstep.
///
/// A value type with an injectable random number generator, so that tests can draw delays from
/// a seeded generator and assert bounds instead of measuring time.
public struct Backoff: Sendable, Hashable {
    /// Ceiling of the first retry's delay.
    public var base: Duration
    /// Ceiling of every delay.
    public var cap: Duration

    /// Negative durations count as zero.
    public init(base: Duration, cap: Duration) {
        self.base = max(.zero, base)
        self.cap = max(.zero, cap)
    }

    /// The longest delay before retry number `retry` (1-based; smaller values count as 1):
    /// `min(cap, base * 2^(retry-1))`, without overflowing for any `retry`.
    public func ceiling(beforeRetry retry: Int) -> Duration {
        var ceiling = min(base, cap)
        var doublings = retry - 1
        // At most log2(cap / base) + 1 rounds: the loop stops once the cap is reached.
        while doublings > 0, ceiling > .zero, ceiling < cap {
            ceiling = ceiling > cap / 2 ? cap : ceiling * 2
            doublings -= 1
        }
        return ceiling
    }

    /// The delay before retry number `retry` (1-based): uniform in
    /// `0 ... ceiling(beforeRetry: retry)`, drawn from `generator`.
    public func delay<Generator: RandomNumberGenerator>(
        beforeRetry retry: Int,
        using generator: inout Generator
    ) -> Duration {
        let ceiling = ceiling(beforeRetry: retry)
        guard ceiling > .zero else { return .zero }
        // `min`: floating-point rounding must never step past the ceiling.
        return min(ceiling, ceiling * Double.random(in: 0...1, using: &generator))
    }

    /// The delay before retry number `retry` (1-based), drawn from the system's generator.
    public func delay(beforeRetry retry: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(beforeRetry: retry, using: &generator)
    }
}
