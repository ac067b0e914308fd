import HTTPClient
import Hummingbird
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Request context that remembers which client connection (remote port) a request came in on,
/// so tests can count the distinct connections the client opened.
struct ConnectionTrackingContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remotePort: Int?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remotePort = source.channel.remoteAddress?.port
    }
}

typealias TestRouter = Router<ConnectionTrackingContext>

/// What a test server observed, per path.
actor ServerLog {
    private(set) var hits: [String: Int] = [:]
    private(set) var remotePorts: Set<Int> = []
    private(set) var requestIDs: [String] = []

    /// Records a request and returns how many requests `path` has seen, this one included.
    @discardableResult
    func record(_ request: Request, context: ConnectionTrackingContext) -> Int {
        let path = request.uri.path
        self.hits[path, default: 0] += 1
        if let port = context.remotePort {
            self.remotePorts.insert(port)
        }
        if let id = request.headers[requestIDField] {
            self.requestIDs.append(id)
        }
        return self.hits[path]!
    }

    /// Records an event under a name of the test's choosing (a handler reaching its end, say).
    func record(path: String) {
        self.hits[path, default: 0] += 1
    }

    func hits(_ path: String) -> Int {
        self.hits[path] ?? 0
    }

    /// Requests being handled right now, and the most there ever were at once: with HTTP/1.1
    /// (no pipelining) each needs a connection of its own, so this bounds the connections
    /// open at the same time.
    private(set) var inFlight = 0
    private(set) var mostInFlight = 0

    func began() {
        inFlight += 1
        mostInFlight = max(mostInFlight, inFlight)
    }

    func ended() {
        inFlight -= 1
    }
}

/// `HTTPTypes.HTTPField` is not re-exported by Hummingbird; reach its `Name` through `HTTPFields`.
typealias HeaderName = HTTPFields.Element.Name

let requestIDField = HeaderName("X-Request-Id")!

/// Runs `body` against a live Hummingbird server on 127.0.0.1 (ephemeral port), configured by
/// `routes`, and stops the server afterwards. `body` receives the base URL.
@discardableResult
func withTestServer<Result: Sendable>(
    _ routes: (TestRouter, ServerLog) -> Void,
    _ body: @Sendable (_ baseURL: String, _ log: ServerLog) async throws -> Result
) async throws -> Result {
    let log = ServerLog()
    let router = TestRouter(context: ConnectionTrackingContext.self)
    routes(router, log)

    var logger = Logger(label: "test-server")
    logger.logLevel = .critical
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        },
        logger: logger
    )

    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            try await app.runService(gracefulShutdownSignals: [])
        }
        defer { group.cancelAll() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        try #require(port > 0)
        return try await body("http://127.0.0.1:\(port)", log)
    }
}

/// Runs `body` with a client that is shut down afterwards, whatever happens.
@discardableResult
func withClient<Result: Sendable>(
    _ configuration: HTTPClientConfiguration = .init(),
    _ body: @Sendable (CurlHTTPClient) async throws -> Result
) async throws -> Result {
    var logger = Logger(label: "test-client")
    logger.logLevel = .critical
    let client = try CurlHTTPClient(configuration: configuration, logger: logger)
    do {
        let result = try await body(client)
        await client.shutdown()
        return result
    } catch {
        await client.shutdown()
        throw error
    }
}

/// A TCP port on 127.0.0.1 that is bound but not listening, so connecting to it is refused. The
/// port stays reserved (no other test can grab it) until `body` returns.
func withRefusingPort<Result>(_ body: (Int) async throws -> Result) async throws -> Result {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    try #require(fd >= 0)
    defer { close(fd) }

    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
        }
    }
    try #require(bound)
    return try await body(Int(UInt16(bigEndian: address.sin_port)))
}

/// A JSON body with one string (Hummingbird sends a bare `String` as text/plain, not JSON).
struct Message: ResponseCodable, Equatable {
    var value: String
    init(_ value: String) { self.value = value }
}

/// The fast retry policy the tests use (delays of milliseconds, not seconds).
extension RetryPolicy {
    static func fast(attempts: Int = 4) -> RetryPolicy {
        RetryPolicy(maxAttempts: attempts, baseDelay: .milliseconds(5), maxDelay: .milliseconds(50))
    }
}

extension Response {
    /// A JSON response with the given status.
    static func json(_ status: HTTPResponse.Status, _ json: String, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
    }
}
