import Foundation
import HTTPTypes
import Hummingbird
import WSCore
import Logging
import NIOCore
import NIOWebSocket
import ServiceKit
import Synchronization
import TenantKit

/// `GET /realtime/v1/websocket?apikey=…&vsn=…`: the Phoenix-channels socket
/// (docs/realtime.md).
///
/// The upgrade is decided by `shouldUpgrade` (`WebSocketUpgradeChannel`): a request whose
/// project, key and `vsn` check out, and whose project has room for another socket, is
/// upgraded. Any other request goes on to the HTTP route of the same path, which answers why,
/// as Supabase does: `{"error": "…"}` with 401, 403, 404 or 429 (or 400 for a request that is
/// no websocket upgrade at all).
struct RealtimeSocketController: Sendable {
    let services: RealtimeServices

    static let path = "/realtime/v1/websocket"

    /// What an accepted upgrade found: the caller and its frame form.
    struct Accepted: Sendable {
        var caller: RealtimeAccess.Caller
        var serializer: PhoenixSerializer
    }

    /// The upgrade's checks, shared by the upgrade and the HTTP route: the caller, or the refusal.
    func accept(_ request: Request) async throws -> Accepted {
        guard let serializer = PhoenixSerializer(vsn: request.uri.queryParameters.get("vsn")) else {
            throw RealtimeError(.badRequest, "Unsupported vsn: use 1.0.0 or 2.0.0")
        }
        let caller = try await RealtimeAccess(services: services).caller(request)
        guard services.limiter.openSockets(caller.tenant.registered.id) < caller.tenant.limits.concurrentUsers else {
            throw RealtimeError(.tooManyRequests, "Too many connected users")
        }
        return Accepted(caller: caller, serializer: serializer)
    }

    /// The server's upgrade decision (`WebSocketUpgradeChannel`): the socket's handler, or nil
    /// for the HTTP route to answer the request.
    func shouldUpgrade(_ request: Request, channel: any Channel, logger: Logger) async -> WebSocketUpgradeChannel.DataHandler? {
        guard request.uri.path == Self.path, let accepted = try? await accept(request) else { return nil }
        return { inbound, outbound, context in
            await serve(inbound, outbound, accepted, channel: channel, logger: context.logger)
        }
    }

    /// The same path on the HTTP router: a request that was not upgraded learns why. One that
    /// now passes (a socket closed meanwhile, or an upgrade asked on a reused connection, which
    /// the server upgrades only on a new one) is sent to try again on a new connection.
    func addRefusalRoute(to router: Router<PlatformRequestContext>) {
        router.get(RouterPath(Self.path)) { request, _ -> Response in
            _ = try await accept(request)
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                throw RealtimeError(.badRequest, "This endpoint takes a websocket upgrade")
            }
            var location = request.uri.path
            if let query = request.uri.query { location += "?" + query }
            return Response(status: .temporaryRedirect, headers: [.connection: "close", .location: location])
        }
    }

    /// One socket, from upgrade to close: its reader (this task), its writer, its idle watch.
    private func serve(_ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, _ accepted: Accepted,
                       channel: any Channel, logger: Logger) async {
        let tenant = accepted.caller.tenant
        let tenantID = tenant.registered.id
        var logger = logger
        logger[metadataKey: "tenant.id"] = "\(tenantID)"
        guard services.limiter.openSocket(tenantID, limit: tenant.limits.concurrentUsers) else {
            try? await outbound.close(.policyViolation, reason: "Too many connected users")
            return
        }
        services.metrics.sockets.increment()
        defer {
            services.limiter.closeSocket(tenantID)
            services.metrics.sockets.decrement()
        }
        let settings = services.settings
        let slowLogger = logger
        let metrics = services.metrics
        let outbox = Outbox(maxFrames: settings.queueFrames, maxBytes: settings.queueBytes) { frames, bytes in
            metrics.slowConsumers.increment()
            slowLogger.warning("closing a slow consumer", metadata: ["socket.queued_frames": "\(frames)", "socket.queued_bytes": "\(bytes)"])
            Task {
                // The close frame waits behind what the client has not read: it gets a moment,
                // then the connection is cut either way.
                try? await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await outbound.close(.policyViolation, reason: "slow consumer: \(frames) messages not read") }
                    group.addTask { try await Task.sleep(for: .seconds(2)) }
                    _ = try await group.next()
                    group.cancelAll()
                }
                try? await channel.close()
            }
        }
        services.hub.addSocket(outbox, tenant: tenantID)
        defer { services.hub.removeSocket(outbox, tenant: tenantID) }
        let session = RealtimeSession(services: services, tenant: tenant, principal: accepted.caller.principal,
                                      serializer: accepted.serializer, outbox: outbox, logger: logger)
        let lastFrame = LastFrame()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await Self.write(outbox, to: outbound) }
            group.addTask {
                let idle = Duration.seconds(settings.idleTimeoutSeconds)
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(500))
                    if ContinuousClock.now - lastFrame.instant > idle {
                        outbox.close(code: 1000, reason: "heartbeat timeout")
                        // A client that reads nothing never takes the close frame either: cut
                        // the connection if it is still there a little later.
                        try? await Task.sleep(for: .seconds(5))
                        if !Task.isCancelled { try? await channel.close() }
                        return
                    }
                }
            }
            do {
                for try await message in inbound.messages(maxSize: settings.maxFrameBytes) {
                    lastFrame.instant = .now
                    let decoded: PhoenixMessage
                    do {
                        switch message {
                        case .text(let text): decoded = try PhoenixMessage.decode(text: text, serializer: accepted.serializer)
                        case .binary(let buffer): decoded = try PhoenixMessage.decode(binary: buffer)
                        }
                    } catch let error as PhoenixMessage.Malformed {
                        logger.debug("ignored a malformed frame", metadata: ["reason": "\(error.reason)"])
                        continue
                    }
                    await session.handle(decoded)
                }
            } catch {
                logger.debug("socket read ended", metadata: ["error": "\(error)"])
            }
            outbox.finish()
            group.cancelAll()
        }
        await session.close()
    }

    /// Writes the outbox's frames until it closes or finishes.
    private static func write(_ outbox: Outbox, to outbound: WebSocketOutboundWriter) async {
        while let frame = await outbox.next() {
            do {
                switch frame {
                case .text(let text):
                    try await outbound.write(.text(text))
                case .close(let code, let reason):
                    try await outbound.close(WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
                    return
                }
            } catch {
                return
            }
        }
    }
}

/// When a socket last received a frame (its idle watch reads it from another task).
private final class LastFrame: Sendable {
    private let value = Mutex(ContinuousClock.now)
    var instant: ContinuousClock.Instant {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
