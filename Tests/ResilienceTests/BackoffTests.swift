import Resilience
import Testing

/// The platform's one backoff rule (Shared/Resilience), tested here because the HTTP client is
/// its first user. Delays are drawn from a seeded generator and checked against their bounds;
/// nothing waits.
@Suite("Backoff")
struct BackoffTests {
    /// SplitMix64: a tiny deterministic generator, so every run draws the same delays.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64

        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("ceilings double from the base and stop at the cap, for any retry number")
    func ceilings() {
        let backoff = Backoff(base: .milliseconds(100), cap: .seconds(2))
        let ceilings = (1...8).map { backoff.ceiling(beforeRetry: $0) }
        #expect(ceilings == [100, 200, 400, 800, 1600, 2000, 2000, 2000].map { Duration.milliseconds($0) })
        #expect(backoff.ceiling(beforeRetry: 10_000) == .seconds(2))
        #expect(backoff.ceiling(beforeRetry: .max) == .seconds(2))
        #expect(backoff.ceiling(beforeRetry: 0) == .milliseconds(100))
        #expect(backoff.ceiling(beforeRetry: -3) == .milliseconds(100))
        // No overflow even when the cap is as large as a Duration of Int64 seconds gets.
        let huge = Backoff(base: .nanoseconds(1), cap: .seconds(Int64.max))
        #expect(huge.ceiling(beforeRetry: .max) == .seconds(Int64.max))
    }

    @Test("a base above the cap is capped; zero and negative durations give zero delays")
    func degenerate() {
        #expect(Backoff(base: .seconds(10), cap: .seconds(1)).ceiling(beforeRetry: 1) == .seconds(1))
        var generator = SeededGenerator(state: 1)
        let zero = Backoff(base: .zero, cap: .seconds(1))
        #expect((1...5).map { zero.delay(beforeRetry: $0, using: &generator) } == Array(repeating: .zero, count: 5))
        #expect(Backoff(base: .seconds(-1), cap: .seconds(-1)) == Backoff(base: .zero, cap: .zero))
    }

    @Test("full jitter: delays spread over the whole range from zero to the ceiling")
    func jitter() {
        let backoff = Backoff(base: .milliseconds(100), cap: .seconds(2))
        var generator = SeededGenerator(state: 42)
        for retry in 1...8 {
            let ceiling = backoff.ceiling(beforeRetry: retry)
            let samples = (0..<500).map { _ in backoff.delay(beforeRetry: retry, using: &generator) }
            #expect(samples.allSatisfy { $0 >= .zero && $0 <= ceiling })
            #expect(Set(samples).count > 450)
            // Both ends of the range are reached, not a band around the ceiling.
            #expect(samples.contains { $0 < ceiling / 10 })
            #expect(samples.contains { $0 > ceiling * 9 / 10 })
        }
    }

    @Test("the same seed draws the same delays")
    func reproducible() {
        let backoff = Backoff(base: .milliseconds(200), cap: .seconds(5))
        var first = SeededGenerator(state: 7)
        var second = SeededGenerator(state: 7)
        let a = (1...10).map { backoff.delay(beforeRetry: $0, using: &first) }
        let b = (1...10).map { backoff.delay(beforeRetry: $0, using: &second) }
        #expect(a == b)
    }
}
