import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Synchronization
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
@_spi(WSInternal) import WSCore

/// HTTP/1 with websocket upgrades, where a refused upgrade is answered by the HTTP router.
///
/// hummingbird-websocket's own channel answers every refused upgrade with an empty 400. Supabase
/// Realtime answers it with the reason (`{"error": "API key is missing"}`, 401; `Too many
/// connected users`, 429; …), which supabase-js and supabase-py surface. So here a request whose
/// upgrade `shouldUpgrade` refuses goes on to the HTTP responder like any request, and the route
/// of the same path says why (`RealtimeSocketController.addRefusalRoute`).
struct WebSocketUpgradeChannel: ServerChildChannel, HTTPChannelHandler {
    typealias SocketHandler = @Sendable (NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, Logger) async -> Void
    /// What a socket runs once upgraded: its reader, its writer and its context.
    typealias DataHandler = WebSocketDataHandler<SocketContext>

    struct SocketContext: WebSocketContext {
        let logger: Logger
    }

    enum UpgradeResult: Sendable {
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, SocketHandler, Logger)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let http1: HTTP1Channel.Configuration
    let maxFrameSize: Int
    /// The handler of an upgraded request, or nil to refuse it (the HTTP router then answers).
    let shouldUpgrade: @Sendable (Request, any Channel, Logger) async -> DataHandler?

    /// A server of these channels.
    static func server(http1: HTTP1Channel.Configuration, maxFrameSize: Int,
                       shouldUpgrade: @escaping @Sendable (Request, any Channel, Logger) async -> DataHandler?) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            WebSocketUpgradeChannel(responder: responder, http1: http1, maxFrameSize: maxFrameSize, shouldUpgrade: shouldUpgrade)
        }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let chosen = ChosenHandler()
            let maxFrameSize = self.maxFrameSize
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: maxFrameSize,
                shouldUpgrade: { channel, head in
                    chosen.refusedHead = head
                    let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
                    promise.completeWithTask {
                        guard let request = try? HTTPRequest(head, secure: false, splitCookie: false),
                              let handler = await shouldUpgrade(Request(head: request, body: .init(buffer: .init())), channel, logger)
                        else { return nil }
                        chosen.set { asyncChannel, logger in
                                do {
                                    _ = try await WebSocketHandler.handle(
                                        type: .server,
                                        configuration: .init(extensions: [], autoPing: .disabled, closeTimeout: .seconds(15), validateUTF8: false,
                                                             maxFrameSize: maxFrameSize),
                                        asyncChannel: asyncChannel, context: SocketContext(logger: logger), handler: handler
                                    )
                                } catch {
                                    logger.debug("websocket ended with an error", metadata: ["error": "\(error)"])
                                }
                        }
                        chosen.refusedHead = nil
                        return HTTPHeaders()
                    }
                    return promise.futureResult
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard let handler = chosen.get() else { throw ChannelError.inappropriateOperationForState }
                        let asyncChannel = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        return UpgradeResult.websocket(asyncChannel, handler, logger)
                    }
                }
            )
            let http1 = self.http1
            let upgrade = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    // Not upgraded (no upgrade asked, or refused): the request is served over HTTP.
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandlers(http1.additionalChannelHandlers())
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPConnectionStateHandler(idleTimeout: http1.idleTimeout.map { .init($0) }, logger: logger)
                        )
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        // NIO's upgrade handler consumed a refused upgrade's head and end (it passes
                        // on only what came after): hand the request on, as NIO's untyped handler
                        // does, so the HTTP side serves it. (Should the end arrive only after the
                        // refusal, the HTTP side sees a second end after its answer and closes the
                        // connection: the refusal is answered all the same.)
                        if let head = chosen.refusedHead {
                            let upgrader = try channel.pipeline.syncOperations.context(handlerType: NIOTypedHTTPServerUpgradeHandler<UpgradeResult>.self)
                            upgrader.fireChannelRead(NIOAny(HTTPServerRequestPart.head(head)))
                            upgrader.fireChannelRead(NIOAny(HTTPServerRequestPart.end(nil)))
                            upgrader.fireChannelReadComplete()
                        }
                        return UpgradeResult.http(http)
                    }
                }
            )
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(upgradeConfiguration: upgrade)
            configuration.enablePipelining = false
            configuration.enableErrorHandling = false
            configuration.enableResponseHeaderValidation = false
            configuration.decoderConfiguration.maxHeaderFieldSize = http1.httpDecoder.maxHeaderFieldSize
            configuration.decoderConfiguration.maxHeaderListSize = http1.httpDecoder.maxHeaderListSize
            configuration.decoderConfiguration.maxHeaderFieldCount = http1.httpDecoder.maxHeaderFieldCount
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            // The HTTP side's idle timer starts only once the first request head has been read
            // (it is added by the negotiation), so until then this one bounds the head: a client
            // that connects and trickles or sends nothing is closed after the idle timeout.
            if let timeout = http1.idleTimeout {
                let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
                result.whenComplete { _ in deadline.cancel() }
            }
            return Value(upgradeResult: result, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .http(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .websocket(let socket, let handler, let logger):
                await handler(socket, logger)
            }
        } catch {
            logger.debug("connection ended before its first request was served", metadata: ["error": "\(error)"])
        }
    }
}

/// One connection's upgrade: the handler `shouldUpgrade` chose, for the pipeline step that runs
/// it, or the head of the request it refused, for the HTTP side to serve.
private final class ChosenHandler: Sendable {
    private let handler = Mutex<WebSocketUpgradeChannel.SocketHandler?>(nil)
    private let head = Mutex<HTTPRequestHead?>(nil)
    func set(_ value: @escaping WebSocketUpgradeChannel.SocketHandler) { handler.withLock { $0 = value } }
    func get() -> WebSocketUpgradeChannel.SocketHandler? { handler.withLock { $0 } }
    var refusedHead: HTTPRequestHead? {
        get { head.withLock { $0 } }
        set { head.withLock { $0 = newValue } }
    }
}
