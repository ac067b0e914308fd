import Hummingbird
import ServiceKit
import TestSupport

/// Runs the application built from `runtime` and `router` on 127.0.0.1 (port 0) for as long as
/// `body` runs, handing `body` its base URL; the server stops afterwards whatever happens.
func withRunningApplication(
    runtime: ServiceRuntime,
    router: Router<PlatformRequestContext>,
    _ body: (String) async throws -> Void
) async throws {
    let (ports, portContinuation) = AsyncStream<Int>.makeStream()
    let app = runtime.makeApplication(router: router) { port in portContinuation.yield(port) }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.runService(gracefulShutdownSignals: []) }
        do {
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw ServiceProcessError(description: "server did not start") }
            try await body("http://127.0.0.1:\(port)")
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
    }
}
