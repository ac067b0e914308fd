import Foundation
import JWTKit

/// Public signing keys published by another service as JWKS documents, one per owner (a
/// tenant's slug, or the developers'), fetched on first use and cached for `ttl`, so tokens are
/// verified offline.
///
/// A token naming a key id the cached set lacks (a key rotated in since) refetches the set, at
/// most once per `refetchInterval` per owner (callers wait for the next slot, so a new key is
/// accepted within that interval of its first token, and made-up key ids cannot turn requests
/// into calls to the publisher). One fetch per owner at a time: concurrent callers share it.
///
/// `fetch` returns the document, or nil when the publisher knows no such owner (nothing
/// verifies); whatever it throws reaches the caller, which decides how an outage answers.
/// Unknown owners are remembered apart, in a cache a tenth the size, so tokens naming made-up
/// owners churn only that one and never evict real owners' keys.
public final class RemoteJWKS<Owner: Hashable & Sendable>: Sendable {
    /// An owner's public keys and their ids.
    struct KeySet: Sendable {
        var collection: JWTKeyCollection
        var kids: Set<String>
    }

    /// The document could not be read as a JWKS.
    public struct Unreadable: Error, CustomStringConvertible {
        public var description: String
    }

    private let fetch: @Sendable (Owner) async throws -> [UInt8]?
    private let cache: ExpiringCache<Owner, KeySet>
    private let unknownOwners: ExpiringCache<Owner, KeySet>
    private let refetchInterval: Duration
    private let inflight = SingleFlight<Owner, (KeySet, ContinuousClock.Instant)>()

    public init(ttl: Duration, capacity: Int = 1_000, refetchInterval: Duration = .seconds(1),
                fetch: @escaping @Sendable (Owner) async throws -> [UInt8]?) {
        self.fetch = fetch
        self.refetchInterval = refetchInterval
        cache = ExpiringCache(ttl: ttl, capacity: capacity)
        unknownOwners = ExpiringCache(ttl: ttl, capacity: max(1, capacity / 10))
    }

    /// The token's claims when one of `owner`'s keys verifies it (signature and the claims'
    /// own `verify`); nil when none does. Throws only what `fetch` throws, or `Unreadable`.
    public func verify<Claims: JWTPayload>(_ token: String, of owner: Owner, as type: Claims.Type = Claims.self) async throws -> Claims? {
        guard let kid = JWTKeyID.of(token) else { return nil }
        var (keys, fetchedAt) = try await keySet(owner)
        if !keys.kids.contains(kid) {
            (keys, fetchedAt) = try await refreshedKeySet(owner, after: fetchedAt)
            guard keys.kids.contains(kid) else { return nil }
        }
        return try? await keys.collection.verify(token, as: Claims.self)
    }

    private func keySet(_ owner: Owner) async throws -> (KeySet, ContinuousClock.Instant) {
        if let cached = cached(owner) { return cached }
        return try await sharedFetch(owner)
    }

    private func cached(_ owner: Owner) -> (value: KeySet, storedAt: ContinuousClock.Instant)? {
        cache.get(owner) ?? unknownOwners.get(owner)
    }

    /// The owner's keys fetched after `seen`, waiting for the next refetch slot.
    private func refreshedKeySet(_ owner: Owner, after seen: ContinuousClock.Instant) async throws -> (KeySet, ContinuousClock.Instant) {
        try await inflight.run(owner, after: seen, interval: refetchInterval, fresh: {
            cached(owner).flatMap { $0.storedAt > seen ? ($0.value, $0.storedAt) : nil }
        }) { [self] in try await fetchUncached(owner) }
    }

    private func sharedFetch(_ owner: Owner) async throws -> (KeySet, ContinuousClock.Instant) {
        try await inflight.run(owner) { [self] in try await fetchUncached(owner) }
    }

    private func fetchUncached(_ owner: Owner) async throws -> (KeySet, ContinuousClock.Instant) {
        var keys = KeySet(collection: JWTKeyCollection(), kids: [])
        let document = try await fetch(owner)
        if let document {
            do {
                let jwks = try JSONDecoder().decode(JWKS.self, from: Data(document))
                try await keys.collection.add(jwks: jwks)
                keys.kids = Set(jwks.keys.compactMap { $0.keyIdentifier?.string })
            } catch {
                throw Unreadable(description: "the JWKS could not be read: \(error)")
            }
        }
        let now = ContinuousClock.now
        if document == nil {
            cache.remove(owner)
            unknownOwners.set(owner, keys, now: now)
        } else {
            unknownOwners.remove(owner)
            cache.set(owner, keys, now: now)
        }
        return (keys, now)
    }
}
