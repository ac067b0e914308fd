import Synchronization

/// A small thread-safe map whose entries expire `ttl` after they were stored. When full, it
/// first drops expired entries, then (if still full) everything: an attacker cycling through
/// made-up keys can cost a few extra lookups, never unbounded memory.
public final class ExpiringCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entry: Sendable {
        var value: Value
        var storedAt: ContinuousClock.Instant
    }

    private let entries = Mutex<[Key: Entry]>([:])
    let ttl: Duration
    let capacity: Int

    public init(ttl: Duration, capacity: Int = 10_000) {
        self.ttl = ttl
        self.capacity = capacity
    }

    /// The value and when it was stored, while younger than `ttl`.
    public func get(_ key: Key, now: ContinuousClock.Instant = .now) -> (value: Value, storedAt: ContinuousClock.Instant)? {
        entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            guard now - entry.storedAt < ttl else {
                entries[key] = nil
                return nil
            }
            return (entry.value, entry.storedAt)
        }
    }

    /// Forgets the entries whose value matches (a tenant removed meanwhile).
    public func removeValues(where matches: (Value) -> Bool) {
        entries.withLock { entries in entries = entries.filter { !matches($0.value.value) } }
    }

    public func set(_ key: Key, _ value: Value, now: ContinuousClock.Instant = .now) {
        guard ttl > .zero else { return }
        entries.withLock { entries in
            if entries.count >= capacity, entries[key] == nil {
                entries = entries.filter { now - $0.value.storedAt < ttl }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[key] = Entry(value: value, storedAt: now)
        }
    }
}
