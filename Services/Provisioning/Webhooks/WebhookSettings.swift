import Resilience
import ServiceKit

/// The webhook settings, from the environment.
struct WebhookSettings: Sendable {
    /// `WEBHOOK_ALLOW_PRIVATE_TARGETS`: `true` lets endpoints point at loopback and private
    /// addresses (tests, a trusted network); `false` by default.
    var allowPrivateTargets: Bool
    /// `WEBHOOK_TIMEOUT_MS`: the longest one attempt may take [10 s].
    var timeout: Duration
    /// `WEBHOOK_RETRY_BASE_MS` / `WEBHOOK_RETRY_MAX_MS`: capped exponential backoff with full
    /// jitter between attempts [5 s, 1 h].
    var backoff: Backoff
    /// `WEBHOOK_RETRY_SECONDS`: how long after the event a delivery is still attempted [24 h].
    var retryWindow: Duration
    /// `WEBHOOK_DISABLE_AFTER_FAILURES`: failed attempts in a row that disable an endpoint [50].
    var disableAfter: Int

    init(_ configuration: ServiceConfiguration) throws {
        switch configuration.value("WEBHOOK_ALLOW_PRIVATE_TARGETS") ?? "false" {
        case "true": allowPrivateTargets = true
        case "false": allowPrivateTargets = false
        default: throw ConfigurationError(description: "WEBHOOK_ALLOW_PRIVATE_TARGETS must be true or false")
        }
        timeout = .milliseconds(try configuration.integer("WEBHOOK_TIMEOUT_MS", default: 10_000, range: 100...120_000))
        backoff = Backoff(base: .milliseconds(try configuration.integer("WEBHOOK_RETRY_BASE_MS", default: 5_000, range: 1...3_600_000)),
                          cap: .milliseconds(try configuration.integer("WEBHOOK_RETRY_MAX_MS", default: 3_600_000, range: 1...86_400_000)))
        retryWindow = .seconds(try configuration.integer("WEBHOOK_RETRY_SECONDS", default: 86_400, range: 1...604_800))
        disableAfter = try configuration.integer("WEBHOOK_DISABLE_AFTER_FAILURES", default: 50, range: 1...10_000)
    }
}
