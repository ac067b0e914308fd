import CArgon2
import Foundation
import NIOCore
import NIOPosix

/// Hashes and verifies passwords with argon2id (libargon2).
///
/// - **Threads.** One argon2id hash is tens of milliseconds of CPU and ~19 MiB of memory, so it
///   runs on the hasher's own `NIOThreadPool`, never on an event loop or on Swift's cooperative
///   pool (a burst of logins would otherwise stall every other request). The thread count also
///   caps the memory in use at `threads × memoryKiB`. Work still queued when its task is
///   cancelled is dropped without running.
/// - **Passwords.** The password is normalised to Unicode NFKC (as NIST SP 800-63B advises), so
///   "é" typed as one code point or as "e" + combining accent is the same password, then hashed
///   as its UTF-8 bytes — NUL bytes included, nothing is truncated. Passwords over
///   `maximumPasswordBytes` UTF-8 bytes (as given, before normalisation) are refused by `hash`
///   with `PasswordHashingError.passwordTooLong` and never match in `verify`: the cost of
///   argon2's first step grows with the length, and no real password is that long.
///   An empty password hashes like any other; minimum-length rules belong to the caller.
/// - **Format.** PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$tag`), 16-byte salts from the
///   system CSPRNG (`getrandom`), 32-byte tags. Each string carries its own parameters, so
///   raising them later keeps old hashes verifiable (`needsRehash` says which to upgrade).
/// - **Secrets.** Neither the password nor the hash appears in any error or description.
/// - **Work done.** `verificationObserver` is told the parameters of every argon2id verification
///   as it starts (real and dummy alike): auth counts them in its metrics, and tests check that
///   an unknown account costs a real verification by counting, not by timing.
///
/// Call `shutdown()` when done; a hasher that is released without it stops its threads anyway.
public final class PasswordHasher: Sendable {
    /// The longest password accepted, in UTF-8 bytes.
    public static let maximumPasswordBytes = 1024
    static let saltBytes = 16
    static let tagBytes = 32

    public let parameters: Argon2Parameters
    private let threadPool: NIOThreadPool
    /// A hash of a random secret made with this hasher's parameters, for `verifyDummy`.
    /// Started at init so the first unknown-user login costs no more than later ones.
    private let dummyHash: Task<String?, Never>
    private let verificationObserver: @Sendable (Argon2Parameters) -> Void

    /// - Parameters:
    ///   - parameters: argon2id cost; OWASP's minimum by default.
    ///   - threads: how many hashes may run at once (and so how many × `memoryKiB` may be in
    ///     use); the machine's core count by default.
    ///   - verificationObserver: called on the hasher's thread with the parameters of each
    ///     argon2id verification about to run (`verify` and `verifyDummy`; not for strings
    ///     refused unread, nor for work dropped after cancellation or shutdown). Keep it cheap.
    public init(parameters: Argon2Parameters = .owasp, threads: Int = System.coreCount,
                verificationObserver: @escaping @Sendable (Argon2Parameters) -> Void = { _ in }) {
        self.parameters = parameters
        self.verificationObserver = verificationObserver
        let threadPool = NIOThreadPool(numberOfThreads: max(1, threads))
        threadPool.start()
        self.threadPool = threadPool
        self.dummyHash = Task {
            var generator = SystemRandomNumberGenerator()
            let secret = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            let salt = Self.makeSalt()
            return try? await threadPool.runIfActive { try Self.hashEncoded(secret, salt: salt, parameters: parameters) }
        }
    }

    deinit {
        // NIOThreadPool must be stopped before it is released; `shutdown()` is the polite way,
        // this is the safety net (queued work is cancelled, running work finishes).
        threadPool.shutdownGracefully { _ in }
    }

    // MARK: Hashing

    /// Hashes `password` with a fresh salt; returns the PHC string to store.
    public func hash(_ password: String) async throws -> String {
        guard let bytes = Self.passwordBytes(password) else {
            throw PasswordHashingError.passwordTooLong(maximumBytes: Self.maximumPasswordBytes)
        }
        let parameters = self.parameters
        let salt = Self.makeSalt()
        do {
            return try await threadPool.runIfActive { try Self.hashEncoded(bytes, salt: salt, parameters: parameters) }
        } catch let error as PasswordHashingError {
            throw error
        } catch {
            // The pool answers work it will not run with CancellationError: either this task
            // was cancelled, or the pool has stopped.
            if Task.isCancelled { throw CancellationError() }
            throw PasswordHashingError.shutDown
        }
    }

    /// True when `password` matches `encoded`. False — never a crash or a throw — for a wrong
    /// password, a malformed or non-argon2id string (bcrypt, argon2i, truncated), parameters
    /// beyond what this hasher will spend (see `acceptable(_:)`), an over-long password, a
    /// cancelled task, or a hasher that was shut down.
    public func verify(_ password: String, against encoded: String) async -> Bool {
        guard let bytes = Self.passwordBytes(password),
              let found = Argon2EncodedHash(encoded), acceptable(found)
        else { return false }
        return await run(bytes, against: encoded, parameters: found.parameters)
    }

    /// Spends what `verify` would on a stored hash with this hasher's parameters, and
    /// forgets the answer. Call it when the account does not exist, so that "no such user"
    /// and "wrong password" take the same time and a login form cannot be used to find out
    /// which e-mail addresses have accounts.
    public func verifyDummy(_ password: String) async {
        // Same early exit as `verify`: it depends on the input only, not on the account.
        guard let bytes = Self.passwordBytes(password), let encoded = await dummyHash.value,
              let found = Argon2EncodedHash(encoded)
        else { return }
        _ = await run(bytes, against: encoded, parameters: found.parameters)
    }

    /// One argon2id verification on the hasher's threads, announced to the observer as it
    /// starts; false when it did not match or did not run (cancelled, shut down).
    private func run(_ password: [UInt8], against encoded: String, parameters: Argon2Parameters) async -> Bool {
        let observer = verificationObserver
        return (try? await threadPool.runIfActive {
            observer(parameters)
            return Self.verifyEncoded(password, against: encoded)
        }) ?? false
    }

    /// True when `encoded` was not made with this hasher's parameters (or is not an argon2id
    /// string this hasher would make at all): after a successful `verify`, hash the password
    /// again and store the new string.
    public func needsRehash(_ encoded: String) -> Bool {
        guard let found = Argon2EncodedHash(encoded) else { return true }
        return found != Argon2EncodedHash(
            version: Int(ARGON2_VERSION_13.rawValue),
            parameters: parameters,
            saltLength: Self.saltBytes,
            tagLength: Self.tagBytes
        )
    }

    /// Stops the threads, after any hash already running; queued work fails.
    public func shutdown() async {
        dummyHash.cancel()
        try? await threadPool.shutdownGracefully()
    }

    // MARK: Limits

    /// Whether a stored string's parameters are worth running: its version is 1.3 and its
    /// costs stay under ceilings well above any sane configuration (256 MiB, 16 passes, 16
    /// lanes — or this hasher's own, if higher). A corrupted or planted row cannot make one
    /// login allocate gigabytes or spin for minutes.
    func acceptable(_ found: Argon2EncodedHash) -> Bool {
        found.version == Int(ARGON2_VERSION_13.rawValue)
            && found.parameters.memoryKiB <= max(262_144, parameters.memoryKiB)
            && found.parameters.iterations <= max(16, parameters.iterations)
            && found.parameters.parallelism <= max(16, parameters.parallelism)
            && (8...64).contains(found.saltLength)
            && (4...128).contains(found.tagLength)
    }

    // MARK: libargon2 (runs on the hasher's threads)

    /// NFKC-normalised UTF-8 bytes, or nil when the password is too long.
    static func passwordBytes(_ password: String) -> [UInt8]? {
        guard password.utf8.count <= maximumPasswordBytes else { return nil }
        return Array(password.precomposedStringWithCompatibilityMapping.utf8)
    }

    static func makeSalt() -> [UInt8] {
        // SystemRandomNumberGenerator reads the kernel CSPRNG (getrandom on Linux).
        var generator = SystemRandomNumberGenerator()
        var salt = [UInt8](repeating: 0, count: saltBytes)
        for index in salt.indices { salt[index] = generator.next() }
        return salt
    }

    static func hashEncoded(_ password: [UInt8], salt: [UInt8], parameters: Argon2Parameters) throws(PasswordHashingError) -> String {
        let costs = try parameters.cValues()
        let length = argon2_encodedlen(costs.iterations, costs.memory, costs.parallelism,
                                       UInt32(salt.count), UInt32(tagBytes), Argon2_id)
        var encoded = [CChar](repeating: 0, count: length + 1)
        let code = password.withUnsafeBytes { passwordBytes in
            salt.withUnsafeBytes { saltBytes in
                encoded.withUnsafeMutableBufferPointer { output in
                    argon2id_hash_encoded(
                        costs.iterations, costs.memory, costs.parallelism,
                        passwordBytes.baseAddress, passwordBytes.count,
                        saltBytes.baseAddress, saltBytes.count,
                        tagBytes, output.baseAddress, output.count
                    )
                }
            }
        }
        guard code == ARGON2_OK.rawValue else {
            throw .argon2(code: code, message: argon2_error_message(code).map { String(cString: $0) } ?? "unknown error")
        }
        // libargon2 NUL-terminates within the buffer on success.
        return String(decoding: encoded.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// argon2id_verify compares the tags in constant time; any code but OK is a non-match.
    static func verifyEncoded(_ password: [UInt8], against encoded: String) -> Bool {
        let code = encoded.withCString { encodedPointer in
            password.withUnsafeBytes { passwordBytes in
                argon2id_verify(encodedPointer, passwordBytes.baseAddress, passwordBytes.count)
            }
        }
        return code == ARGON2_OK.rawValue
    }
}
