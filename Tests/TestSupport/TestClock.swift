import Foundation
import Synchronization

/// A clock for code under test: the system's time plus an offset that only the test moves
/// (`advance`), so a test reaches an expiry by stepping past it instead of sleeping. Left alone
/// it reads like the system clock. It answers as a wall clock (`now()`, for token and invite
/// expiry) and as a monotonic one (`instant()`, for caches that age by `ContinuousClock`).
/// A frozen clock does not move with the system's at all: a test that checks a bound to the
/// instant (cached just inside a TTL, gone at it) needs time to pass only when it says so.
public final class TestClock: Sendable {
    private let offset = Mutex<Duration>(.zero)
    /// The readings the clock stays at, plus `offset`, when frozen.
    private let frozen: (date: Date, instant: ContinuousClock.Instant)?

    public init(frozen: Bool = false) {
        self.frozen = frozen ? (Date(), ContinuousClock.now) : nil
    }

    public func now() -> Date {
        let offset = offset.withLock { $0 }
        return (frozen?.date ?? Date()).addingTimeInterval(Double(offset.components.seconds) + Double(offset.components.attoseconds) / 1e18)
    }

    public func instant() -> ContinuousClock.Instant {
        (frozen?.instant ?? ContinuousClock.now) + offset.withLock { $0 }
    }

    /// Moves the clock forward by `duration`.
    public func advance(by duration: Duration) {
        offset.withLock { $0 += duration }
    }
}
