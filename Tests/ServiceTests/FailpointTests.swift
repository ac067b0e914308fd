@testable import Provisioning
import ServiceKit
import TestSupport
import Testing

/// The fault campaign's test-only failpoint (`PROVISIONING_FAILPOINT`): off by default, parsed
/// strictly at start-up, and firing only where it was told to.
@Suite("Provisioning failpoint")
struct FailpointTests {
    func settings(_ environment: [String: String]) throws -> ProvisioningSettings {
        try ProvisioningSettings(ServiceConfiguration(service: .provisioning,
                                                      environment: TestServices.requiredEnvironment.merging(environment) { $1 }))
    }

    @Test("off unless PROVISIONING_FAILPOINT is set; the call timeout defaults to 10 s")
    func offByDefault() throws {
        let defaults = try settings([:])
        #expect(defaults.failpoint == nil)
        #expect(defaults.callTimeout == .seconds(10))
        #expect(try settings(["PROVISIONING_CALL_TIMEOUT_MS": "3000"]).callTimeout == .seconds(3))
    }

    @Test("after_effect:<step or *>:<probability> is parsed; anything else stops the start-up")
    func parsing() throws {
        #expect(try settings(["PROVISIONING_FAILPOINT": "after_effect:register_auth:0.5"]).failpoint
            == Failpoint(step: "register_auth", probability: 0.5))
        #expect(try settings(["PROVISIONING_FAILPOINT": "after_effect:*:1"]).failpoint == Failpoint(step: "*", probability: 1))
        for bad in ["after_effect", "after_effect:register_auth", "before_effect:register_auth:0.5", "after_effect::0.5",
                    "after_effect:register_auth:1.5", "after_effect:register_auth:-0.1", "after_effect:register_auth:often",
                    "after_effect:register_auth:0.5:extra"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try settings(["PROVISIONING_FAILPOINT": bad]) }
        }
    }

    @Test("fires only after the step it names (or any, for *), with its probability")
    func firing() {
        let always = Failpoint(step: "register_storage", probability: 1)
        #expect(always.fires(after: "register_storage"))
        #expect(!always.fires(after: "register_auth"))
        #expect(Failpoint(step: "*", probability: 1).fires(after: "deregister_auth"))
        #expect(!(0..<100).contains { _ in Failpoint(step: "*", probability: 0).fires(after: "activate") })
    }
}
