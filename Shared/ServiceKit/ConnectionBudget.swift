import HummingbirdCore
import Logging
import Prometheus

/// At most `limit` connections open at once (`HTTP_MAX_CONNECTIONS`): at the limit the server
/// stops accepting, so new connections wait in the kernel's listen backlog (and are refused once
/// it is full) instead of each costing the process a socket, buffers and a task. The count is
/// published as the gauge `http_connections{state="open"}` beside `{state="limit"}`.
///
/// Hummingbird's accept loop calls these methods on one event loop, in order.
struct ConnectionBudget: AvailableConnectionsDelegate {
    let limit: Int
    private var open = 0
    private let openGauge: Gauge
    private let logger: Logger

    init(limit: Int, metrics: PlatformMetrics, logger: Logger) {
        self.limit = limit
        self.logger = logger
        let descriptor = MetricNameDescriptor(metricName: "http_connections", unitName: "", helpText: "HTTP connections open, and the most the server holds")
        openGauge = metrics.registry.makeGauge(descriptor: descriptor, labels: [("state", "open")])
        metrics.registry.makeGauge(descriptor: descriptor, labels: [("state", "limit")]).set(Double(limit))
    }

    mutating func connectionOpened() {
        open += 1
        openGauge.set(Double(open))
        if open == limit {
            logger.warning("connection limit reached; new connections wait until one closes", metadata: ["http.max_connections": "\(limit)"])
        }
    }

    mutating func connectionClosed() {
        open -= 1
        openGauge.set(Double(open))
    }

    func isAcceptingNewConnections() -> Bool {
        open < limit
    }
}
