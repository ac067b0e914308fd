import Foundation
import Passwords
import ServiceKit
import Synchronization

/// The bounded queue in front of the argon2id hasher: every hash and verification (sign-ins,
/// sign-ups, registrations, password changes) is admitted here first, and past the limit it is
/// refused at once with 503 `busy` and `Retry-After` instead of queueing without end: a flood
/// costs the server a counter check per request, not a growing line of 19 MiB jobs.
///
/// - `AUTH_PASSWORD_QUEUE` (default 8 per hasher thread): jobs admitted at once, running and
///   waiting.
/// - `AUTH_NEW_ACCOUNT_HASHES` (default half the hasher threads, at least 1): how many hashes of
///   a new account's password (developer registration, a tenant's sign-up) run at once; more
///   wait here, outside the hasher's queue, up to half of `AUTH_PASSWORD_QUEUE`. New accounts are
///   what an attacker can make without limit, so however many arrive they hold at most this
///   many threads and half the queue: sign-ins keep the other threads and the other half.
final class HashingQueue: Sendable {
    /// Which lane a job is admitted to.
    enum Lane: Sendable {
        /// Sign-ins, password changes, accounts an administrator makes.
        case account
        /// The password of a new, self-made account.
        case newAccount
    }

    private enum Admission { case run, wait, refuse }

    private struct State {
        /// Jobs admitted, running or waiting, in both lanes.
        var admitted = 0
        /// New-account jobs admitted, and how many of them hold a hasher slot.
        var newAccounts = 0
        var newAccountsRunning = 0
        /// New-account jobs waiting for a slot, first come first served.
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    let hasher: PasswordHasher
    let limit: Int
    let newAccountSlots: Int
    private let state = Mutex(State())
    /// Called with the lane of every refused job (a metric).
    private let onRefusal: @Sendable (Lane) -> Void

    init(hasher: PasswordHasher, limit: Int, newAccountSlots: Int, onRefusal: @escaping @Sendable (Lane) -> Void = { _ in }) {
        self.hasher = hasher
        self.limit = max(2, limit)
        self.newAccountSlots = max(1, newAccountSlots)
        self.onRefusal = onRefusal
    }

    /// Reads `AUTH_PASSWORD_QUEUE` and `AUTH_NEW_ACCOUNT_HASHES` for `hasher`'s thread count.
    convenience init(hasher: PasswordHasher, threads: Int, configuration: ServiceConfiguration,
                     onRefusal: @escaping @Sendable (Lane) -> Void = { _ in }) throws {
        try self.init(
            hasher: hasher,
            limit: configuration.integer("AUTH_PASSWORD_QUEUE", default: threads * 8, range: 2...100_000),
            newAccountSlots: configuration.integer("AUTH_NEW_ACCOUNT_HASHES", default: max(1, threads / 2), range: 1...100_000),
            onRefusal: onRefusal
        )
    }

    func hash(_ password: String, lane: Lane = .account) async throws -> String {
        try await admitted(lane) { try await hasher.hash(password) }
    }

    func verify(_ password: String, against encoded: String) async throws -> Bool {
        try await admitted(.account) { await hasher.verify(password, against: encoded) }
    }

    func verifyDummy(_ password: String) async throws {
        try await admitted(.account) { await hasher.verifyDummy(password) }
    }

    /// The 503 a refused job answers.
    static var busy: APIError {
        APIError(.serviceUnavailable, code: "busy", message: "The server is busy; try again shortly.", headers: [.retryAfter: "1"])
    }

    /// Runs `job` once admitted to `lane` (a new-account job may first wait for a slot);
    /// throws `busy` when the queue, or the new-account lane's half of it, is full.
    func admitted<Result>(_ lane: Lane, _ job: () async throws -> Result) async throws -> Result {
        let admission = state.withLock { state -> Admission in
            guard state.admitted < limit else { return .refuse }
            if lane == .account {
                state.admitted += 1
                return .run
            }
            guard state.newAccounts < limit / 2 else { return .refuse }
            state.admitted += 1
            state.newAccounts += 1
            if state.newAccountsRunning < newAccountSlots {
                state.newAccountsRunning += 1
                return .run
            }
            return .wait
        }
        switch admission {
        case .refuse:
            onRefusal(lane)
            throw Self.busy
        case .wait:
            // The slot is handed over by the job that frees it (see `release`).
            await withCheckedContinuation { continuation in
                let handedOver = state.withLock { state -> Bool in
                    if state.newAccountsRunning < newAccountSlots {
                        state.newAccountsRunning += 1
                        return true
                    }
                    state.waiting.append(continuation)
                    return false
                }
                if handedOver { continuation.resume() }
            }
        case .run:
            break
        }
        defer { release(lane) }
        return try await job()
    }

    private func release(_ lane: Lane) {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.admitted -= 1
            guard lane == .newAccount else { return nil }
            state.newAccounts -= 1
            if state.waiting.isEmpty {
                state.newAccountsRunning -= 1
                return nil
            }
            return state.waiting.removeFirst()  // keeps the slot
        }
        next?.resume()
    }
}
