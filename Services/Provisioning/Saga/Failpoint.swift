#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ServiceKit

/// A test-only crash point for the fault campaign (`deploy/scripts/chaos.sh`), off unless
/// `PROVISIONING_FAILPOINT` is set; never set it in a deployment.
///
/// `after_effect:<step>:<probability>` kills the process with SIGKILL, with that probability
/// (0…1), right after a step's side effect returned and before the ledger records its outcome:
/// the step stays `running` with its effect done, the "unknown outcome" a crash can leave, on
/// purpose. `<step>` is a step row's name (`register_auth`, `deregister_storage`, …; a
/// compensation runs under its step's name) or `*` for every step. Read once at start-up.
struct Failpoint: Sendable, Equatable {
    var step: String
    var probability: Double

    init(step: String, probability: Double) {
        self.step = step
        self.probability = probability
    }

    init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, parts[0] == "after_effect", !parts[1].isEmpty,
              let probability = Double(parts[2]), (0...1).contains(probability)
        else {
            throw ConfigurationError(description: "PROVISIONING_FAILPOINT must be after_effect:<step or *>:<probability 0...1>")
        }
        self.init(step: parts[1], probability: probability)
    }

    /// Whether this failpoint fires after `step`'s effect (one draw per call).
    func fires(after step: String) -> Bool {
        (self.step == "*" || self.step == step) && Double.random(in: 0..<1) < probability
    }

    /// Ends the process at once, as SIGKILL would: nothing is flushed, handed back or recorded.
    static func crash() -> Never {
        kill(getpid(), SIGKILL)
        _exit(137)  // not reached: SIGKILL cannot be caught
    }
}
