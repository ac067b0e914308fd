import Foundation
import NIOPosix
import ServiceKit

/// Where a webhook may be sent: an `http(s)` URL whose host resolves only to public addresses,
/// so endpoints cannot be used to reach the platform's own network (SSRF): loopback, private
/// (RFC 1918, unique-local), link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
/// multicast, reserved and unspecified addresses are refused, as are IPv4 addresses hidden in
/// IPv6 (mapped, NAT64). `WEBHOOK_ALLOW_PRIVATE_TARGETS=true` (tests, a trusted network) lifts
/// the rule.
///
/// The check runs when an endpoint is registered and again before every attempt, and the
/// attempt is pinned to the address checked (`HTTPClientRequest.pinnedAddress`), so a name that
/// changes its answer (DNS rebinding) cannot send the request elsewhere.
struct WebhookTarget: Sendable {
    let allowPrivate: Bool

    /// Why a URL cannot be a webhook target.
    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    /// The URL's host and port, when it is an absolute `http(s)` URL without credentials.
    static func parse(_ text: String) throws(Refused) -> (host: String, port: Int) {
        guard text.utf8.count <= 2048, let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else { throw Refused(description: "The URL must be an absolute http or https URL.") }
        guard url.user == nil, url.password == nil else { throw Refused(description: "The URL must not carry credentials.") }
        guard url.fragment == nil else { throw Refused(description: "The URL must not have a fragment.") }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65_535).contains(port) else { throw Refused(description: "The port is out of range.") }
        // URLComponents keeps an IPv6 literal's brackets in `host` on some platforms.
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return (bare, port)
    }

    /// The address to send to: the host's first address, when every address it resolves to may
    /// be reached. Resolving blocks, so it runs on NIO's blocking-work thread pool.
    func address(of text: String) async throws -> String {
        let (host, port) = try Self.parse(text)
        let addresses = try await NIOThreadPool.singleton.runIfActive { try Self.resolve(host, port: port) }
        guard let first = addresses.first else { throw Refused(description: "The host \(host) does not resolve.") }
        if !allowPrivate, let blocked = addresses.first(where: { !Self.isPublic($0) }) {
            throw Refused(description: "The host resolves to \(blocked.description), which is not a public address.")
        }
        return first.description
    }

    /// One resolved address.
    enum Address: Equatable, CustomStringConvertible {
        case v4([UInt8])
        case v6([UInt8])

        var description: String {
            switch self {
            case .v4(let bytes): return bytes.map(String.init).joined(separator: ".")
            case .v6(let bytes):
                var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                var raw = in6_addr()
                withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes) }
                _ = inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
                return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
    }

    static func resolve(_ host: String, port: Int) throws -> [Address] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let result else { throw Refused(description: "The host \(host) does not resolve.") }
        defer { freeaddrinfo(result) }
        var addresses: [Address] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = result
        while let entry = cursor?.pointee {
            if entry.ai_family == AF_INET, let pointer = entry.ai_addr {
                let bytes = pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) } }
                addresses.append(.v4(bytes))
            } else if entry.ai_family == AF_INET6, let pointer = entry.ai_addr {
                let bytes = pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) } }
                addresses.append(.v6(bytes))
            }
            cursor = entry.ai_next
        }
        return addresses
    }

    /// True for a globally reachable unicast address.
    static func isPublic(_ address: Address) -> Bool {
        switch address {
        case .v4(let b):
            guard b.count == 4 else { return false }
            switch (b[0], b[1]) {
            case (0, _), (10, _), (127, _), (169, 254), (192, 168): return false
            case (100, 64...127): return false      // carrier-grade NAT
            case (172, 16...31): return false
            case (192, 0) where b[2] == 0 || b[2] == 2: return false  // IETF protocol assignments, TEST-NET-1
            case (198, 18...19): return false       // benchmarking
            case (198, 51) where b[2] == 100, (203, 0) where b[2] == 113: return false  // TEST-NET-2, -3
            case (224...255, _): return false       // multicast, reserved, broadcast
            default: return true
            }
        case .v6(let b):
            guard b.count == 16 else { return false }
            if b[0..<15].allSatisfy({ $0 == 0 }) { return false }                    // :: and ::1
            if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF {   // ::ffff:a.b.c.d
                return isPublic(.v4(Array(b[12..<16])))
            }
            if b[0] == 0x00, b[1] == 0x64, b[2] == 0xFF, b[3] == 0x9B {               // 64:ff9b::/96 (NAT64)
                return isPublic(.v4(Array(b[12..<16])))
            }
            if b[0] & 0xFE == 0xFC { return false }                                  // fc00::/7 unique local
            if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return false }                  // fe80::/10 link-local
            if b[0] == 0xFF { return false }                                         // multicast
            if b[0] == 0x20, b[1] == 0x01, b[2] == 0x0D, b[3] == 0xB8 { return false } // 2001:db8::/32 documentation
            return true
        }
    }
}
