import Foundation
import Passwords
import ServiceKit
import Synchronization
import Testing

/// argon2id hashing through libargon2, on the hasher's own threads. What the work costs in
/// time is measured by deploy/scripts/bench-auth.sh (AuthBench), not here: these tests count
/// the verifications the hasher runs and the parameters it runs them with.
///
/// Serialized: each hash takes 19 MiB and the machine has two cores.
@Suite("Password hashing", .serialized)
struct PasswordHasherTests {
    /// libargon2's own reference vector (its test.c): "password", salt "somesalt", m=64 MiB, t=2, p=1.
    static let referenceHash = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"

    /// Runs `body` with a hasher and shuts it down afterwards, whatever happens; `verifications`
    /// records the parameters of each argon2id verification it runs.
    func withHasher(
        _ parameters: Argon2Parameters = .owasp,
        threads: Int = 2,
        verifications: Verifications = Verifications(),
        _ body: (PasswordHasher) async throws -> Void
    ) async throws {
        let hasher = PasswordHasher(parameters: parameters, threads: threads, verificationObserver: verifications.record)
        do {
            try await body(hasher)
        } catch {
            await hasher.shutdown()
            throw error
        }
        await hasher.shutdown()
    }

    @Test("a hash verifies its password and rejects others; NUL bytes, unicode and 1 KiB passwords work")
    func roundTrip() async throws {
        try await withHasher { hasher in
            let encoded = try await hasher.hash("correct horse battery staple")
            #expect(await hasher.verify("correct horse battery staple", against: encoded))
            #expect(!(await hasher.verify("correct horse battery stapler", against: encoded)))
            #expect(!(await hasher.verify("", against: encoded)))

            // NUL bytes are part of the password: nothing is cut at the first one.
            let withNUL = "abc\0def"
            let nulHash = try await hasher.hash(withNUL)
            #expect(await hasher.verify(withNUL, against: nulHash))
            #expect(!(await hasher.verify("abc", against: nulHash)))
            #expect(!(await hasher.verify("abc\0deg", against: nulHash)))

            // Unicode: NFKC makes the composed and decomposed spellings one password.
            let composed = "p\u{00E4}ssw\u{00F6}rd-\u{1F511}-密码"
            let decomposed = "pa\u{0308}sswo\u{0308}rd-\u{1F511}-密码"
            #expect(Array(composed.utf8) != Array(decomposed.utf8))
            let unicodeHash = try await hasher.hash(composed)
            #expect(await hasher.verify(composed, against: unicodeHash))
            #expect(await hasher.verify(decomposed, against: unicodeHash))
            #expect(!(await hasher.verify("passwort-\u{1F511}-密码", against: unicodeHash)))

            // The empty password is hashed like any other (length rules are the caller's).
            let emptyHash = try await hasher.hash("")
            #expect(await hasher.verify("", against: emptyHash))
            #expect(!(await hasher.verify(" ", against: emptyHash)))

            // Exactly the maximum works; one byte more is refused clearly, and never matches.
            let longest = String(repeating: "x", count: PasswordHasher.maximumPasswordBytes)
            let longHash = try await hasher.hash(longest)
            #expect(await hasher.verify(longest, against: longHash))
            #expect(!(await hasher.verify(longest + "x", against: longHash)))
            let fourKiB = String(repeating: "y", count: 4096)
            await #expect(throws: PasswordHashingError.passwordTooLong(maximumBytes: PasswordHasher.maximumPasswordBytes)) {
                try await hasher.hash(fourKiB)
            }
            #expect(!(await hasher.verify(fourKiB, against: longHash)))
        }
    }

    @Test("libargon2's reference vector verifies (interoperable with other argon2id implementations)")
    func referenceVector() async throws {
        try await withHasher { hasher in
            #expect(await hasher.verify("password", against: Self.referenceHash))
            #expect(!(await hasher.verify("Password", against: Self.referenceHash)))
            #expect(hasher.needsRehash(Self.referenceHash))  // m=64 MiB, 8-byte salt: not what we make
        }
    }

    @Test("two hashes of one password differ (fresh salt each time) and both verify")
    func freshSalt() async throws {
        try await withHasher { hasher in
            let first = try await hasher.hash("same password")
            let second = try await hasher.hash("same password")
            #expect(first != second)
            #expect(first.split(separator: "$")[3] != second.split(separator: "$")[3])
            #expect(await hasher.verify("same password", against: first))
            #expect(await hasher.verify("same password", against: second))
        }
    }

    @Test("the PHC string names argon2id, v=19, the parameters, a 16-byte salt and a 32-byte tag")
    func phcFormat() async throws {
        try await withHasher { hasher in
            let encoded = try await hasher.hash("format check")
            let parts = encoded.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
            #expect(parts.count == 6)
            #expect(parts[0] == "")
            #expect(parts[1] == "argon2id")
            #expect(parts[2] == "v=19")
            #expect(parts[3] == "m=19456,t=2,p=1")
            // Unpadded base64: 16 bytes → 22 characters, 32 bytes → 43.
            #expect(parts[4].count == 22)
            #expect(parts[5].count == 43)
            #expect(Data(base64Encoded: parts[4] + "==")?.count == 16)
            #expect(Data(base64Encoded: parts[5] + "=")?.count == 32)
            #expect(!encoded.contains("format check"))
        }
    }

    @Test("malformed, empty, foreign and hostile encodings are false, never a crash; only well-formed ones within limits reach libargon2")
    func malformedEncodings() async throws {
        let verifications = Verifications()
        try await withHasher(verifications: verifications) { hasher in
            let good = try await hasher.hash("pw")
            let salt = good.split(separator: "$")[3]
            let tag = good.split(separator: "$")[4]
            var flipped = Array(tag)
            flipped[0] = flipped[0] == "A" ? "B" : "A"
            // Refused in Swift, before any work: not argon2id, malformed, or costs a login must not spend.
            let refusedUnread: [String] = [
                "",
                "$",
                "not a hash",
                "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  // bcrypt
                "$argon2i$v=19$m=19456,t=2,p=1$\(salt)$\(tag)",  // another argon2 variant
                "$argon2d$v=19$m=19456,t=2,p=1$\(salt)$\(tag)",
                "$argon2id$v=16$m=19456,t=2,p=1$\(salt)$\(tag)",  // version 1.0
                "$argon2id$m=19456,t=2,p=1$\(salt)$\(tag)",  // no version field
                "$argon2id$v=19$m=19456,t=2$\(salt)$\(tag)",
                "$argon2id$v=19$m=19456,t=2,p=1$\(salt)",
                "$argon2id$v=19$m=19456,t=2,p=1$\(salt)$",
                "$argon2id$v=19$m=19456,t=2,p=1$\(salt)$\(tag)$extra",
                "$argon2id$v=19$m=-1,t=2,p=1$\(salt)$\(tag)",
                "$argon2id$v=19$m=99999999999999999999,t=2,p=1$\(salt)$\(tag)",
                "$argon2id$v=19$m=19456,t=2,p=1$!!!!$\(tag)",
                good + "\0trailing",
                // Parameters a login must not spend: 4 GiB of memory, a thousand passes.
                "$argon2id$v=19$m=4194304,t=1,p=1$\(salt)$\(tag)",
                "$argon2id$v=19$m=19456,t=1000,p=1$\(salt)$\(tag)",
                String(repeating: "$argon2id", count: 200),
            ]
            // Well-formed argon2id within the limits: libargon2 runs once and says no.
            let wellFormed: [String] = [
                "$argon2id$v=19$m=19456,t=0,p=1$\(salt)$\(tag)",
                "$argon2id$v=19$m=19456,t=2,p=0$\(salt)$\(tag)",
                "$argon2id$v=19$m=19456,t=2,p=1$\(salt)$\(String(flipped))",  // tag altered
                String(good.dropLast(4)),  // truncated
                good.replacingOccurrences(of: "t=2", with: "t=3"),  // parameters altered
            ]
            for encoded in refusedUnread {
                #expect(!(await hasher.verify("pw", against: encoded)), "accepted: \(encoded.prefix(60))")
            }
            #expect(verifications.all.isEmpty, "libargon2 ran for a string refused unread: \(verifications.all)")
            for encoded in wellFormed {
                let before = verifications.all.count
                #expect(!(await hasher.verify("pw", against: encoded)), "accepted: \(encoded.prefix(60))")
                #expect(verifications.all.count == before + 1, "\(encoded.prefix(60))")
            }
            // Strings that are not an argon2id hash of ours at all always want a new hash.
            for encoded in refusedUnread.prefix(8) + refusedUnread.suffix(3) {
                #expect(hasher.needsRehash(encoded), "\(encoded.prefix(60))")
            }
            #expect(await hasher.verify("pw", against: good))
        }
    }

    @Test("needsRehash is false for the hasher's own hashes and true when the parameters differ")
    func rehash() async throws {
        let cheap = Argon2Parameters(memoryKiB: 8_192, iterations: 1, parallelism: 1)
        try await withHasher(cheap) { cheapHasher in
            try await withHasher { owaspHasher in
                let old = try await cheapHasher.hash("upgrade me")
                #expect(!cheapHasher.needsRehash(old))
                #expect(owaspHasher.needsRehash(old))
                // The stronger hasher still verifies the older, cheaper hash…
                #expect(await owaspHasher.verify("upgrade me", against: old))
                // …and after rehashing the new string is current.
                let new = try await owaspHasher.hash("upgrade me")
                #expect(!owaspHasher.needsRehash(new))
                #expect(cheapHasher.needsRehash(new))
                #expect(owaspHasher.needsRehash("garbage"))
            }
        }
    }

    @Test("invalid parameters are a typed error, not a crash")
    func invalidParameters() async throws {
        try await withHasher(Argon2Parameters(memoryKiB: 4, iterations: 1, parallelism: 1)) { hasher in
            await #expect(throws: PasswordHashingError.self) { try await hasher.hash("pw") }
        }
        try await withHasher(Argon2Parameters(memoryKiB: 19_456, iterations: 0, parallelism: 1)) { hasher in
            await #expect(throws: PasswordHashingError.self) { try await hasher.hash("pw") }
        }
    }

    @Test("after shutdown, hash throws shutDown and verify is false")
    func afterShutdown() async throws {
        let hasher = PasswordHasher(threads: 1)
        let encoded = try await hasher.hash("pw")
        await hasher.shutdown()
        await #expect(throws: PasswordHashingError.shutDown) { try await hasher.hash("pw") }
        #expect(!(await hasher.verify("pw", against: encoded)))
        await hasher.verifyDummy("pw")  // returns, does nothing
    }

    @Test("8 concurrent hashes all verify")
    func concurrentHashes() async throws {
        try await withHasher { hasher in
            let results = try await withThrowingTaskGroup(of: (String, String).self) { group in
                for index in 0..<8 {
                    group.addTask {
                        let password = "password-\(index)"
                        return (password, try await hasher.hash(password))
                    }
                }
                return try await group.reduce(into: [(String, String)]()) { $0.append($1) }
            }
            #expect(results.count == 8)
            #expect(Set(results.map(\.1)).count == 8)
            for (password, encoded) in results {
                #expect(await hasher.verify(password, against: encoded))
                #expect(!(await hasher.verify(password + "!", against: encoded)))
            }
        }
    }

    @Test("verifyDummy does the work of verifying a real hash: one argon2id verification with the hasher's own parameters")
    func dummyCostsAVerify() async throws {
        let verifications = Verifications()
        try await withHasher(verifications: verifications) { hasher in
            let encoded = try await hasher.hash("the real password")
            #expect(!(await hasher.verify("wrong password", against: encoded)))
            await hasher.verifyDummy("wrong password")
            #expect(verifications.all == [hasher.parameters, hasher.parameters])
            // The same early exit on both paths: an over-long password runs nothing on either.
            let tooLong = String(repeating: "x", count: PasswordHasher.maximumPasswordBytes + 1)
            #expect(!(await hasher.verify(tooLong, against: encoded)))
            await hasher.verifyDummy(tooLong)
            #expect(verifications.all.count == 2)
        }
    }
}

/// The parameters of each argon2id verification a hasher ran (`verificationObserver`).
final class Verifications: Sendable {
    private let recorded = Mutex<[Argon2Parameters]>([])

    var all: [Argon2Parameters] { recorded.withLock { $0 } }

    func record(_ parameters: Argon2Parameters) {
        recorded.withLock { $0.append(parameters) }
    }
}
