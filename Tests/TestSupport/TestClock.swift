import Foundation
import Synchronization

/// A wall clock for a service under test: the system's time plus an offset that only the test
/// moves (`advance`), so a test reaches an expiry by stepping past it instead of sleeping.
/// Left alone it reads like the system clock.
public final class TestClock: Sendable {
    private let offset = Mutex<TimeInterval>(0)

    public init() {}

    public func now() -> Date {
        Date().addingTimeInterval(offset.withLock { $0 })
    }

    /// Moves the clock forward by `duration`.
    public func advance(by duration: Duration) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        offset.withLock { $0 += seconds }
    }
}
