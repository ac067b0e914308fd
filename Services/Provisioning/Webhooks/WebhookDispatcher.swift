import Foundation
import HTTPClient
import Logging
import Postgres
import Resilience
import ServiceKit
import ServiceLifecycle

/// Delivers the webhook outbox: claims due deliveries (`FOR UPDATE SKIP LOCKED`, so instances
/// share the work and each delivery has one sender at a time), POSTs each one's fixed payload
/// with the Standard Webhooks headers through the libcurl kit, pinned to the address the SSRF
/// check approved, and records the outcome: delivered on 2xx; otherwise due again after a
/// capped, jittered backoff until `WEBHOOK_RETRY_SECONDS` after the event (24 h), then failed.
/// Delivery is at least once: an instance that dies mid-attempt leaves the claim to lapse and
/// the delivery is sent again, under the same `webhook-id`.
///
/// Woken by NOTIFY `provisioning_webhooks` (written with the deliveries) and polled every
/// `PROVISIONING_POLL_MS` for retries that came due.
struct WebhookDispatcher: Service {
    let store: WebhookStore
    let client: CurlHTTPClient
    let target: WebhookTarget
    let settings: WebhookSettings
    let pollInterval: Duration
    let listener: PostgresListener
    let readiness: Readiness
    let logger: Logger
    let doorbell = Doorbell()
    /// Deliveries attempted at once by this instance.
    let batch = 16

    func run() async throws {
        _ = await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in listener.notifications(on: WebhookStore.channel) { doorbell.ring() }
                }
                group.addTask { await dispatch() }
                await group.next()
                group.cancelAll()
            }
        }
    }

    private func dispatch() async {
        let loop = ClaimLoop(readiness: readiness, doorbell: doorbell, pollInterval: pollInterval, backoff: settings.backoff)
        await loop.run(failed: { error in
            logger.warning("could not claim webhook deliveries", metadata: ["error": "\(error)"])
        }) {
            let due = try await store.claimDue(limit: batch, lease: settings.timeout + .seconds(30))
            await withTaskGroup(of: Void.self) { group in
                for delivery in due { group.addTask { await deliver(delivery) } }
            }
            return !due.isEmpty
        }
    }

    private func deliver(_ delivery: WebhookStore.Claimed) async {
        var logger = logger
        logger[metadataKey: "webhook.delivery"] = "\(delivery.id.uuidString.lowercased())"
        logger[metadataKey: "webhook.endpoint"] = "\(delivery.endpoint.uuidString.lowercased())"
        if let reason = delivery.disabledReason {
            await record(delivery, status: nil, error: "The endpoint is disabled: \(reason)", final: true, logger: logger)
            return
        }
        let id = delivery.id.uuidString.lowercased()
        let body = Array(delivery.payload.utf8)
        let timestamp = Int(Date().timeIntervalSince1970)
        guard let signature = WebhookSignature.sign(id: id, timestamp: timestamp, body: body, secret: delivery.secret) else {
            await record(delivery, status: nil, error: "The endpoint's secret is unusable.", final: true, logger: logger)
            return
        }
        do {
            let address = try await target.address(of: delivery.url)
            let response = try await client.execute(HTTPClientRequest(
                method: .post, url: delivery.url,
                headers: HTTPClientHeaders([
                    ("Content-Type", "application/json"), ("User-Agent", "swift-tenant-platform-webhooks/1"),
                    ("webhook-id", id), ("webhook-timestamp", String(timestamp)), ("webhook-signature", signature),
                ]),
                body: body, timeout: settings.timeout, idempotent: false, pinnedAddress: address
            ))
            if (200..<300).contains(response.status) {
                try await store.delivered(delivery, status: response.status)
                logger.info("webhook delivered", metadata: ["http.status": "\(response.status)", "attempt": "\(delivery.attempts)"])
            } else {
                await record(delivery, status: response.status, error: "The endpoint answered HTTP \(response.status).", final: false, logger: logger)
            }
        } catch let refused as WebhookTarget.Refused {
            await record(delivery, status: nil, error: refused.description, final: false, logger: logger)
        } catch let error as HTTPClientError {
            await record(delivery, status: nil, error: error.platformDescription, final: false, logger: logger)
        } catch {
            logger.warning("could not record a webhook delivery", metadata: ["error": "\(error)"])
        }
    }

    private func record(_ delivery: WebhookStore.Claimed, status: Int?, error: String, final: Bool, logger: Logger) async {
        let retryIn = settings.backoff.delay(beforeRetry: delivery.attempts)
        do {
            try await store.failed(delivery, status: status, error: String(error.prefix(500)), retryIn: retryIn, window: settings.retryWindow,
                                   final: final, disableAfter: settings.disableAfter)
            logger.info("webhook attempt failed", metadata: ["attempt": "\(delivery.attempts)", "error": "\(error)", "retry_in": "\(retryIn)"])
        } catch {
            logger.warning("could not record a failed webhook attempt; its claim lapses and it is retried", metadata: ["error": "\(error)"])
        }
    }
}
