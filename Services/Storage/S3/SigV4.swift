import Crypto
import Foundation

/// AWS Signature Version 4 as S3 clients sign requests (docs/protocols/storage-reference.md
/// §8.4): finding the signature (the `Authorization` header, or the query of a presigned URL),
/// and recomputing it from the request as received. Pure: no clock, no store, no HTTP types, so
/// AWS's published examples test it as they are.
enum SigV4 {
    static let algorithm = "AWS4-HMAC-SHA256"
    static let unsignedPayload = "UNSIGNED-PAYLOAD"
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// A request as the signature covers it: the method, the path and query exactly as they
    /// arrived (still percent-encoded), and the headers (names lower-case; a repeated header
    /// once, its values joined with `,`).
    struct Request: Sendable {
        var method: String
        var path: String
        var query: String?
        var headers: [String: String]

        init(method: String, path: String, query: String?, headers: [(name: String, value: String)]) {
            self.method = method
            self.path = path
            self.query = query.flatMap { $0.isEmpty ? nil : $0 }
            var joined: [String: String] = [:]
            for (name, value) in headers {
                let key = name.lowercased()
                joined[key] = joined[key].map { $0 + "," + value } ?? value
            }
            self.headers = joined
        }

        /// The query's parameters, each percent-decoded once (`+` stays `+`: SigV4 clients
        /// encode a space as `%20`); a valueless one (`?uploads`) has the value "".
        var parameters: [(name: String, value: String)] {
            guard let query else { return [] }
            return query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
                let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
                return (name, value)
            }
        }

        func parameter(_ name: String) -> String? {
            parameters.first { $0.name == name }?.value
        }
    }

    /// Where and how a request is signed: what the signature claims.
    struct Signature: Sendable, Equatable {
        var accessKeyID: String
        /// `yyyymmdd` of the credential's scope.
        var scopeDate: String
        var region: String
        var service: String
        /// Lower-case, in the order given (sorted, as clients send them).
        var signedHeaders: [String]
        /// 64 lower-case hex digits.
        var signature: String
        /// `X-Amz-Date`: `yyyymmddThhmmssZ`.
        var amzDate: String
        /// A presigned URL's `X-Amz-Expires` (seconds); nil for the header form.
        var expires: Int?
        /// `X-Amz-Security-Token`, if sent.
        var securityToken: String?
        /// What the canonical request ends with: `x-amz-content-sha256` verbatim, or
        /// `UNSIGNED-PAYLOAD` (presigned URLs, and requests without the header).
        var payloadHash: String

        var isPresigned: Bool { expires != nil }
        var scope: String { "\(scopeDate)/\(region)/\(service)/aws4_request" }
    }

    /// Why a request's signature could not be read. (A signature that does not match is the
    /// caller's comparison, not a parse failure.)
    enum Failure: Error, Equatable {
        /// No `Authorization: AWS4-HMAC-SHA256 …` and no `X-Amz-Signature` in the query.
        case missing
        /// Present but not SigV4 as S3 clients write it; the reason is safe to show.
        case malformed(String)
    }

    /// The signature a request carries: its `Authorization` header, else the query of a
    /// presigned URL.
    static func signature(of request: Request) throws(Failure) -> Signature {
        if let authorization = request.headers["authorization"] {
            return try headerSignature(authorization, request)
        }
        if request.parameter("X-Amz-Signature") != nil {
            return try querySignature(request)
        }
        throw .missing
    }

    private static func headerSignature(_ authorization: String, _ request: Request) throws(Failure) -> Signature {
        guard authorization.hasPrefix(algorithm + " ") else {
            throw .malformed("Only \(algorithm) (Signature Version 4) is supported.")
        }
        var fields: [String: String] = [:]
        for part in authorization.dropFirst(algorithm.count + 1).split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { throw .malformed("The Authorization header is malformed.") }
            fields[pair[0].trimmingCharacters(in: .whitespaces)] = pair[1].trimmingCharacters(in: .whitespaces)
        }
        guard let credential = fields["Credential"], let signedHeaders = fields["SignedHeaders"], let signature = fields["Signature"] else {
            throw .malformed("The Authorization header must have Credential, SignedHeaders and Signature.")
        }
        guard let amzDate = request.headers["x-amz-date"] else { throw .malformed("X-Amz-Date is missing.") }
        return try make(credential: credential, signedHeaders: signedHeaders, signature: signature, amzDate: amzDate, expires: nil,
                        securityToken: request.headers["x-amz-security-token"],
                        payloadHash: request.headers["x-amz-content-sha256"] ?? unsignedPayload)
    }

    private static func querySignature(_ request: Request) throws(Failure) -> Signature {
        guard request.parameter("X-Amz-Algorithm") == algorithm else {
            throw .malformed("Only \(algorithm) (Signature Version 4) is supported.")
        }
        guard let credential = request.parameter("X-Amz-Credential"), let signedHeaders = request.parameter("X-Amz-SignedHeaders"),
              let signature = request.parameter("X-Amz-Signature"), let amzDate = request.parameter("X-Amz-Date"),
              let expiresText = request.parameter("X-Amz-Expires")
        else { throw .malformed("A presigned URL needs X-Amz-Credential, -SignedHeaders, -Signature, -Date and -Expires.") }
        guard let expires = Int(expiresText), (1...604_800).contains(expires) else {
            throw .malformed("X-Amz-Expires must be between 1 and 604800 seconds.")
        }
        return try make(credential: credential, signedHeaders: signedHeaders, signature: signature, amzDate: amzDate, expires: expires,
                        securityToken: request.parameter("X-Amz-Security-Token"), payloadHash: unsignedPayload)
    }

    private static func make(credential: String, signedHeaders: String, signature: String, amzDate: String, expires: Int?,
                             securityToken: String?, payloadHash: String) throws(Failure) -> Signature {
        let scope = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard scope.count == 5, !scope[0].isEmpty, scope[4] == "aws4_request" else {
            throw .malformed("The credential must be <access key>/<date>/<region>/<service>/aws4_request.")
        }
        guard date(amzDate) != nil, amzDate.hasPrefix(scope[1]), scope[1].count == 8 else {
            throw .malformed("X-Amz-Date must be yyyymmddThhmmssZ, on the credential's date.")
        }
        let headers = signedHeaders.split(separator: ";").map { $0.lowercased() }
        guard !headers.isEmpty, headers.contains("host") else { throw .malformed("SignedHeaders must include host.") }
        guard signature.count == 64, signature.utf8.allSatisfy(isHexDigit) else { throw .malformed("The signature must be 64 hex digits.") }
        return Signature(accessKeyID: scope[0], scopeDate: scope[1], region: scope[2], service: scope[3], signedHeaders: headers,
                         signature: signature.lowercased(), amzDate: amzDate, expires: expires, securityToken: securityToken,
                         payloadHash: payloadHash)
    }

    // MARK: Computing

    /// `METHOD\nPATH\nQUERY\nHEADERS\n\nSIGNED-HEADERS\nPAYLOAD-HASH`. `host` is the host the
    /// client addressed (behind a proxy, not necessarily the `Host` header received).
    static func canonicalRequest(_ request: Request, _ signature: Signature, host: String) -> String {
        var lines = [request.method, request.path.isEmpty ? "/" : request.path, canonicalQuery(request)]
        for name in signature.signedHeaders {
            let value = name == "host" ? host : (request.headers[name] ?? "")
            lines.append(name + ":" + canonicalValue(value))
        }
        lines.append("")
        lines.append(signature.signedHeaders.joined(separator: ";"))
        lines.append(signature.payloadHash)
        return lines.joined(separator: "\n")
    }

    /// The query's parameters but `X-Amz-Signature`, decoded, re-encoded RFC 3986 style, sorted.
    static func canonicalQuery(_ request: Request) -> String {
        var pairs: [(name: String, value: String)] = []
        for parameter in request.parameters where parameter.name != "X-Amz-Signature" {
            pairs.append((uriEncode(parameter.name), uriEncode(parameter.value)))
        }
        pairs.sort { (a: (name: String, value: String), b: (name: String, value: String)) -> Bool in
            a.name == b.name ? a.value < b.value : a.name < b.name
        }
        return pairs.map { (pair: (name: String, value: String)) -> String in pair.name + "=" + pair.value }.joined(separator: "&")
    }

    /// Trimmed, inner runs of spaces collapsed to one.
    static func canonicalValue(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    static func stringToSign(_ signature: Signature, canonicalRequest: String) -> String {
        [algorithm, signature.amzDate, signature.scope, hex(SHA256.hash(data: Data(canonicalRequest.utf8)))].joined(separator: "\n")
    }

    /// HMAC chain `AWS4<secret>` → date → region → service → `aws4_request`.
    static func signingKey(secret: String, _ signature: Signature) -> SymmetricKey {
        var key = SymmetricKey(data: Data(("AWS4" + secret).utf8))
        for step in [signature.scopeDate, signature.region, signature.service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(step.utf8), using: key)))
        }
        return key
    }

    static func sign(_ text: String, key: SymmetricKey) -> String {
        hex(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key))
    }

    /// The signature the request should carry, computed with `secret`.
    static func expectedSignature(_ request: Request, _ signature: Signature, host: String, secret: String) -> String {
        let canonical = canonicalRequest(request, signature, host: host)
        return sign(stringToSign(signature, canonicalRequest: canonical), key: signingKey(secret: secret, signature))
    }

    /// The string to sign of one chunk of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` body: chained
    /// to the previous chunk's signature (the first to the request's).
    static func chunkStringToSign(_ signature: Signature, previous: String, chunkSHA256: String) -> String {
        ["AWS4-HMAC-SHA256-PAYLOAD", signature.amzDate, signature.scope, previous, emptySHA256, chunkSHA256].joined(separator: "\n")
    }

    /// Equal strings, in time that depends on their length alone.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    // MARK: Helpers

    /// `yyyymmddThhmmssZ` as a date; nil for anything else.
    static func date(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            guard bytes[range].allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
            return Int(String(decoding: bytes[range], as: UTF8.self))
        }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8), let hour = number(9..<11),
              let minute = number(11..<13), let second = number(13..<15),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? .current
        return calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second))
    }

    /// RFC 3986 percent-encoding: everything but `A-Za-z0-9-_.~` (with `/` kept when asked).
    static func uriEncode(_ text: String, keepSlash: Bool = false) -> String {
        var out = ""
        for byte in text.utf8 {
            if (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "~")
                || (keepSlash && byte == UInt8(ascii: "/")) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(hexDigits[Int(byte >> 4)]) + String(hexDigits[Int(byte & 0x0F)])
            }
        }
        return out
    }

    private static let hexDigits = Array("0123456789ABCDEF")

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte) || (0x41...0x46).contains(byte)
    }
}
