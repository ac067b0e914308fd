import Foundation
import Logging
import Prometheus
import Synchronization
import TenantKit

/// What every socket and route of one replica shares.
struct RealtimeServices: Sendable {
    let replica: UUID
    let settings: RealtimeSettings
    let hub: ChannelHub
    let broadcasts: BroadcastStore
    let presence: PresenceStore
    let limiter: RealtimeLimiter
    let tenants: RealtimeTenants
    let projects: ProjectResolver
    let credentials: any TenantCredentialResolver
    let counter: SubscriptionCounter
    let metrics: RealtimeMetrics
    let logger: Logger

    /// A replica-unique subscription id.
    func nextSubscriptionID() -> String {
        replica.uuidString.lowercased().prefix(8) + ":" + String(counter.next())
    }
}

final class SubscriptionCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).newValue }
}

/// Realtime's own instruments at `/metrics`.
struct RealtimeMetrics: Sendable {
    /// Websockets open on this replica.
    let sockets: Gauge
    /// Sockets closed because they did not read fast enough.
    let slowConsumers: Counter

    init(registry: PrometheusCollectorRegistry) {
        sockets = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "realtime_sockets", unitName: "open",
                                                                      helpText: "Websockets open on this replica"))
        slowConsumers = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "realtime_slow_consumers_closed", unitName: "total",
                                                                              helpText: "Sockets closed for not reading fast enough"))
    }
}
