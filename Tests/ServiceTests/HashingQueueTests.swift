@testable import Auth
import Passwords
import ServiceKit
import TestSupport
import Synchronization
import Testing

/// Auth's bounded argon2id queue: past its limit a job is refused at once (503 `busy`,
/// `Retry-After`) instead of waiting without end, and new accounts never take more than their
/// lane, so sign-ins keep a way through a flood of registrations. Jobs are held open with gates,
/// so what is admitted is decided by state, not by how long a hash takes.
@Suite("Hashing queue")
struct HashingQueueTests {
    final class Counter: Sendable {
        private let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
        func increment() { count.withLock { $0 += 1 } }
    }

    /// Starts `count` jobs on `lane` that each hold their admission until `gate` opens; returns
    /// once all of them are admitted (or waiting, for new accounts beyond the slots).
    func hold(_ queue: HashingQueue, _ lane: HashingQueue.Lane, count: Int, gate: Gate, admitted: Counter) -> [Task<Void, any Error>] {
        (0..<count).map { _ in
            Task {
                try await queue.admitted(lane) {
                    admitted.increment()
                    await gate.wait()
                }
            }
        }
    }

    @Test("a full queue refuses at once with 503 busy and Retry-After; a freed place admits again")
    func fullQueueRefuses() async throws {
        let hasher = PasswordHasher(parameters: .init(memoryKiB: 8, iterations: 1, parallelism: 1), threads: 1)
        let queue = HashingQueue(hasher: hasher, limit: 4, newAccountSlots: 1)
        let gate = Gate()
        let admitted = Counter()
        let held = hold(queue, .account, count: 4, gate: gate, admitted: admitted)
        try await waitUntil("four jobs admitted") { admitted.value == 4 }
        do {
            _ = try await queue.verify("password", against: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$dGFn")
            Issue.record("a fifth job was admitted")
        } catch let error as APIError {
            #expect(error.status == .serviceUnavailable && error.code == "busy")
            #expect(error.headers[.retryAfter] == "1")
        }
        gate.open()
        for task in held { try await task.value }
        #expect(try await queue.hash("password").hasPrefix("$argon2id$"))
        await hasher.shutdown()
    }

    @Test("new accounts run one lane's slots at a time and fill at most half the queue; sign-ins are still admitted")
    func newAccountLane() async throws {
        let hasher = PasswordHasher(parameters: .init(memoryKiB: 8, iterations: 1, parallelism: 1), threads: 1)
        let queue = HashingQueue(hasher: hasher, limit: 8, newAccountSlots: 1)
        let gate = Gate()
        let running = Counter()
        // Four new accounts: one runs, three wait for the lane's single slot (half the queue).
        let newAccounts = hold(queue, .newAccount, count: 4, gate: gate, admitted: running)
        try await waitUntil("one new account running") { running.value == 1 }
        // A fifth is past the lane's half of the queue: refused.
        await #expect(throws: APIError.self) { try await queue.hash("password", lane: .newAccount) }
        // A sign-in is not: it runs beside them.
        let signIns = Counter()
        let signIn = hold(queue, .account, count: 1, gate: gate, admitted: signIns)
        try await waitUntil("the sign-in admitted") { signIns.value == 1 }
        #expect(running.value == 1)
        gate.open()
        for task in newAccounts + signIn { try await task.value }
        #expect(running.value == 4)
        await hasher.shutdown()
    }
}
