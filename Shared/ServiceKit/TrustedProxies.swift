#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import HTTPTypes
import Hummingbird

/// The reverse proxies whose `X-Forwarded-For` a service believes (`TRUSTED_PROXIES`: IPs or
/// CIDR blocks, comma-separated; none by default).
///
/// Behind a load balancer or ingress every request comes from the proxy, so a per-address limit
/// would throttle everyone together. The client is therefore the right-most `X-Forwarded-For`
/// address that is not itself a trusted proxy, walking left only across trusted hops: a client
/// can prepend anything to the header, but cannot forge what the trusted proxies appended.
/// From an untrusted peer, the header is ignored.
public struct TrustedProxies: Sendable {
    struct Network: Sendable, Equatable {
        var bytes: [UInt8]
        var prefix: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            var remaining = prefix
            for (a, b) in zip(address, bytes) where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                guard a & mask == b & mask else { return false }
                remaining -= bits
            }
            return true
        }
    }

    let networks: [Network]

    public static let none = TrustedProxies(networks: [])

    init(networks: [Network]) {
        self.networks = networks
    }

    /// Parses `10.0.0.0/8, 192.168.1.7, fd00::/8`; throws `ConfigurationError` naming a bad entry.
    public init(_ list: String) throws {
        var networks: [Network] = []
        for entry in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
            guard let bytes = Self.parse(parts[0]) else {
                throw ConfigurationError(description: "TRUSTED_PROXIES: \"\(entry)\" is not an IP address or CIDR block")
            }
            let prefix = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
            guard let prefix, (0...(bytes.count * 8)).contains(prefix) else {
                throw ConfigurationError(description: "TRUSTED_PROXIES: \"\(entry)\" has an invalid prefix length")
            }
            networks.append(Network(bytes: bytes, prefix: prefix))
        }
        self.networks = networks
    }

    /// From the service's `TRUSTED_PROXIES`.
    public init(configuration: ServiceConfiguration) throws {
        try self.init(configuration.value("TRUSTED_PROXIES") ?? "")
    }

    public func isTrusted(_ address: String) -> Bool {
        guard let bytes = Self.parse(address) else { return false }
        return networks.contains { $0.contains(bytes) }
    }

    /// The client's address for `peer` (the TCP peer) and the request's `X-Forwarded-For`
    /// values, in order.
    public func clientAddress(peer: String, forwardedFor: [String]) -> String {
        guard !networks.isEmpty, isTrusted(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        var client = peer
        for hop in hops.reversed() {
            guard Self.parse(hop) != nil else { return client }  // garbage: stop at the last good hop
            client = hop
            if !isTrusted(hop) { return hop }
        }
        return client
    }

    public func clientAddress(_ request: Request, context: PlatformRequestContext) -> String {
        clientAddress(peer: context.clientAddress, forwardedFor: request.headers[values: Self.forwardedFor])
    }

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    /// An IPv4 (4 bytes) or IPv6 (16 bytes) address; IPv4-mapped IPv6 becomes IPv4.
    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }
}
