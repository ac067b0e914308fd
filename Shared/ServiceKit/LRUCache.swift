/// A map of at most `capacity` entries that, when full, evicts its least recently used entry to
/// make room: every operation is O(1), so a client cycling through made-up keys costs a bounded
/// amount of memory and never a scan. Not thread-safe by itself; its owners keep it in a `Mutex`.
///
/// The recency list is threaded through an array of slots by index (no object per entry), and
/// freed slots are reused, so the storage never outgrows `capacity`.
public struct LRUCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Slot: Sendable {
        var key: Key
        var value: Value
        var newer: Int?
        var older: Int?
    }

    public let capacity: Int
    private var index: [Key: Int] = [:]
    private var slots: [Slot?] = []
    private var free: [Int] = []
    private var newest: Int?
    private var oldest: Int?

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    public var count: Int { index.count }

    /// The value for `key`, which becomes the most recently used.
    public mutating func get(_ key: Key) -> Value? {
        guard let slot = index[key] else { return nil }
        touch(slot)
        return slots[slot]?.value
    }

    /// The value for `key`, leaving the order alone.
    public func peek(_ key: Key) -> Value? {
        index[key].flatMap { slots[$0]?.value }
    }

    /// Stores `value` as the most recently used, evicting the least recently used entry when full.
    public mutating func set(_ key: Key, _ value: Value) {
        if let slot = index[key] {
            slots[slot]?.value = value
            touch(slot)
            return
        }
        if index.count >= capacity, let oldest { remove(at: oldest) }
        let entry = Slot(key: key, value: value, newer: nil, older: newest)
        let slot: Int
        if let reused = free.popLast() {
            slot = reused
            slots[slot] = entry
        } else {
            slot = slots.count
            slots.append(entry)
        }
        if let newest { slots[newest]?.newer = slot }
        newest = slot
        if oldest == nil { oldest = slot }
        index[key] = slot
    }

    @discardableResult
    public mutating func remove(_ key: Key) -> Value? {
        guard let slot = index[key] else { return nil }
        let value = slots[slot]?.value
        remove(at: slot)
        return value
    }

    /// Removes every entry `matches` (O(n): for rare, administrative forgetting).
    public mutating func removeAll(where matches: (Key, Value) -> Bool) {
        for (key, slot) in index {
            if let entry = slots[slot], matches(key, entry.value) { remove(at: slot) }
        }
    }

    private mutating func remove(at slot: Int) {
        guard let entry = slots[slot] else { return }
        unlink(slot, entry)
        index[entry.key] = nil
        slots[slot] = nil
        free.append(slot)
    }

    private mutating func touch(_ slot: Int) {
        guard slot != newest, let entry = slots[slot] else { return }
        unlink(slot, entry)
        slots[slot]?.newer = nil
        slots[slot]?.older = newest
        if let newest { slots[newest]?.newer = slot }
        newest = slot
        if oldest == nil { oldest = slot }
    }

    private mutating func unlink(_ slot: Int, _ entry: Slot) {
        if let newer = entry.newer { slots[newer]?.older = entry.older } else { newest = entry.older }
        if let older = entry.older { slots[older]?.newer = entry.newer } else { oldest = entry.newer }
    }
}
