import Foundation
import Postgres
import TestSupport
import Testing

@Suite("LISTEN / NOTIFY")
struct ListenerTests {
    @Test("notifications arrive, and keep arriving after the listener's connection was killed")
    func survivesReconnection() async throws {
        let listener = PostgresListener(
            configuration: PostgresConfiguration(connectionString: try TestDatabase.url()),
            logger: TestDatabase.logger
        )
        let channel = TestDatabase.uniqueName("chan")
        let stream = listener.notifications(on: channel)
        let running = Task { try await listener.run() }
        defer { running.cancel() }

        try await withTestPool { pool in
            #expect(await eventually { listener.isListening(on: channel) })
            var iterator = stream.makeAsyncIterator()
            try await pool.withConnection { try await $0.notify(channel: channel, payload: "before") }
            #expect(await iterator.next()?.payload == "before")

            let oldPID = try #require(listener.backendPID)
            try await pool.query("SELECT pg_terminate_backend(\(Int(oldPID))::int4)")
            #expect(await eventually { listener.backendPID != nil && listener.backendPID != oldPID && listener.isListening(on: channel) })
            #expect(listener.connections == 2)

            try await pool.withConnection { try await $0.notify(channel: channel, payload: "after \u{1F680}") }
            let received = await iterator.next()
            #expect(received?.payload == "after \u{1F680}")
            #expect(received?.channel == channel)
        }
        running.cancel()
        _ = await running.result
    }
}
