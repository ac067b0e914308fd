import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceKit

/// `GET /v1/projects/{id}/events` — the project's status changes and step progress as
/// Server-Sent Events (`text/event-stream`), for its owner or the operator.
///
/// Every event the project has (`project.status`, `step.status`), in order, each with
/// `id: <seq>` (1, 2, 3, … per project, gap-free), `event: <type>` and a JSON `data` object;
/// then new ones as they commit (pushed by LISTEN/NOTIFY). A client that reconnects with
/// `Last-Event-ID` (or `?last_event_id=`, for a first connection that cannot set headers) gets
/// only what came after. The stream ends once the project rests in `ready`, `failed` or
/// `deleted` with nothing more to send; a comment line every `heartbeat` keeps proxies from
/// closing a quiet stream.
struct ProjectEventsController: Sendable {
    let events: ProjectEventStore
    let signals: ProjectSignals
    let authenticator: DeveloperAuthenticator
    var heartbeat: Duration = .seconds(15)
    /// Events read (and written) per round.
    var batch = 200

    func addRoutes(to projects: RouterGroup<PlatformRequestContext>) {
        projects.get("/{id}/events", use: stream)
    }

    @Sendable func stream(_ request: Request, context: PlatformRequestContext) async throws -> Response {
        let caller = try await authenticator.caller(request)
        let id = try ProjectsController.projectID(context)
        let resumeFrom = request.headers[.lastEventID] ?? request.uri.queryParameters.get("last_event_id").map { String($0) }
        let after = try resumeFrom.map { text in
            guard let seq = Int(text), seq >= 0 else {
                throw APIError.validation(field: "Last-Event-ID", "Last-Event-ID must be the id of an event this stream sent.")
            }
            return seq
        } ?? 0
        // Watching starts before the first read, so nothing committed in between is missed.
        let signal = signals.watch(id)
        let first: (events: [ProjectEventStore.Event], status: ProjectState)?
        do {
            first = try await events.events(of: id, owner: caller.owner, after: after, limit: batch)
        } catch {
            signals.unwatch(id, signal)
            throw error
        }
        guard let first else {
            signals.unwatch(id, signal)
            throw APIError.notFound("project")
        }
        let owner = caller.owner
        let body = ResponseBody { [self] writer in
            defer { signals.unwatch(id, signal) }
            try await signals.closingOnShutdown(signal) {
                try await send(first, after: after, of: id, owner: owner, signal: signal, to: &writer)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [
            .contentType: "text/event-stream; charset=utf-8",
            .cacheControl: "no-store",
            // nginx (the gateway) passes each event on at once instead of buffering the stream.
            HTTPField.Name("X-Accel-Buffering")!: "no",
        ], body: body)
    }

    /// Writes `first` and every later event, until the project rests with nothing more to
    /// send, or the server shuts down.
    private func send(_ first: (events: [ProjectEventStore.Event], status: ProjectState), after: Int, of id: UUID, owner: UUID?,
                      signal: Signal, to writer: inout some ResponseBodyWriter) async throws {
        var cursor = after
        var round = first
        while true {
            if !round.events.isEmpty {
                var buffer = ByteBuffer()
                for event in round.events {
                    buffer.writeString("id: \(event.seq)\nevent: \(event.type)\ndata: \(event.json)\n\n")
                    cursor = event.seq
                }
                try await writer.write(buffer)
            }
            if round.events.count < batch {
                if round.status.isResting || signals.isClosed || signal.isClosed { break }
                await signal.wait(upTo: heartbeat)
                if signal.isClosed { break }
            }
            guard let next = try await events.events(of: id, owner: owner, after: cursor, limit: batch) else { break }
            if next.events.isEmpty { try await writer.write(ByteBuffer(string: ": keep-alive\n\n")) }
            round = next
        }
    }
}

extension HTTPField.Name {
    static let lastEventID = Self("Last-Event-ID")!
}
