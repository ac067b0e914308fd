import Synchronization

/// A small thread-safe map whose entries expire `ttl` after they were stored, holding at most
/// `capacity` of them: when full, the least recently used entry makes room (`LRUCache`), so a
/// client cycling through made-up keys evicts only the coldest entries, never everyone's, and
/// memory stays bounded. Callers that cache "not found" answers keep them in a separate, smaller
/// cache, so misses cannot push out hits.
public final class ExpiringCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entry: Sendable {
        var value: Value
        var storedAt: ContinuousClock.Instant
    }

    private let entries: Mutex<LRUCache<Key, Entry>>
    let ttl: Duration
    public let capacity: Int

    public init(ttl: Duration, capacity: Int = 10_000) {
        self.ttl = ttl
        self.capacity = max(1, capacity)
        entries = Mutex(LRUCache(capacity: capacity))
    }

    public var count: Int { entries.withLock { $0.count } }

    /// The value and when it was stored, while younger than `ttl`.
    public func get(_ key: Key, now: ContinuousClock.Instant = .now) -> (value: Value, storedAt: ContinuousClock.Instant)? {
        entries.withLock { entries in
            guard let entry = entries.get(key) else { return nil }
            guard now - entry.storedAt < ttl else {
                entries.remove(key)
                return nil
            }
            return (entry.value, entry.storedAt)
        }
    }

    /// Forgets the entries whose value matches (a tenant removed meanwhile).
    public func removeValues(where matches: (Value) -> Bool) {
        entries.withLock { entries in entries.removeAll { matches($1.value) } }
    }

    public func remove(_ key: Key) {
        _ = entries.withLock { $0.remove(key) }
    }

    public func set(_ key: Key, _ value: Value, now: ContinuousClock.Instant = .now) {
        guard ttl > .zero else { return }
        entries.withLock { $0.set(key, Entry(value: value, storedAt: now)) }
    }
}
