/// An HTTP request method.
///
/// A struct rather than an enum so that rarely used methods can still be expressed
/// (`HTTPMethod(rawValue: "PROPFIND")`) while the common ones read as `.get`, `.post`, ...
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The method token as sent on the wire, e.g. `"GET"`.
    public let rawValue: String

    /// Creates a method from its token. Tokens are case-sensitive (RFC 9110 §9.1).
    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public static let get = HTTPMethod(rawValue: "GET")
    public static let head = HTTPMethod(rawValue: "HEAD")
    public static let post = HTTPMethod(rawValue: "POST")
    public static let put = HTTPMethod(rawValue: "PUT")
    public static let patch = HTTPMethod(rawValue: "PATCH")
    public static let delete = HTTPMethod(rawValue: "DELETE")
    public static let options = HTTPMethod(rawValue: "OPTIONS")

    /// Whether RFC 9110 §9.2.2 defines the method as idempotent: repeating it has the same effect
    /// on the server as sending it once, which is what makes an automatic retry safe.
    public var isIdempotent: Bool {
        switch self {
        case .get, .head, .put, .delete, .options: true
        default: false
        }
    }

    public var description: String { self.rawValue }

    /// Whether `rawValue` is a valid RFC 9110 token (so it cannot smuggle spaces or line breaks
    /// into the request line).
    var isValidToken: Bool {
        !self.rawValue.isEmpty && self.rawValue.utf8.allSatisfy(\.isHTTPTokenCharacter)
    }
}

extension UInt8 {
    /// `tchar` of RFC 9110 §5.6.2.
    var isHTTPTokenCharacter: Bool {
        switch self {
        case UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"),
            UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}
