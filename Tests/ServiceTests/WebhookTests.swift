import Contracts
import Crypto
import Foundation
import HTTPClient
import HTTPTypes
import Hummingbird
import Logging
@testable import Provisioning
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

/// A local webhook endpoint: records every request it gets and answers `status` (204 by default).
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        var id: String
        var timestamp: String
        var signature: String
        var body: [UInt8]

        var json: [String: JSONValue]? { try? JSONDecoder().decode([String: JSONValue].self, from: Data(body)) }
        var type: String? { json?["type"].flatMap { if case .string(let value) = $0 { value } else { nil } } }
    }

    let port: Int
    private let received = Mutex<[Received]>([])
    private let answer = Mutex<HTTPResponse.Status>(.noContent)
    private let running = Mutex<(ServiceGroup, Task<Void, Never>)?>(nil)

    init() throws {
        port = try freePort()
    }

    var url: String { "http://127.0.0.1:\(port)/hook" }
    var requests: [Received] { received.withLock { $0 } }

    func answer(_ status: HTTPResponse.Status) {
        answer.withLock { $0 = status }
    }

    func start() async throws {
        let router = Router()
        router.post("/hook") { [self] request, context -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let headers = request.headers
            received.withLock {
                $0.append(Received(id: headers[HTTPField.Name("webhook-id")!] ?? "", timestamp: headers[HTTPField.Name("webhook-timestamp")!] ?? "",
                                   signature: headers[HTTPField.Name("webhook-signature")!] ?? "", body: Array(buffer: body)))
            }
            return Response(status: answer.withLock { $0 })
        }
        var logger = Logger(label: "test.webhook-receiver")
        logger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task { _ = try? await group.run() }
        running.withLock { $0 = (group, task) }
        let client = try TestServices.client()
        defer { Task { await client.shutdown() } }
        let up = try await eventually {
            (try? await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/ping", timeout: .seconds(1)))) != nil
        }
        guard up else { throw ServiceProcessError(description: "the webhook receiver did not start") }
    }

    func stop() async {
        guard let (group, task) = running.withLock({ state in defer { state = nil }; return state }) else { return }
        await group.triggerGracefulShutdown()
        await task.value
    }

    /// The Standard Webhooks signature of a request, recomputed here from the secret: the
    /// documented HMAC-SHA256 over "{id}.{timestamp}.{body}" with the base64-decoded secret.
    static func expectedSignature(_ request: Received, secret: String) -> String? {
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))) else { return nil }
        let message = Data("\(request.id).\(request.timestamp).".utf8) + Data(request.body)
        return "v1," + Data(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))).base64EncodedString()
    }
}

@Suite("Lifecycle webhooks", .serialized)
struct WebhookTests {
    static let localTargets = [
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", "WEBHOOK_RETRY_BASE_MS": "100", "WEBHOOK_RETRY_MAX_MS": "300",
    ]

    static func register(_ platform: TestPlatform, _ developer: SignedInDeveloper, url: String,
                         events: [WebhookEvent]? = nil) async throws -> WebhookEndpoint {
        let answer = try await platform.projectsCall(.post, "/v1/webhooks", token: developer.accessToken, json: NewWebhookRequest(url: url, events: events))
        guard answer.status == 201 else { throw ServiceProcessError(description: "webhook not registered: \(answer)") }
        return try answer.decode(WebhookEndpoint.self)
    }

    static func newProject(_ platform: TestPlatform, _ developer: SignedInDeveloper, _ prefix: String) async throws -> UUID {
        let created = try await platform.projectsCall(.post, "/v1/projects", token: developer.accessToken,
                                                      json: NewProjectRequest(name: prefix, slug: TestDatabase.uniqueName(prefix)))
        return try created.decode(ProjectAccepted.self).projectId
    }

    static func deliveries(_ platform: TestPlatform, _ developer: SignedInDeveloper, _ endpoint: UUID) async throws -> [WebhookDelivery] {
        try await platform.projectsCall(.get, "/v1/webhooks/\(endpoint.uuidString.lowercased())/deliveries", token: developer.accessToken)
            .decode(WebhookDeliveryList.self).deliveries
    }

    @Test("ready, failed and deleted are delivered signed (Standard Webhooks); after the receiver was down they arrive with the same id and body; redelivery by hand")
    func deliveredSignedAndRetried() async throws {
        let receiver = try WebhookReceiver()
        try await receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTestPlatform(provisioning: Self.localTargets) { platform, _ in
            let dev = try await platform.registerDeveloper("hook")
            _ = try await platform.waitForProject(dev.firstProject, in: [.ready])
            let endpoint = try await Self.register(platform, dev, url: receiver.url)
            let secret = try #require(endpoint.secret)
            #expect(secret.hasPrefix("whsec_") && Set(endpoint.events) == Set(WebhookEvent.allCases))
            let listed = try await platform.projectsCall(.get, "/v1/webhooks", token: dev.accessToken).decode(WebhookEndpointList.self)
            #expect(listed.webhooks.map(\.id) == [endpoint.id] && listed.webhooks.allSatisfy { $0.secret == nil })

            // ready: one signed delivery naming the project.
            let first = try await Self.newProject(platform, dev, "hooked")
            try await waitUntil("the project.ready delivery reached the receiver") { receiver.requests.contains { $0.type == "project.ready" } }
            let ready = try #require(receiver.requests.first { $0.type == "project.ready" })
            #expect(ready.signature == WebhookReceiver.expectedSignature(ready, secret: secret))
            #expect(Int(ready.timestamp) != nil)
            #expect(ready.json?["data"] == .object([
                "project_id": .string(first.uuidString.lowercased()), "slug": ready.json?["data"]?.objectValue?["slug"] ?? .null,
                "name": .string("hooked"), "status": .string("ready"),
                "workflow_id": ready.json?["data"]?.objectValue?["workflow_id"] ?? .null,
            ]))

            // The receiver is down while a second project becomes ready: attempts fail and are
            // retried; once it is back, the event arrives.
            await receiver.stop()
            let second = try await Self.newProject(platform, dev, "while_down")
            _ = try await platform.waitForProject(second, in: [.ready])
            try await waitUntil("the down receiver's delivery failed at least twice") {
                try await Self.deliveries(platform, dev, endpoint.id).contains { $0.projectId == second && $0.attempts >= 2 && $0.lastError != nil }
            }
            try await receiver.start()
            try await waitUntil("the retried delivery was delivered") {
                try await Self.deliveries(platform, dev, endpoint.id).contains { $0.projectId == second && $0.status == .delivered }
            }
            #expect(receiver.requests.contains { $0.json?["data"]?.objectValue?["project_id"] == .string(second.uuidString.lowercased()) })

            // By hand: the first delivery again, same id and body.
            let delivered = try #require(try await Self.deliveries(platform, dev, endpoint.id).first { $0.projectId == first })
            let redeliver = try await platform.projectsCall(
                .post, "/v1/webhooks/\(endpoint.id.uuidString.lowercased())/deliveries/\(delivered.id.uuidString.lowercased())/redeliver",
                token: dev.accessToken)
            #expect(redeliver.status == 202)
            try await waitUntil("the redelivery reached the receiver") { receiver.requests.filter { $0.id == delivered.id.uuidString.lowercased() }.count >= 2 }

            // failed: storage is down for good, so the project fails, naming the step.
            await platform.stop("storage")
            let doomed = try await Self.newProject(platform, dev, "doomed")
            _ = try await platform.waitForProject(doomed, in: [.failed])
            try await waitUntil("the project.failed delivery reached the receiver") { receiver.requests.contains { $0.type == "project.failed" } }
            let failed = try #require(receiver.requests.first { $0.type == "project.failed" })
            #expect(failed.json?["data"]?.objectValue?["failed_step"] == .string("register_storage"))
            #expect(failed.signature == WebhookReceiver.expectedSignature(failed, secret: secret))
            try await platform.start(["storage"])

            // deleted.
            #expect(try await platform.projectsCall(.delete, ProjectOwnerTests.path(first), token: dev.accessToken).status == 202)
            try await waitUntil("the project.deleted delivery reached the receiver") { receiver.requests.contains { $0.type == "project.deleted" } }

            // Every request of one webhook-id carried the same body, and every one verifies.
            let byID = Dictionary(grouping: receiver.requests, by: \.id)
            #expect(byID.values.allSatisfy { Set($0.map(\.body)).count == 1 })
            #expect(receiver.requests.allSatisfy { $0.signature == WebhookReceiver.expectedSignature($0, secret: secret) })
        }
    }

    @Test("an endpoint that keeps failing is disabled with a reason; enabling it resumes; another developer's endpoint is 404")
    func disabledAfterFailures() async throws {
        let receiver = try WebhookReceiver()
        try await receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.answer(.internalServerError)
        try await withTestPlatform(provisioning: Self.localTargets.merging(["WEBHOOK_DISABLE_AFTER_FAILURES": "3"]) { $1 }) { platform, _ in
            let dev = try await platform.registerDeveloper("flaky")
            let endpoint = try await Self.register(platform, dev, url: receiver.url, events: [.projectReady])
            _ = try await Self.newProject(platform, dev, "flaky")
            try await waitUntil("the failing endpoint was disabled") {
                let list = try await platform.projectsCall(.get, "/v1/webhooks", token: dev.accessToken).decode(WebhookEndpointList.self)
                return list.webhooks.first?.disabledAt != nil
            }
            let disabled = try #require(try await platform.projectsCall(.get, "/v1/webhooks", token: dev.accessToken)
                .decode(WebhookEndpointList.self).webhooks.first)
            #expect(disabled.disabledReason?.contains("HTTP 500") == true, "\(disabled.disabledReason ?? "")")
            let delivery = try #require(try await Self.deliveries(platform, dev, endpoint.id).first)
            let path = "/v1/webhooks/\(endpoint.id.uuidString.lowercased())"
            let refused = try await platform.projectsCall(.post, path + "/deliveries/\(delivery.id.uuidString.lowercased())/redeliver", token: dev.accessToken)
            #expect(refused.status == 409 && refused.errorEnvelope?.error.code == "endpoint_disabled")

            // Another developer sees none of it.
            let bob = try await platform.registerDeveloper("bobhook")
            #expect(try await platform.projectsCall(.get, path + "/deliveries", token: bob.accessToken).status == 404)
            #expect(try await platform.projectsCall(.delete, path, token: bob.accessToken).status == 404)
            #expect(try await platform.projectsCall(.get, "/v1/webhooks", token: bob.accessToken).decode(WebhookEndpointList.self).webhooks.isEmpty)

            // Fixed and enabled: a redelivery now arrives.
            receiver.answer(.ok)
            let enabled = try await platform.projectsCall(.post, path + "/enable", token: dev.accessToken)
            let enabledEndpoint = try enabled.decode(WebhookEndpoint.self)
            #expect(enabled.status == 200 && enabledEndpoint.disabledAt == nil)
            #expect(try await platform.projectsCall(.post, path + "/deliveries/\(delivery.id.uuidString.lowercased())/redeliver",
                                                    token: dev.accessToken).status == 202)
            try await waitUntil("the redelivery after enabling was delivered") {
                try await Self.deliveries(platform, dev, endpoint.id).first { $0.id == delivery.id }?.status == .delivered
            }
            #expect(try await platform.projectsCall(.delete, path, token: dev.accessToken).status == 204)
        }
    }

    @Test("loopback, private, link-local and non-http targets are refused (SSRF) unless the operator allows them")
    func ssrfTargetsRefused() async throws {
        try await withTestPlatform { platform, _ in
            let dev = try await platform.registerDeveloper("ssrf")
            for url in ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/", "http://169.254.169.254/latest/meta-data",
                        "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://192.168.0.10/", "ftp://example.com/", "http://user:pw@127.0.0.1/",
                        "not a url"] {
                let answer = try await platform.projectsCall(.post, "/v1/webhooks", token: dev.accessToken, json: NewWebhookRequest(url: url))
                #expect(answer.status == 422 && answer.errorEnvelope?.error.field == "url", "\(url): \(answer)")
            }
            #expect(try await platform.projectsCall(.get, "/v1/webhooks", token: dev.accessToken).decode(WebhookEndpointList.self).webhooks.isEmpty)
        }
        // The address rules themselves.
        let allowed: [WebhookTarget.Address] = [.v4([93, 184, 216, 34]), .v4([8, 8, 8, 8]), .v6([0x26, 0x06, 0x47, 0] + Array(repeating: 0, count: 11) + [1])]
        let refused: [WebhookTarget.Address] = [
            .v4([127, 0, 0, 1]), .v4([10, 0, 0, 1]), .v4([172, 16, 0, 1]), .v4([192, 168, 1, 1]), .v4([169, 254, 169, 254]),
            .v4([100, 64, 0, 1]), .v4([0, 0, 0, 0]), .v4([224, 0, 0, 1]), .v4([255, 255, 255, 255]),
            .v6(Array(repeating: 0, count: 15) + [1]), .v6([0xFE, 0x80] + Array(repeating: 0, count: 14)), .v6([0xFD] + Array(repeating: 0, count: 15)),
            .v6(Array(repeating: 0, count: 10) + [0xFF, 0xFF, 127, 0, 0, 1]), .v6([0, 0x64, 0xFF, 0x9B] + Array(repeating: 0, count: 8) + [10, 0, 0, 1]),
        ]
        #expect(allowed.allSatisfy(WebhookTarget.isPublic))
        #expect(refused.allSatisfy { !WebhookTarget.isPublic($0) })
    }
}

extension JSONValue {
    var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }
}
