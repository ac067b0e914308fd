import ServiceKit
import Testing

@Suite("Trusted proxies")
struct TrustedProxiesTests {
    @Test("CIDR blocks and single addresses, IPv4 and IPv6; the client is the right-most untrusted X-Forwarded-For hop")
    func clientAddress() throws {
        let proxies = try TrustedProxies("10.0.0.0/8, 192.168.1.7, fd00::/8")
        #expect(proxies.isTrusted("10.200.3.4") && proxies.isTrusted("192.168.1.7") && proxies.isTrusted("fd12::1"))
        #expect(!proxies.isTrusted("192.168.1.8") && !proxies.isTrusted("11.0.0.1") && !proxies.isTrusted("fe80::1") && !proxies.isTrusted("nonsense"))
        #expect(proxies.isTrusted("::ffff:10.1.1.1"))  // IPv4-mapped

        // From an untrusted peer the header is ignored.
        #expect(proxies.clientAddress(peer: "203.0.113.5", forwardedFor: ["198.51.100.1"]) == "203.0.113.5")
        // Through trusted hops, the last untrusted address is the client, whatever was prepended.
        #expect(proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["1.2.3.4, 198.51.100.1, 10.9.9.9"]) == "198.51.100.1")
        #expect(proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["1.2.3.4", "198.51.100.1"]) == "198.51.100.1")
        // No header, or only trusted hops: the left-most trusted hop stands in.
        #expect(proxies.clientAddress(peer: "10.0.0.1", forwardedFor: []) == "10.0.0.1")
        #expect(proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["10.0.0.2"]) == "10.0.0.2")
        // Garbage stops the walk at the last good hop.
        #expect(proxies.clientAddress(peer: "10.0.0.1", forwardedFor: ["198.51.100.1, garbage"]) == "10.0.0.1")
        // Nothing configured: the peer, always.
        #expect(TrustedProxies.none.clientAddress(peer: "10.0.0.1", forwardedFor: ["198.51.100.1"]) == "10.0.0.1")
    }

    @Test("a bad entry is a configuration error naming it")
    func badEntries() {
        for entry in ["10.0.0.0/33", "not-an-ip", "fd00::/129", "10.0.0.1/x"] {
            #expect(throws: ConfigurationError.self, "\(entry)") { try TrustedProxies(entry) }
        }
    }
}
