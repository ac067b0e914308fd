// Auth throughput against the real `auth` executable, beside what bounds it, in the same run:
//
// - one argon2id operation at a time in this process: the medians of a hash, a verify against a
//   real hash (wrong password) and a dummy verify (`verifyDummy`, an unknown account),
//   interleaved; the service tests only count the verifications, these are their times;
// - the argon2id ceiling: verifications per second of this process's own `PasswordHasher`,
//   built as auth builds its own (OWASP parameters, one thread per core), driven by as many
//   concurrent verifications as there are concurrent logins; measured before and after the
//   logins, and the ratio is taken against their mean;
// - logins per second: `POST /v1/token?grant_type=password`, correct password, one developer
//   per worker, `concurrency` workers back to back;
// - refreshes per second with p50/p99: `POST /v1/token?grant_type=refresh_token`, each worker
//   following its own rotation chain (each answer's refresh token is the next request's);
// - unknown email vs wrong password: medians of sequential, interleaved attempts.
//
// Each timed phase starts `concurrency` workers that begin operations until `seconds` have
// passed; every operation started is counted, and rates divide by the time until the last one
// ended. deploy/scripts/bench-auth.sh builds and starts the services and runs this.
//
//   auth-bench <auth-url> <provisioning-url> <service-token> <seconds> <concurrency>
import Contracts
import Foundation
import HTTPClient
import NIOCore
import Passwords
import Synchronization

@main
struct AuthBench {
    static let password = "benchmark password 123"
    static let timingRounds = 25

    static func main() async {
        let arguments = CommandLine.arguments
        guard arguments.count == 6, let seconds = Int(arguments[4]), seconds > 0,
              let concurrency = Int(arguments[5]), concurrency > 0
        else {
            print("usage: auth-bench <auth-url> <provisioning-url> <service-token> <seconds> <concurrency>")
            exit(2)
        }
        do {
            try await run(auth: arguments[1], provisioning: arguments[2], token: arguments[3], seconds: seconds, concurrency: concurrency)
        } catch {
            print("benchmark failed: \(error)")
            exit(1)
        }
    }

    nonisolated static func run(auth: String, provisioning: String, token: String, seconds: Int, concurrency: Int) async throws {
        let client = try CurlHTTPClient(configuration: HTTPClientConfiguration(
            requestTimeout: .seconds(60), retry: .none, maxConnectionsPerHost: max(32, concurrency)))
        // The same construction as auth's (Services/Auth/App+build.swift): default parameters,
        // System.coreCount threads.
        let hasher = PasswordHasher()
        do {
            try await measure(client: client, hasher: hasher, auth: auth, provisioning: provisioning, token: token,
                              seconds: seconds, concurrency: concurrency)
        } catch {
            await hasher.shutdown()
            await client.shutdown()
            throw error
        }
        await hasher.shutdown()
        await client.shutdown()
    }

    nonisolated static func measure(
        client: CurlHTTPClient, hasher: PasswordHasher, auth: String, provisioning: String, token: String, seconds: Int, concurrency: Int
    ) async throws {
        let tokenURL = auth + "/v1/token?grant_type="

        // Setup, untimed: one developer per worker, each project ready, so provisioning is idle
        // before anything is measured.
        let run = UUID().uuidString.prefix(8).lowercased()
        var registered: [String] = []
        for index in 0..<concurrency {
            let email = "authbench\(index)_\(run)@example.test"
            let accepted = try await client.send(
                .post, auth + "/v1/register",
                body: RegisterRequest(email: email, password: password, projectName: "Auth bench", slug: "authbench_\(run)_\(index)"),
                as: ProjectAccepted.self
            )
            try await waitUntilReady(client: client, url: provisioning + "/v1/projects/" + accepted.projectId.uuidString.lowercased(), token: token)
            registered.append(email)
        }
        let emails = registered
        let encoded = try await hasher.hash(password)

        print("auth-bench seconds=\(seconds) concurrency=\(concurrency) cores=\(System.coreCount) "
            + "argon2id \(hasher.parameters) hasher_threads=\(System.coreCount) (System.coreCount, as in auth)")

        // Warm-up, untimed: every worker's first login (auth's hasher threads, its pool's
        // connections) and as many local verifications.
        let warmLogins = await phase(workers: concurrency, operations: 1) { index, _ in
            await loginOnce(client: client, url: tokenURL + "password", email: emails[index])
        }
        let warmVerifies = await phase(workers: concurrency, operations: 1) { _, _ in
            await hasher.verify(password, against: encoded) ? nil : "verify returned false"
        }
        guard warmLogins.tally.failures.isEmpty, warmVerifies.tally.failures.isEmpty else {
            throw BenchError(description: "warm-up failed: logins \(warmLogins.tally.failures), verifications \(warmVerifies.tally.failures)")
        }

        try await printSequentialArgon2(hasher: hasher, encoded: encoded)

        // (a) argon2id ceiling, logins, ceiling again.
        let ceilingWork: @Sendable (Int, Int) async -> String? = { _, _ in
            await hasher.verify(password, against: encoded) ? nil : "verify returned false"
        }
        let before = await phase(workers: concurrency, seconds: seconds, ceilingWork)
        print(before.line("argon2id ceiling (before logins)"))
        let logins = await phase(workers: concurrency, seconds: seconds) { index, _ in
            await loginOnce(client: client, url: tokenURL + "password", email: emails[index])
        }
        print(logins.line("logins (grant_type=password)", latencies: true))
        let after = await phase(workers: concurrency, seconds: seconds, ceilingWork)
        print(after.line("argon2id ceiling (after logins)"))
        let ceiling = (before.perSecond + after.perSecond) / 2
        print(String(format: "login/s ÷ argon2id ceiling = %.1f ÷ %.1f = %.2f (ceiling: mean of before and after)",
                     logins.perSecond, ceiling, logins.perSecond / ceiling))

        // (b) refreshes: one chain per worker, each started by a login (untimed).
        let chains = Chains()
        for index in 0..<concurrency {
            let tokens = try await client.send(.post, tokenURL + "password", body: PasswordGrant(email: emails[index], password: password),
                                               as: TokenResponse.self)
            chains.set(index, tokens.refreshToken)
        }
        let refreshes = await phase(workers: concurrency, seconds: seconds, stopOnFailure: true) { index, _ in
            do {
                let tokens = try await client.send(.post, tokenURL + "refresh_token", body: RefreshGrant(refreshToken: chains.get(index)),
                                                   as: TokenResponse.self)
                chains.set(index, tokens.refreshToken)
                return nil
            } catch {
                return failureKey(error)
            }
        }
        print(refreshes.line("refreshes (grant_type=refresh_token, one chain per worker)", latencies: true))

        // Unknown email vs wrong password, one request at a time, interleaved so that background
        // load falls on both alike. Both must answer 400 invalid_grant.
        var unknown: [Double] = []
        var wrong: [Double] = []
        for round in 0..<timingRounds {
            for (email, isUnknown) in [("nobody\(round)_\(run)@example.test", true), (emails[round % emails.count], false)] {
                let started = ContinuousClock.now
                let key = await loginOnce(client: client, url: tokenURL + "password", email: email, password: "a wrong password \(round)")
                let elapsed = milliseconds(ContinuousClock.now - started)
                guard key == "400 invalid_grant" else {
                    throw BenchError(description: "wrong-credentials login answered \(key ?? "200"), expected 400 invalid_grant")
                }
                if isUnknown { unknown.append(elapsed) } else { wrong.append(elapsed) }
            }
        }
        let unknownMedian = percentile(unknown.sorted(), 0.5)
        let wrongMedian = percentile(wrong.sorted(), 0.5)
        print(String(format: "login timing (sequential, %d each, interleaved): unknown email median %.2f ms, wrong password median %.2f ms, gap %.2f ms",
                     timingRounds, unknownMedian, wrongMedian, abs(unknownMedian - wrongMedian)))
    }

    /// One hash, one verify with a wrong password and one dummy verify per round, `timingRounds`
    /// rounds in turn so background load falls on all three alike; prints their medians and the
    /// dummy/real ratio (near 1: an unknown account costs what a wrong password costs).
    nonisolated static func printSequentialArgon2(hasher: PasswordHasher, encoded: String) async throws {
        var hashes: [Double] = []
        var verifies: [Double] = []
        var dummies: [Double] = []
        for round in 0..<timingRounds {
            var started = ContinuousClock.now
            _ = try await hasher.hash("benchmark password \(round)")
            hashes.append(milliseconds(ContinuousClock.now - started))
            started = ContinuousClock.now
            guard !(await hasher.verify("a wrong password \(round)", against: encoded)) else {
                throw BenchError(description: "a wrong password verified")
            }
            verifies.append(milliseconds(ContinuousClock.now - started))
            started = ContinuousClock.now
            await hasher.verifyDummy("a wrong password \(round)")
            dummies.append(milliseconds(ContinuousClock.now - started))
        }
        let verifyMedian = percentile(verifies.sorted(), 0.5)
        let dummyMedian = percentile(dummies.sorted(), 0.5)
        print(String(format: "argon2id one at a time (%d each, interleaved): hash median %.2f ms, verify median %.2f ms, "
            + "dummy verify median %.2f ms, dummy/verify %.2f",
            timingRounds, percentile(hashes.sorted(), 0.5), verifyMedian, dummyMedian, dummyMedian / verifyMedian))
    }

    /// One password login: nil when it answered 2xx, else what went wrong.
    nonisolated static func loginOnce(client: CurlHTTPClient, url: String, email: String, password: String = password) async -> String? {
        do {
            _ = try await client.send(.post, url, body: PasswordGrant(email: email, password: password))
            return nil
        } catch {
            return failureKey(error)
        }
    }

    /// "429 rate_limited", "cannot connect to …": how failures are grouped in the output.
    nonisolated static func failureKey(_ error: any Error) -> String {
        if case HTTPClientError.status(let status, let body) = error {
            return "\(status) \(ErrorEnvelope(body: body)?.error.code ?? "-")"
        }
        return "\(error)"
    }

    nonisolated static func waitUntilReady(client: CurlHTTPClient, url: String, token: String) async throws {
        let headers = HTTPClientHeaders([(PlatformHeader.serviceToken, token)])
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            let status = try await client.get(url, as: ProjectStatus.self, headers: headers)
            if status.status == .ready { return }
            if status.status == .failed { throw BenchError(description: "a bench project failed to provision") }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw BenchError(description: "a bench project was not ready after 120 s")
    }

    /// Runs `workers` concurrent loops of `operation(worker, iteration)` (nil: success, else a
    /// failure key) until `seconds` have passed, or for `operations` iterations each. Latencies
    /// are kept for successes only. With `stopOnFailure`, a worker ends at its first failure.
    nonisolated static func phase(
        workers: Int, seconds: Int? = nil, operations: Int? = nil, stopOnFailure: Bool = false,
        _ operation: @escaping @Sendable (Int, Int) async -> String?
    ) async -> PhaseResult {
        let started = ContinuousClock.now
        let deadline = seconds.map { started + .seconds($0) }
        let tally = await withTaskGroup(of: Tally.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var tally = Tally()
                    var iteration = 0
                    while deadline.map({ ContinuousClock.now < $0 }) ?? true, iteration < (operations ?? .max) {
                        let began = ContinuousClock.now
                        let failure = await operation(worker, iteration)
                        iteration += 1
                        if let failure {
                            tally.failures[failure, default: 0] += 1
                            if stopOnFailure { break }
                        } else {
                            tally.ok += 1
                            tally.latencies.append(milliseconds(ContinuousClock.now - began))
                        }
                    }
                    return tally
                }
            }
            var total = Tally()
            for await part in group { total.merge(part) }
            return total
        }
        return PhaseResult(tally: tally, elapsed: ContinuousClock.now - started)
    }
}

struct Tally: Sendable {
    var ok = 0
    var failures: [String: Int] = [:]
    var latencies: [Double] = []

    mutating func merge(_ other: Tally) {
        ok += other.ok
        failures.merge(other.failures, uniquingKeysWith: +)
        latencies += other.latencies
    }
}

struct PhaseResult: Sendable {
    var tally: Tally
    var elapsed: Duration

    var perSecond: Double { Double(tally.ok) / (milliseconds(elapsed) / 1000) }

    func line(_ label: String, latencies: Bool = false) -> String {
        var text = String(format: "%@: ok=%d per_s=%.1f elapsed_s=%.2f", label, tally.ok, perSecond, milliseconds(elapsed) / 1000)
        if latencies {
            let sorted = tally.latencies.sorted()
            text += String(format: " p50_ms=%.1f p99_ms=%.1f max_ms=%.1f", percentile(sorted, 0.5), percentile(sorted, 0.99), sorted.last ?? 0)
        }
        let failed = tally.failures.values.reduce(0, +)
        text += " errors=\(failed)"
        if failed > 0 {
            text += " (" + tally.failures.sorted { $0.value > $1.value }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + ")"
        }
        return text
    }
}

/// Each worker's current refresh token (a worker only touches its own slot).
final class Chains: Sendable {
    private let tokens = Mutex<[Int: String]>([:])

    func get(_ worker: Int) -> String { tokens.withLock { $0[worker] ?? "" } }
    func set(_ worker: Int, _ token: String) { tokens.withLock { $0[worker] = token } }
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
}
