import Auth
import Foundation
import HTTPClient
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Provisioning
import Realtime
import ServiceKit
import Storage
import TestSupport
import Testing

/// A service built by its library's own `buildApplication` and driven through Hummingbird's
/// router test framework (`app.test(.router)`): requests go straight to the router, no socket,
/// while the application's services (pool, migrations, the orchestrator) run as they do in
/// production. Answers come back as the HTTP kit's `HTTPClientResponse`, so tests read them the
/// same way whichever way they reach a service.
struct RouterClient: Sendable {
    let client: any TestClientProtocol

    func execute(
        _ method: HTTPMethod, _ path: String, headers: HTTPClientHeaders = [:], body: [UInt8]? = nil
    ) async throws -> HTTPClientResponse {
        var fields = HTTPFields()
        for (name, value) in headers {
            guard let name = HTTPField.Name(name) else { throw ServiceProcessError(description: "bad header name \(name)") }
            fields.append(HTTPField(name: name, value: value))
        }
        let response = try await client.execute(
            uri: path, method: HTTPRequest.Method(rawValue: method.rawValue) ?? .get, headers: fields,
            body: body.map { ByteBuffer(bytes: $0) }
        )
        return HTTPClientResponse(
            status: response.status.code,
            headers: HTTPClientHeaders(response.headers.map { ($0.name.canonicalName, $0.value) }),
            body: Array(response.body.readableBytesView)
        )
    }
}

/// Builds `service` from `environment` (on top of the test process's, with the test service
/// token), waits until `/ready` answers 200 (its migrations are applied), and runs `body`
/// against its router.
func withRouterTest(
    _ service: ServiceName,
    environment extra: [String: String],
    _ body: @escaping @Sendable (RouterClient) async throws -> Void
) async throws {
    var environment = ProcessInfo.processInfo.environment
    environment["INTERNAL_SERVICE_TOKEN"] = TestServices.internalToken
    environment["SIGNING_KEY_ENCRYPTION_KEY"] = TestServices.signingKeyEncryptionKey
    environment["LOG_LEVEL"] = environment["TEST_SERVICE_LOG_LEVEL"] ?? "warning"
    for (key, value) in extra { environment[key] = value }
    let configuration = try ServiceConfiguration(service: service, environment: environment)
    let test: @Sendable (any TestClientProtocol) async throws -> Void = { client in
        let router = RouterClient(client: client)
        let ready = try await eventually(timeout: .seconds(30)) { try await router.execute(.get, "/ready").status == 200 }
        try #require(ready, "\(service.rawValue) did not become ready")
        try await body(router)
    }
    switch service {
    case .auth: try await Auth.buildApplication(configuration).test(.router, test)
    case .provisioning: try await Provisioning.buildApplication(configuration).test(.router, test)
    case .realtime: try await Realtime.buildApplication(configuration).test(.router, test)
    case .storage: try await Storage.buildApplication(configuration).test(.router, test)
    }
}
