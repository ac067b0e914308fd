import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers `Expect: 100-continue` with `100 Continue` as the request's head arrives, as Node's
/// HTTP server (Supabase's Storage) and nginx do, and passes the request on without the header.
///
/// Clients that send it — curl for any body over 1 MB, boto3 for every PutObject and UploadPart
/// — otherwise wait up to a second before sending the body, because Hummingbird never answers
/// an expectation. A request refused before its body is read (a 401, a 413 on `Content-Length`)
/// then gets its final answer after the `100`; the client sends the body, which the server
/// reads and drops before the next request on the connection (RFC 9110 §10.1.1 allows either).
/// Sits right after the HTTP codec (`HTTP1Channel`'s additional handlers).
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data),
              let expectation = head.headerFields[.expect], expectation.lowercased() == "100-continue"
        else {
            context.fireChannelRead(data)
            return
        }
        head.headerFields[.expect] = nil
        context.writeAndFlush(NIOAny(HTTPResponsePart.head(HTTPResponse(status: .continue))), promise: nil)
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }
}
