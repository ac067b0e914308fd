/// The cost of one argon2id hash: memory (KiB), passes over that memory, and lanes.
///
/// The defaults are OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane): about as much
/// memory per hash as a login path can afford on a small machine, and enough to make
/// GPU/ASIC guessing of a leaked table expensive. Raising any of them later is safe: stored
/// hashes carry their own parameters, still verify, and `PasswordHasher.needsRehash` says
/// which ones to upgrade at the next successful login.
public struct Argon2Parameters: Sendable, Equatable, CustomStringConvertible {
    public var memoryKiB: Int
    public var iterations: Int
    public var parallelism: Int

    public init(memoryKiB: Int, iterations: Int, parallelism: Int) {
        self.memoryKiB = memoryKiB
        self.iterations = iterations
        self.parallelism = parallelism
    }

    /// OWASP Password Storage Cheat Sheet, argon2id minimum: m=19456 (19 MiB), t=2, p=1.
    public static let owasp = Argon2Parameters(memoryKiB: 19_456, iterations: 2, parallelism: 1)

    public var description: String { "m=\(memoryKiB),t=\(iterations),p=\(parallelism)" }

    /// The values as libargon2 takes them, or why they cannot be used. libargon2 itself also
    /// checks (memory ≥ 8 KiB per lane and so on) and reports through its own error codes.
    func cValues() throws(PasswordHashingError) -> (memory: UInt32, iterations: UInt32, parallelism: UInt32) {
        guard let memory = UInt32(exactly: memoryKiB), let iterations = UInt32(exactly: self.iterations),
              let parallelism = UInt32(exactly: self.parallelism),
              iterations >= 1, parallelism >= 1, memory >= 8 * parallelism
        else {
            throw .invalidParameters(description)
        }
        return (memory, iterations, parallelism)
    }
}

/// Why a password could not be hashed. Never carries the password or the hash.
public enum PasswordHashingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The password is longer than `PasswordHasher.maximumPasswordBytes` UTF-8 bytes.
    case passwordTooLong(maximumBytes: Int)
    /// The configured parameters are out of range (the description names them).
    case invalidParameters(String)
    /// `shutdown()` was called; the hasher's threads are gone.
    case shutDown
    /// libargon2 reported an error (its code and message; neither depends on the password).
    case argon2(code: Int32, message: String)

    public var description: String {
        switch self {
        case .passwordTooLong(let maximum): "the password is longer than \(maximum) bytes"
        case .invalidParameters(let parameters): "invalid argon2id parameters (\(parameters))"
        case .shutDown: "the password hasher has been shut down"
        case .argon2(let code, let message): "argon2 failed (\(code)): \(message)"
        }
    }
}

/// What an encoded argon2id hash (PHC string format) says about how it was made:
/// `$argon2id$v=19$m=19456,t=2,p=1$<salt, base64 without padding>$<tag, base64 without padding>`.
///
/// Parsed in Swift before anything reaches libargon2, so a malformed, foreign (bcrypt, argon2i)
/// or hostile string is refused without work, and a stored string cannot make a verify
/// allocate gigabytes (see `PasswordHasher.verify`).
struct Argon2EncodedHash: Equatable {
    var version: Int
    var parameters: Argon2Parameters
    var saltLength: Int
    var tagLength: Int

    static let prefix = "$argon2id$"

    init(version: Int, parameters: Argon2Parameters, saltLength: Int, tagLength: Int) {
        self.version = version
        self.parameters = parameters
        self.saltLength = saltLength
        self.tagLength = tagLength
    }

    /// Nil for anything that is not a well-formed argon2id PHC string with a version field.
    init?(_ encoded: String) {
        let utf8 = encoded.utf8
        // Far above any real encoding (about 100 bytes at our sizes); keeps parsing bounded.
        guard utf8.count <= 512, encoded.hasPrefix(Self.prefix) else { return nil }
        let parts = utf8.split(separator: UInt8(ascii: "$"), omittingEmptySubsequences: false)
        // "", "argon2id", "v=19", "m=…,t=…,p=…", salt, tag
        guard parts.count == 6, parts[0].isEmpty else { return nil }
        guard let version = Self.number(after: "v=", in: parts[2]) else { return nil }
        let costs = parts[3].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard costs.count == 3,
              let memory = Self.number(after: "m=", in: costs[0]),
              let iterations = Self.number(after: "t=", in: costs[1]),
              let parallelism = Self.number(after: "p=", in: costs[2]),
              let saltLength = Self.base64DecodedLength(parts[4]),
              let tagLength = Self.base64DecodedLength(parts[5])
        else { return nil }
        self.init(
            version: version,
            parameters: Argon2Parameters(memoryKiB: memory, iterations: iterations, parallelism: parallelism),
            saltLength: saltLength,
            tagLength: tagLength
        )
    }

    /// A decimal number (1…10 digits, no sign) after a `key=` prefix.
    private static func number(after key: String, in field: Substring.UTF8View) -> Int? {
        let keyBytes = Array(key.utf8)
        let bytes = Array(field)
        guard bytes.count > keyBytes.count, bytes.count <= keyBytes.count + 10,
              Array(bytes.prefix(keyBytes.count)) == keyBytes
        else { return nil }
        var value = 0
        for byte in bytes.dropFirst(keyBytes.count) {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// The byte count of unpadded standard base64 text, or nil when it is not such text.
    private static func base64DecodedLength(_ field: Substring.UTF8View) -> Int? {
        guard !field.isEmpty, field.count % 4 != 1 else { return nil }
        let valid = field.allSatisfy { byte in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
        }
        return valid ? field.count * 3 / 4 : nil
    }
}
