import Contracts
import Foundation
import HTTPClient
import ServiceClients
import ServiceKit
import TenantKit
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Hostile input costs bounded memory and bounded work: the limiters and caches hold a fixed
/// number of fixed-size entries, evicting the least recently used, and made-up credentials
/// cannot turn requests into loads.
@Suite("Bounded memory under hostile input", .serialized)
struct BoundedMemoryTests {
    @Test("an LRU cache evicts its least recently used entry, and reads count as use")
    func lruOrder() {
        var cache = LRUCache<Int, String>(capacity: 3)
        cache.set(1, "one")
        cache.set(2, "two")
        cache.set(3, "three")
        #expect(cache.get(1) == "one")  // 2 is now the least recently used
        cache.set(4, "four")
        #expect(cache.peek(2) == nil)
        #expect(cache.count == 3)
        cache.set(3, "THREE")  // an update is a use: 1 is now the coldest
        cache.set(5, "five")
        #expect(cache.peek(1) == nil)
        #expect([3, 4, 5].map { cache.peek($0) } == ["THREE", "four", "five"])
        #expect(cache.remove(4) == "four")
        cache.set(6, "six")
        cache.set(7, "seven")  // the freed slot was reused; 3 goes
        #expect(cache.count == 3)
        #expect([3, 5, 6, 7].map { cache.peek($0) } == [nil, "five", "six", "seven"])
        cache.removeAll { key, _ in key > 5 }
        #expect(cache.count == 1)
    }

    @Test("an expiring cache full of made-up keys keeps the entries still in use")
    func expiringCacheKeepsHotEntries() {
        let cache = ExpiringCache<String, Int>(ttl: .seconds(60), capacity: 100)
        cache.set("hot", 1)
        for index in 0..<10_000 {
            cache.set("made-up-\(index)", index)
            if index % 50 == 0 { #expect(cache.get("hot")?.value == 1) }
        }
        #expect(cache.count == 100)
        #expect(cache.get("hot")?.value == 1)
    }

    @Test("a rate limiter holds a bounded number of fixed-size windows, whatever the keys")
    func rateLimiterBounded() {
        let limiter = RateLimiter(limit: 2, per: .seconds(60), capacity: 1_000)
        let huge = String(repeating: "x", count: 64 * 1024)
        for index in 0..<5_000 { _ = limiter.check(huge + String(index)) }
        #expect(limiter.trackedKeys == 1_000)
        // A key in use keeps its count (its window was just touched, so it is not the coldest).
        #expect(limiter.check("victim@example.com").allowed)
        #expect(limiter.check("victim@example.com").allowed)
        #expect(!limiter.check("victim@example.com").allowed)
    }

    @Test("random API keys churn only the cache of misses: a real key stays cached")
    func apiKeyMissesDoNotEvictHits() async throws {
        try await withTestPlatform { platform, _ in
            let tenant = try await platform.provisionTenant("lru")
            // The shipped sizes (10,000 and 1,000) at a hundredth, so the flood stays small.
            let credentials = RemoteTenantCredentials(
                auth: TenantCredentialsClient(http: platform.client, authURL: platform.url("auth"), serviceToken: TestServices.internalToken),
                apiKeyTTL: .seconds(3600), jwksTTL: .seconds(3600), logger: TestDatabase.logger, knownKeys: 100, unknownKeys: 10
            )
            let identity = try #require(try await credentials.apiKey(sha256: SecureToken.sha256Hex(tenant.keys.secret)))
            // More misses than the known-keys cache holds: before the caches were split and LRU,
            // one map held both and was flushed whole when full.
            let misses = 250
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for index in stride(from: worker, to: misses, by: 8) {
                            let unknown = try await credentials.apiKey(sha256: SecureToken.sha256Hex("sk_made_up_\(index)"))
                            #expect(unknown == nil)
                        }
                    }
                }
                try await group.waitForAll()
            }
            // Revoked at auth now: only a cached answer still knows the key.
            try await APIKeysClient(http: platform.client, authURL: platform.url("auth"), serviceToken: TestServices.internalToken)
                .revoke(keyIDs: [identity.keyId], tenantID: tenant.id)
            #expect(try await credentials.apiKey(sha256: SecureToken.sha256Hex(tenant.keys.secret)) == identity)
            let fresh = RemoteTenantCredentials(
                auth: TenantCredentialsClient(http: platform.client, authURL: platform.url("auth"), serviceToken: TestServices.internalToken),
                apiKeyTTL: .seconds(3600), jwksTTL: .seconds(3600), logger: TestDatabase.logger
            )
            #expect(try await fresh.apiKey(sha256: SecureToken.sha256Hex(tenant.keys.secret)) == nil)
        }
    }

    @Test("tokens naming made-up key ids share a signing-key load, at most one a second")
    func unknownKeyIDsDoNotReload() async throws {
        try await withTestPlatform { platform, _ in
            let auth = platform.url("auth")
            func loads() async throws -> Double {
                let text = try await platform.client.execute(HTTPClientRequest(url: auth + "/metrics")).body
                return try PrometheusText(parsing: String(decoding: text, as: UTF8.self)).value("auth_signing_key_loads_total") ?? 0
            }
            // One real sign-in first, so the developers' keys are loaded.
            _ = try await platform.registerDeveloper("kid")
            let before = try await loads()
            let started = ContinuousClock.now
            let requests = 200
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<requests {
                    group.addTask {
                        let header = Base64URL.encode(Array(#"{"alg":"ES256","typ":"JWT","kid":"\#(UUID().uuidString)"}"#.utf8))
                        let token = header + "." + Base64URL.encode(Array("{}".utf8)) + ".c2lnbmF0dXJl"
                        return try await platform.client.execute(HTTPClientRequest(
                            url: auth + "/v1/me", headers: HTTPClientHeaders([("Authorization", "Bearer " + token)]))).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            let seconds = Int((ContinuousClock.now - started).components.seconds) + 1
            #expect(statuses == Array(repeating: 401, count: requests))
            // Each load starts in its own one-second slot: the flood spanned `seconds` of them.
            // (Before the fix, every request loaded the keys: 200 loads.)
            let added = try await loads() - before
            #expect(added <= Double(seconds + 1), "\(added) loads in \(seconds) s")
        }
    }

    @Test("a flood of distinct emails of nearly 1 MiB (the body cap) leaves auth's memory bounded")
    func hugeEmailsDoNotGrowAuth() async throws {
        try await withScratchDatabase { url in
            let auth = try ServiceProcess("auth", environment: [
                "DATABASE_URL": url, "DB_POOL_MAX": "2",
                // The per-address limit would stop one client first; this is the many-address attack.
                "TOKEN_RATE_LIMIT_PER_IP": "100000",
            ])
            let client = try TestServices.client()
            do {
                try await auth.waitUntil()
                let before = try Self.residentMiB(auth.pid)
                let requests = 500
                // Just under the 1 MiB body cap, with the password and the JSON around it.
                let filler = String(repeating: "a", count: (1 << 20) - 8 * 1024)
                // A password over 1,024 bytes is refused before any hashing: each request costs
                // auth nothing but the limiter's entry.
                let password = String(repeating: "p", count: 2_000)
                let refused = try await withThrowingTaskGroup(of: Int.self) { group in
                    for worker in 0..<4 {
                        group.addTask {
                            var refused = 0
                            for index in stride(from: worker, to: requests, by: 4) {
                                let body = try JSONEncoder().encode(["email": "\(index)\(filler)@example.com", "password": password])
                                let response = try await client.execute(HTTPClientRequest(
                                    method: .post, url: auth.baseURL + "/v1/token?grant_type=password",
                                    headers: HTTPClientHeaders([("Content-Type", "application/json")]), body: Array(body)))
                                if response.status == 400 { refused += 1 }
                            }
                            return refused
                        }
                    }
                    return try await group.reduce(0, +)
                }
                #expect(refused == requests)
                let after = try Self.residentMiB(auth.pid)
                print("auth RSS before \(before) MiB, after \(requests) distinct 1 MiB emails \(after) MiB (bound: +160 MiB)")
                // Holding the emails would have cost at least 500 MiB.
                #expect(after - before < 160, "auth grew from \(before) to \(after) MiB")
            } catch {
                print(auth.logTail())
                throw error
            }
            await client.shutdown()
            _ = await auth.stop()
        }
    }

    /// `VmRSS` of a process, in MiB.
    static func residentMiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else {
            throw ServiceProcessError(description: "no VmRSS for \(pid)")
        }
        return kib / 1024
    }
}
