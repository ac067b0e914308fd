import Synchronization

/// One run of a piece of work per key at a time: callers that ask while it runs share its
/// result (or its error) instead of starting their own. Used where a cache miss would otherwise
/// turn a burst of requests into a burst of identical loads (signing keys, JWKS documents).
public final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let running = Mutex<[Key: Task<Value, any Error>]>([:])

    public init() {}

    public func run(_ key: Key, _ work: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task = running.withLock { running in
            if let task = running[key] { return task }
            let task = Task { [self] in
                defer { _ = self.running.withLock { $0.removeValue(forKey: key) } }
                return try await work()
            }
            running[key] = task
            return task
        }
        return try await task.value
    }

    /// A value newer than `seen`, loaded at most once per `interval` after it: `fresh` gives
    /// one stored since `seen`, if there is; otherwise the rest of the interval is waited out,
    /// `fresh` asked again, and only then `work` run (shared under `key`). For a lookup that
    /// missed (an unknown `kid`): a burst of made-up ones costs one load per interval.
    public func run(_ key: Key, after seen: ContinuousClock.Instant, interval: Duration, fresh: () -> Value?,
                    _ work: @escaping @Sendable () async throws -> Value) async throws -> Value {
        if let value = fresh() { return value }
        let wait = interval - (ContinuousClock.now - seen)
        if wait > .zero { try await Task.sleep(for: wait) }
        if let value = fresh() { return value }
        return try await run(key, work)
    }
}
