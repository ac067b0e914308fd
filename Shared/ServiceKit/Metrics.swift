import Hummingbird
import Postgres
import Prometheus

/// The service's Prometheus registry and the instruments every service shares.
///
/// One registry per application (not the process-global `MetricsSystem`), so several
/// applications can live in one test process without sharing counters.
public final class PlatformMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let poolOpen: Gauge
    private let poolIdle: Gauge
    private let poolInUse: Gauge
    private let poolWaiting: Gauge

    /// Request latency buckets, 1 ms … 10 s.
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    public init() {
        let connections = MetricNameDescriptor(metricName: "db_pool", unitName: "connections", helpText: "Database pool connections")
        poolOpen = registry.makeGauge(descriptor: connections, labels: [("state", "open")])
        poolIdle = registry.makeGauge(descriptor: connections, labels: [("state", "idle")])
        poolInUse = registry.makeGauge(descriptor: connections, labels: [("state", "in_use")])
        poolWaiting = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "db_pool_waiting", unitName: "", helpText: "Leases waiting for a database connection"))
    }

    func recordRequest(method: String, route: String, status: Int, duration: Duration) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(metricName: "http_requests", unitName: "total", helpText: "HTTP requests answered, by route pattern and status"),
            labels: [("method", method), ("route", route), ("status", String(status))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(metricName: "http_request_duration", unitName: "seconds", helpText: "HTTP request latency, by route pattern"),
            labels: [("method", method), ("route", route)],
            buckets: Self.latencyBuckets
        ).record(duration)
    }

    /// Renders the registry in the Prometheus text format, pool gauges refreshed first.
    public func render(pool: PostgresPool?) -> String {
        if let pool {
            let statistics = pool.statistics
            poolOpen.set(Double(statistics.open))
            poolIdle.set(Double(statistics.idle))
            poolInUse.set(Double(statistics.inUse))
            poolWaiting.set(Double(statistics.waiting))
        }
        return registry.emitToString()
    }
}

/// Counts requests and records their latency by route pattern (`/v1/projects/{id}`, not the
/// raw path, so ids do not explode the label set; unmatched paths share Hummingbird's
/// `NotFound` label).
public struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: PlatformMetrics

    public init(metrics: PlatformMetrics) {
        self.metrics = metrics
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        metrics.recordRequest(
            method: request.method.rawValue,
            route: context.endpointPath ?? "unmatched",
            status: Int(response.status.code),
            duration: ContinuousClock.now - started
        )
        return response
    }
}
