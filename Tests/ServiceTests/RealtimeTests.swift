import Contracts
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HTTPClient
import Postgres
import TestSupport
import Testing

/// The realtime service on the real platform (in this process): Phoenix channels over real
/// websockets, broadcasts numbered and replayed, presence, two replicas on one database,
/// limits, slow consumers, and projects kept apart. supabase-py's `realtime` client runs
/// against the same routes in deploy/scripts/sdk/test_realtime.py.
@Suite("Realtime", .serialized)
struct RealtimeTests {
    static let settings = [
        "REALTIME_REPLAY_MESSAGES": "3",
        // The window holds exactly its 3 messages (the gap test), however recent the others.
        "REALTIME_REPLAY_MIN_SECONDS": "0",
        "REALTIME_IDLE_TIMEOUT_SECONDS": "2",
        "REALTIME_SOCKET_QUEUE_FRAMES": "8",
        "REALTIME_SOCKET_QUEUE_BYTES": "65536",
    ]

    /// The platform with realtime restarted on the test settings (and `overrides`).
    func withRealtime(_ overrides: [String: String] = [:], _ body: (TestPlatform, String) async throws -> Void) async throws {
        try await withTestPlatform { platform, url in
            await platform.stop("realtime")
            try await platform.start(["realtime"], overrides: Self.settings.merging(overrides) { $1 })
            try await body(platform, url)
        }
    }

    func broadcast(_ platform: TestPlatform, base: String? = nil, key: String, topic: String, _ payload: [String: Any], event: String = "e") async throws -> Int {
        var headers = HTTPClientHeaders()
        headers.add(name: "apikey", value: key)
        headers.add(name: "Content-Type", value: "application/json")
        let body = try JSONSerialization.data(withJSONObject: ["messages": [["topic": topic, "event": event, "payload": payload]]])
        let response = try await platform.client.execute(HTTPClientRequest(method: .post, url: (base ?? platform.url("realtime")) + "/realtime/v1/api/broadcast",
                                                                           headers: headers, body: Array(body)))
        return response.status
    }

    static func seq(_ broadcast: [String: Any]) -> Int? {
        ((broadcast["meta"] as? [String: Any])?["id"] as? String).flatMap(Int.init)
    }

    /// A websocket upgrade request, as a client sends it.
    static func upgradeRequest(key: String) -> String {
        "GET /realtime/v1/websocket?apikey=\(key)&vsn=1.0.0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    }

    /// A client's text frame (masked, as RFC 6455 requires of clients), payload under 64 KiB.
    static func maskedText(_ text: String) -> [UInt8] {
        let payload = Array(text.utf8)
        let mask: [UInt8] = [1, 2, 3, 4]
        var frame: [UInt8] = [0x81]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        return frame
    }

    static func inner(_ broadcast: [String: Any]) -> [String: Any] { broadcast["payload"] as? [String: Any] ?? [:] }

    @Test("two sockets broadcast and receive; self and ack as configured; messages numbered in order")
    func broadcastAndReceive() async throws {
        try await withRealtime { platform, _ in
            let tenant = try await platform.provisionTenant("rt")
            let a = try await PhoenixTestSocket.connect(platform.url("realtime"), key: tenant.keys.publishable)
            let b = try await PhoenixTestSocket.connect(platform.url("realtime"), key: tenant.keys.publishable)
            let reply = try await a.join("room", config: ["broadcast": ["self": false, "ack": true]])
            #expect(reply["status"] as? String == "ok")
            try await b.join("room", config: ["broadcast": ["self": true]])
            for n in 1...3 {
                let ref = try await a.send("realtime:room", "broadcast", ["type": "broadcast", "event": "n", "payload": ["n": n]])
                let ack = try await a.next { $0["event"] as? String == "phx_reply" && $0["ref"] as? String == ref }
                #expect((ack["payload"] as? [String: Any])?["status"] as? String == "ok")
            }
            _ = try await b.next { ($0["payload"] as? [String: Any]).map(Self.inner)?["n"] as? Int == 3 }
            let received = b.broadcasts("room")
            #expect(received.map { Self.inner($0)["n"] as? Int } == [1, 2, 3])
            let numbers = received.compactMap(Self.seq)
            #expect(numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2])
            // self: false: the sender got none of its own.
            #expect(a.broadcasts("room").isEmpty)
            await a.close()
            await b.close()
        }
    }

    @Test("a rejoining socket gets what it missed by sequence number, and a gap notice when the window no longer holds it")
    func replayAndGap() async throws {
        try await withRealtime { platform, _ in
            let tenant = try await platform.provisionTenant("rt")
            let key = tenant.keys.publishable
            for n in 1...2 { #expect(try await broadcast(platform, key: key, topic: "feed", ["n": n]) == 202) }
            // Missed 2 (after seq 1): replayed, oldest first, marked replayed.
            let late = try await PhoenixTestSocket.connect(platform.url("realtime"), key: key)
            try await late.join("feed", config: ["broadcast": ["replay": ["after_seq": 1]]])
            let replayed = try await late.next { $0["event"] as? String == "broadcast" }
            #expect(Self.seq(replayed["payload"] as? [String: Any] ?? [:]) == 2)
            #expect(((replayed["payload"] as? [String: Any])?["meta"] as? [String: Any])?["replayed"] as? Bool == true)
            await late.close()
            // Five more: the window (3 messages) holds 5, 6, 7; a socket last at 1 missed 2…4.
            for n in 3...7 { #expect(try await broadcast(platform, key: key, topic: "feed", ["n": n]) == 202) }
            let behind = try await PhoenixTestSocket.connect(platform.url("realtime"), key: key)
            try await behind.join("feed", config: ["broadcast": ["replay": ["after_seq": 1]]])
            let notice = try await behind.next { $0["event"] as? String == "system" }
            let payload = notice["payload"] as? [String: Any] ?? [:]
            #expect((payload["message"] as? String)?.hasPrefix("ReplayGap:") == true)
            #expect(payload["gap"] as? [String: Int] == ["from": 2, "to": 4])
            _ = try await behind.next { ($0["payload"] as? [String: Any]).flatMap(Self.seq) == 7 }
            #expect(behind.broadcasts("feed").compactMap(Self.seq) == [5, 6, 7])
            // Live traffic follows the replay without a duplicate.
            #expect(try await broadcast(platform, key: key, topic: "feed", ["n": 8]) == 202)
            _ = try await behind.next { ($0["payload"] as? [String: Any]).flatMap(Self.seq) == 8 }
            #expect(behind.broadcasts("feed").compactMap(Self.seq) == [5, 6, 7, 8])
            await behind.close()
        }
    }

    @Test("presence: state on join, join and leave diffs, and a silent socket's presence removed when it times out")
    func presence() async throws {
        try await withRealtime { platform, _ in
            let tenant = try await platform.provisionTenant("rt")
            let key = tenant.keys.publishable
            let watcher = try await PhoenixTestSocket.connect(platform.url("realtime"), key: key)
            try await watcher.join("lobby", config: ["presence": ["enabled": true]])
            _ = try await watcher.next { $0["event"] as? String == "presence_state" }
            let walker = try await PhoenixTestSocket.connect(platform.url("realtime"), key: key, heartbeat: false)
            try await walker.join("lobby", config: ["presence": ["enabled": true, "key": "walker"]])
            let ref = try await walker.send("realtime:lobby", "presence", ["event": "track", "payload": ["status": "here"]])
            _ = try await walker.next { $0["event"] as? String == "phx_reply" && $0["ref"] as? String == ref }
            let join = try await watcher.next { ($0["payload"] as? [String: Any]).flatMap { $0["joins"] as? [String: Any] }?["walker"] != nil }
            let metas = (((join["payload"] as? [String: Any])?["joins"] as? [String: Any])?["walker"] as? [String: Any])?["metas"] as? [[String: Any]]
            #expect(metas?.first?["status"] as? String == "here")
            let phxRef = try #require(metas?.first?["phx_ref"] as? String)
            // A third socket joining later gets the state.
            let late = try await PhoenixTestSocket.connect(platform.url("realtime"), key: key)
            try await late.join("lobby", config: ["presence": ["enabled": true]])
            let state = try await late.next { $0["event"] as? String == "presence_state" }
            #expect((state["payload"] as? [String: Any])?["walker"] != nil)
            // The walker goes silent (no heartbeat): the server closes it and everyone sees it leave.
            #expect(await walker.waitUntilClosed())
            let leave = try await watcher.next { ($0["payload"] as? [String: Any]).flatMap { $0["leaves"] as? [String: Any] }?["walker"] != nil }
            let left = (((leave["payload"] as? [String: Any])?["leaves"] as? [String: Any])?["walker"] as? [String: Any])?["metas"] as? [[String: Any]]
            #expect(left?.first?["phx_ref"] as? String == phxRef)
            await watcher.close()
            await late.close()
        }
    }

    @Test("two replicas on one database: a broadcast sent to one reaches sockets on the other")
    func twoReplicas() async throws {
        try await withRealtime { platform, _ in
            let tenant = try await platform.provisionTenant("rt")
            let key = tenant.keys.publishable
            let port = try freePort()
            let second = try InProcessService("realtime", port: port, environment: platform.environment(for: "realtime", port: port).merging(Self.settings) { $1 })
            try await second.waitUntilReady()
            let there = try await PhoenixTestSocket.connect(second.baseURL, key: key)
            try await there.join("wide", config: ["presence": ["enabled": true]])
            let here = try await PhoenixTestSocket.connect(platform.url("realtime"), key: key)
            try await here.join("wide", config: ["presence": ["enabled": true, "key": "here"]])
            #expect(try await broadcast(platform, key: key, topic: "wide", ["from": "first"]) == 202)
            _ = try await there.next { ($0["payload"] as? [String: Any]).map(Self.inner)?["from"] as? String == "first" }
            #expect(try await broadcast(platform, base: second.baseURL, key: key, topic: "wide", ["from": "second"]) == 202)
            _ = try await here.next { ($0["payload"] as? [String: Any]).map(Self.inner)?["from"] as? String == "second" }
            // Presence tracked on one replica is seen on the other.
            _ = try await here.send("realtime:wide", "presence", ["event": "track", "payload": ["at": "first"]])
            _ = try await there.next { ($0["payload"] as? [String: Any]).flatMap { $0["joins"] as? [String: Any] }?["here"] != nil }
            await here.close()
            await there.close()
            await second.stop()
        }
    }

    @Test("a replica killed (SIGKILL) takes its sockets' presence with it: the others remove it once it stops beating, and everyone sees the leave")
    func replicaDeath() async throws {
        try await withRealtime(["REALTIME_REPLICA_TIMEOUT_SECONDS": "3"]) { platform, _ in
            let tenant = try await platform.provisionTenant("rt")
            let key = tenant.keys.publishable
            var environment = platform.environment(for: "realtime", port: 0).merging(Self.settings) { $1 }
            environment["PORT"] = nil  // its own
            environment["REALTIME_REPLICA_TIMEOUT_SECONDS"] = "3"
            let doomed = try ServiceProcess("realtime", environment: environment)
            try await doomed.waitUntil()
            let watcher = try await PhoenixTestSocket.connect(platform.url("realtime"), key: key)
            try await watcher.join("crash", config: ["presence": ["enabled": true]])
            let there = try await PhoenixTestSocket.connect(doomed.baseURL, key: key)
            try await there.join("crash", config: ["presence": ["enabled": true, "key": "doomed"]])
            _ = try await there.send("realtime:crash", "presence", ["event": "track", "payload": ["on": "the other replica"]])
            _ = try await watcher.next { ($0["payload"] as? [String: Any]).flatMap { $0["joins"] as? [String: Any] }?["doomed"] != nil }
            doomed.kill()
            _ = await doomed.waitForExit(timeout: .seconds(10))
            // No clean stop ran: the surviving replica finds it silent and announces the leave.
            _ = try await watcher.next(ceiling: .seconds(60)) { ($0["payload"] as? [String: Any]).flatMap { $0["leaves"] as? [String: Any] }?["doomed"] != nil }
            let late = try await PhoenixTestSocket.connect(platform.url("realtime"), key: key)
            try await late.join("crash", config: ["presence": ["enabled": true]])
            let state = try await late.next { $0["event"] as? String == "presence_state" }
            #expect((state["payload"] as? [String: Any])?.isEmpty == true)
            await there.close()
            await watcher.close()
            await late.close()
        }
    }

    @Test("limits: channels per socket and events per second refused in the protocol's words; sockets beyond the project's cap refused at the handshake")
    func limits() async throws {
        try await withRealtime { platform, url in
            let tenant = try await platform.provisionTenant("rt")
            let key = tenant.keys.publishable
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                try await pool.query("""
                    UPDATE realtime.tenants SET max_channels_per_client = 2, max_events_per_second = 3, max_concurrent_users = 2 WHERE slug = \(tenant.slug)
                    """)
            }
            let socket = try await PhoenixTestSocket.connect(platform.url("realtime"), key: key)
            #expect(try await socket.join("one")["status"] as? String == "ok")
            #expect(try await socket.join("two")["status"] as? String == "ok")
            let third = try await socket.join("three")
            #expect(third["status"] as? String == "error")
            #expect(((third["response"] as? [String: Any])?["reason"] as? String)?.hasPrefix("ChannelRateLimitReached") == true)
            // Four events in a second on a limit of three: the channel is shut with a system error and phx_close.
            for n in 1...4 { _ = try await socket.send("realtime:one", "broadcast", ["type": "broadcast", "event": "e", "payload": ["n": n]]) }
            let system = try await socket.next { $0["event"] as? String == "system" }
            #expect((system["payload"] as? [String: Any])?["message"] as? String == "Too many messages per second")
            _ = try await socket.next { $0["event"] as? String == "phx_close" && $0["topic"] as? String == "realtime:one" }
            // Two sockets open (the cap): a third is refused with 429 before any upgrade.
            let other = try await PhoenixTestSocket.connect(platform.url("realtime"), key: key)
            let port = try #require(URL(string: platform.url("realtime"))?.port)
            let refused = try await RawHTTPConnection.offCooperativePool {
                let connection = try RawHTTPConnection(port: port)
                try connection.send(Self.upgradeRequest(key: key))
                return try connection.response()
            }
            #expect(refused.head.hasPrefix("HTTP/1.1 429"), "\(refused.head)")
            #expect(refused.body == #"{"error":"Too many connected users"}"#)
            await socket.close()
            await other.close()
        }
    }

    @Test("the cap on a project's sockets counts every replica's: one open on each of two, a third is refused on either")
    func socketCapAcrossReplicas() async throws {
        try await withRealtime { platform, url in
            let tenant = try await platform.provisionTenant("rt")
            let key = tenant.keys.publishable
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                try await pool.query("UPDATE realtime.tenants SET max_concurrent_users = 2 WHERE slug = \(tenant.slug)")
            }
            let port = try freePort()
            let second = try InProcessService("realtime", port: port, environment: platform.environment(for: "realtime", port: port).merging(Self.settings) { $1 })
            try await second.waitUntilReady()
            let here = try await PhoenixTestSocket.connect(platform.url("realtime"), key: key)
            let there = try await PhoenixTestSocket.connect(second.baseURL, key: key)
            // Once both replicas have published their counts (a beat each), neither admits a third:
            // the check without an upgrade answers what an upgrade would get.
            for base in [platform.url("realtime"), second.baseURL] {
                try await waitUntil("the other replica counts both sockets and refuses a third") {
                    try await platform.client.execute(HTTPClientRequest(method: .get, url: base + "/realtime/v1/websocket?apikey=\(key)&vsn=1.0.0")).status == 429
                }
            }
            // One closes: there is room again.
            await there.close()
            try await waitUntil("a closed socket makes room again") {
                try await platform.client.execute(HTTPClientRequest(method: .get, url: platform.url("realtime") + "/realtime/v1/websocket?apikey=\(key)&vsn=1.0.0")).status == 400
            }
            await here.close()
            await second.stop()
        }
    }

    @Test("a socket that does not read is closed as a slow consumer while another keeps receiving")
    func slowConsumer() async throws {
        // Every message kept until relayed: the flood's messages are too large for their
        // notifications, and realtime reads them back.
        // A queue of 2 MiB: the reader, busy as the machine may be, stays within it.
        // And no idle timeout meanwhile: the stalled socket is closed for not reading, not for silence.
        try await withRealtime(["REALTIME_REPLAY_MESSAGES": "1000", "REALTIME_REPLAY_MIN_SECONDS": "60",
                                "REALTIME_SOCKET_QUEUE_FRAMES": "1024", "REALTIME_SOCKET_QUEUE_BYTES": "2097152",
                                "REALTIME_IDLE_TIMEOUT_SECONDS": "600"]) { platform, url in
            let tenant = try await platform.provisionTenant("rt")
            let key = tenant.keys.publishable
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                try await pool.query("UPDATE realtime.tenants SET max_events_per_second = 100000 WHERE slug = \(tenant.slug)")
            }
            // A raw socket that upgrades, joins, then never reads again.
            let stalled = try RawSocket.connect(port: try #require(URL(string: platform.url("realtime"))?.port))
            defer { Glibc.close(stalled) }
            try RawSocket.send(stalled, Array(Self.upgradeRequest(key: key).utf8))
            try RawSocket.send(stalled, Self.maskedText(#"{"topic":"realtime:flood","event":"phx_join","payload":{"config":{}},"ref":"1","join_ref":"1"}"#))
            // Read until its join is answered (so it is subscribed), then never read again.
            let joined = try await RawHTTPConnection.offCooperativePool { () throws -> Bool in
                var seen: [UInt8] = []
                while !String(decoding: seen, as: UTF8.self).contains("phx_reply") {
                    var chunk = [UInt8](repeating: 0, count: 4096)
                    let count = recv(stalled, &chunk, chunk.count, 0)
                    guard count > 0 else { return false }
                    seen += chunk[..<count]
                }
                return true
            }
            #expect(joined)
            let reader = try await PhoenixTestSocket.connect(platform.url("realtime"), key: key)
            try await reader.join("flood")
            let big = String(repeating: "x", count: 16_000)
            var sent = 0
            try await waitUntil("both sockets are open") { try await platform.realtimeMetric("realtime_sockets_open") == 2 }
            while sent < 2_000, try await platform.realtimeMetric("realtime_slow_consumers_closed_total") == 0 {
                #expect(try await broadcast(platform, key: key, topic: "flood", ["n": sent, "pad": big]) == 202)
                sent += 1
            }
            // The relay may lag behind the sends: the close may come after the last of them.
            try await waitUntil("the stalled socket is closed as a slow consumer") {
                try await platform.realtimeMetric("realtime_slow_consumers_closed_total") == 1
            }
            try await waitUntil("the slow consumer's socket is gone") { try await platform.realtimeMetric("realtime_sockets_open") == 1 }
            // The reader received everything, in order.
            _ = try await reader.next { ($0["payload"] as? [String: Any]).map(Self.inner)?["n"] as? Int == sent - 1 }
            #expect(reader.broadcasts("flood").map { Self.inner($0)["n"] as? Int } == Array(0..<sent).map { $0 })
            await reader.close()
        }
    }

    @Test("projects are kept apart: the same channel name in two projects shares no broadcast or presence")
    func projectsApart() async throws {
        try await withRealtime { platform, _ in
            let a = try await platform.provisionTenant("rta")
            let b = try await platform.provisionTenant("rtb")
            let socketA = try await PhoenixTestSocket.connect(platform.url("realtime"), key: a.keys.publishable)
            let socketB = try await PhoenixTestSocket.connect(platform.url("realtime"), key: b.keys.publishable)
            try await socketA.join("same", config: ["presence": ["enabled": true, "key": "a"]])
            try await socketB.join("same", config: ["presence": ["enabled": true]])
            _ = try await socketA.send("realtime:same", "presence", ["event": "track", "payload": ["p": "a"]])
            #expect(try await broadcast(platform, key: a.keys.publishable, topic: "same", ["from": "a"]) == 202)
            _ = try await socketA.next { ($0["payload"] as? [String: Any]).map(Self.inner)?["from"] as? String == "a" }
            // B's own message arrives; nothing of A's came before it.
            #expect(try await broadcast(platform, key: b.keys.publishable, topic: "same", ["from": "b"]) == 202)
            _ = try await socketB.next { ($0["payload"] as? [String: Any]).map(Self.inner)?["from"] as? String == "b" }
            #expect(socketB.broadcasts("same").map { Self.inner($0)["from"] as? String } == ["b"])
            #expect(!socketB.received.contains { $0["event"] as? String == "presence_diff" })
            // A key of project B cannot send to project A's channels: the key names the project.
            await socketA.close()
            await socketB.close()
        }
    }

    /// A table `todos (id, owner, title)` in the tenant's schema, owned by its role, that users
    /// read only their own rows of (row-level security), put into realtime's changes the way the
    /// platform does (`realtime_enable`, as the platform role).
    func makeTodos(_ platform: TestPlatform, _ tenant: ProvisionedTenant, url: String) async throws -> String {
        let schema = "tenant_" + tenant.slug
        try await withPool(url: try TestDatabase.adminURL(for: url)) { (admin: PostgresPool) async throws -> Void in
            for statement in [
                "CREATE TABLE \(schema).todos (id bigint PRIMARY KEY, owner uuid NOT NULL, title text NOT NULL)",
                "ALTER TABLE \(schema).todos OWNER TO \(schema)",
                "ALTER TABLE \(schema).todos ENABLE ROW LEVEL SECURITY",
                "CREATE POLICY own_rows ON \(schema).todos FOR SELECT USING (owner = \(schema).auth_uid())",
            ] { try await admin.query(PostgresQuery(unsafeSQL: statement)) }
        }
        // Opted in through realtime's API, with the secret key only.
        let path = "/v1/tenants/\(tenant.slug)/realtime/tables"
        #expect(try await platform.tenantCall(.put, "realtime", path + "/todos", apikey: tenant.keys.publishable).status == 403)
        #expect(try await platform.tenantCall(.put, "realtime", path + "/nothing_here", apikey: tenant.keys.secret).status == 404)
        // The platform's own tables never (users hold password hashes).
        #expect(try await platform.tenantCall(.put, "realtime", path + "/users", apikey: tenant.keys.secret).status == 422)
        let enabled = try await platform.tenantCall(.put, "realtime", path + "/todos", apikey: tenant.keys.secret)
        #expect(enabled.status == 200)
        #expect(try enabled.decode(RealtimeTables.self) == RealtimeTables(slug: tenant.slug, tables: ["todos"]))
        #expect(try await platform.tenantCall(.put, "realtime", path + "/todos", apikey: tenant.keys.secret).status == 200)
        return schema
    }

    static func changes(_ socket: PhoenixTestSocket) -> [[String: Any]] {
        socket.received.filter { $0["event"] as? String == "postgres_changes" }.compactMap { ($0["payload"] as? [String: Any])?["data"] as? [String: Any] }
    }

    static func id(_ change: [String: Any]) -> Int? {
        ((change["record"] ?? change["old_record"]) as? [String: Any])?["id"] as? Int
    }

    @Test("database changes: delivered by table, event and filter; withheld from users whose row-level security hides the row; large rows by reference; tenant migration 5")
    func postgresChanges() async throws {
        try await withRealtime { platform, url in
            let tenant = try await platform.provisionTenant("rt")
            let other = try await platform.provisionTenant("rto")
            let schema = try await makeTodos(platform, tenant, url: url)
            try await withPool(url: url) { (pool: PostgresPool) async throws -> Void in
                // Tenant migration 5 brought the changes (6 grants them to realtime's own role).
                #expect(try await pool.scalar("SELECT max(version)::int8 FROM \(unescaped: schema)._migrations") >= 5)
            }
            let alice = try await platform.signUpUser(tenant, "alice-\(UUID().uuidString.prefix(6))@example.com")
            let bob = try await platform.signUpUser(tenant, "bob-\(UUID().uuidString.prefix(6))@example.com")
            let base = platform.url("realtime")
            let hello: [String: Any] = ["event": "*", "schema": "public", "table": "todos", "filter": "title=eq.hello"]
            let a = try await PhoenixTestSocket.connect(base, key: tenant.keys.publishable)
            let reply = try await a.join("db", config: ["postgres_changes": [hello]], token: alice.token)
            // The binding is echoed with an id, then confirmed.
            let echoed = ((reply["response"] as? [String: Any])?["postgres_changes"] as? [[String: Any]])?.first
            #expect(echoed?["table"] as? String == "todos" && echoed?["id"] is Int)
            _ = try await a.next { ($0["payload"] as? [String: Any])?["message"] as? String == "Subscribed to PostgreSQL" }
            let b = try await PhoenixTestSocket.connect(base, key: tenant.keys.publishable)
            try await b.join("db", config: ["postgres_changes": [hello, ["event": "DELETE", "schema": "public", "table": "todos"]]], token: bob.token)
            let service = try await PhoenixTestSocket.connect(base, key: tenant.keys.secret)
            try await service.join("db", config: ["postgres_changes": [["event": "*", "schema": "public", "table": "todos"]]])
            let stranger = try await PhoenixTestSocket.connect(base, key: other.keys.secret)
            try await stranger.join("db", config: ["postgres_changes": [["event": "*", "schema": "public"]]])
            let big = String(repeating: "x", count: 12_000)
            // In phases, each awaited where it lands: a row is checked against a user's rights
            // as it is when realtime reads it, so a later phase must not change it before then.
            let admin = try TestDatabase.adminURL(for: url)
            func run(_ statement: String, until arrivals: [(PhoenixTestSocket, String)]) async throws {
                try await withPool(url: admin) { (pool: PostgresPool) async throws -> Void in try await pool.query(PostgresQuery(unsafeSQL: statement)) }
                for (socket, label) in arrivals {
                    _ = try await socket.next { frame in
                        guard let data = (frame["payload"] as? [String: Any])?["data"] as? [String: Any] else { return false }
                        return "\(data["type"] as? String ?? "")\(Self.id(data) ?? 0)" == label
                    }
                }
            }
            try await run("INSERT INTO \(schema).todos VALUES (1, '\(alice.id)', 'hello'), (2, '\(alice.id)', 'other'), (3, '\(bob.id)', 'hello')",
                          until: [(a, "INSERT1"), (b, "INSERT3"), (service, "INSERT3")])
            try await run("UPDATE \(schema).todos SET title = 'hello' WHERE id = 2", until: [(a, "UPDATE2")])
            try await run("INSERT INTO \(schema).todos VALUES (4, '\(alice.id)', '\(big)')", until: [(service, "INSERT4")])
            try await run("DELETE FROM \(schema).todos WHERE id = 1", until: [(b, "DELETE1"), (service, "DELETE1")])
            try await run("INSERT INTO \(schema).todos VALUES (5, '\(alice.id)', 'hello'), (6, '\(bob.id)', 'hello')",
                          until: [(a, "INSERT5"), (b, "INSERT6"), (service, "INSERT6")])
            // The service sees every change, in commit order, the large row whole.
            let all = Self.changes(service)
            #expect(all.map { "\($0["type"] as? String ?? "")\(Self.id($0) ?? 0)" } == ["INSERT1", "INSERT2", "INSERT3", "UPDATE2", "INSERT4", "DELETE1", "INSERT5", "INSERT6"])
            #expect((all.first { Self.id($0) == 4 }?["record"] as? [String: Any])?["title"] as? String == big)
            #expect((all.first?["columns"] as? [[String: Any]])?.map { $0["name"] as? String } == ["id", "owner", "title"])
            // Alice: her rows titled hello (1, 2 once renamed, 5). Not the delete of 1: its old record
            // holds the key alone (no REPLICA IDENTITY FULL), so the title filter cannot hold.
            #expect(Self.changes(a).map { "\($0["type"] as? String ?? "")\(Self.id($0) ?? 0)" } == ["INSERT1", "UPDATE2", "INSERT5"])
            // Bob: his rows (3, 6), and, bound to deletes unfiltered, the delete of 1: its key only
            // (not withheld: the row is gone, as Supabase does).
            #expect(Self.changes(b).map { "\($0["type"] as? String ?? "")\(Self.id($0) ?? 0)" } == ["INSERT3", "DELETE1", "INSERT6"])
            #expect(Self.changes(b).first { $0["type"] as? String == "DELETE" }?["old_record"] as? [String: Int] == ["id": 1])
            // Another project's socket saw nothing of them.
            #expect(Self.changes(stranger).isEmpty)
            // Opted out again: the list is empty.
            #expect(try await platform.tenantCall(.delete, "realtime", "/v1/tenants/\(tenant.slug)/realtime/tables/todos", apikey: tenant.keys.secret).status == 204)
            let listed = try await platform.tenantCall(.get, "realtime", "/v1/tenants/\(tenant.slug)/realtime/tables", apikey: tenant.keys.secret)
            #expect(try listed.decode(RealtimeTables.self).tables.isEmpty)
            for socket in [a, b, service, stranger] { await socket.close() }
        }
    }

    @Test("realtime-js's form: V2 arrays, binary broadcasts (kind 3) fanned out to V1 and V2 sockets, heartbeats answered with their ref")
    func serializerV2() async throws {
        try await withRealtime { platform, _ in
            let tenant = try await platform.provisionTenant("rt")
            let base = platform.url("realtime")
            let js = try await PhoenixTestSocket.connect(base, key: tenant.keys.publishable, heartbeat: false, vsn: "2.0.0")
            let py = try await PhoenixTestSocket.connect(base, key: tenant.keys.publishable)
            let reply = try await js.join("mixed", config: ["broadcast": ["self": true]])
            #expect(reply["status"] as? String == "ok")
            // The reply is an array echoing the join's refs.
            #expect(js.receivedText.first?.hasPrefix(#"["1","1","realtime:mixed","phx_reply","#) == true, "\(js.receivedText)")
            try await py.join("mixed")
            let heartbeat = try await js.send("phoenix", "heartbeat", [:])
            _ = try await js.next { $0["topic"] as? String == "phoenix" && $0["ref"] as? String == heartbeat && $0["event"] as? String == "phx_reply" }
            try await js.sendBinaryBroadcast("realtime:mixed", event: "cursor", ["x": 7])
            let atPython = try await py.next { $0["event"] as? String == "broadcast" }
            #expect((atPython["payload"] as? [String: Any])?["event"] as? String == "cursor")
            #expect(Self.inner(atPython["payload"] as? [String: Any] ?? [:])["x"] as? Int == 7)
            // V1 frames carry `ref: null` and no join_ref.
            #expect(atPython.keys.sorted() == ["event", "payload", "ref", "topic"] && atPython["ref"] is NSNull)
            _ = try await js.next { $0["event"] as? String == "broadcast" }
            #expect(js.receivedText.contains { $0.hasPrefix(#"[null,null,"realtime:mixed","broadcast",{"#) })
            await js.close()
            await py.close()
        }
    }

    @Test("access_token: a new user token applies to the channel; one that does not verify ends it; a private channel ends when its token no longer allows it")
    func tokenRefresh() async throws {
        try await withRealtime { platform, _ in
            let tenant = try await platform.provisionTenant("rt")
            let user = try await platform.signUpUser(tenant, "tok-\(UUID().uuidString.prefix(6))@example.com")
            let socket = try await PhoenixTestSocket.connect(platform.url("realtime"), key: tenant.keys.publishable)
            #expect(try await socket.join("secret", config: ["private": true], token: user.token)["status"] as? String == "ok")
            #expect(try await socket.join("open", token: user.token)["status"] as? String == "ok")
            // A fresh token of the same project is taken without a reply.
            _ = try await socket.send("realtime:open", "access_token", ["access_token": user.token])
            // The project's key in place of the user's: the private channel may no longer be read.
            _ = try await socket.send("realtime:secret", "access_token", ["access_token": tenant.keys.publishable])
            let revoked = try await socket.next { $0["event"] as? String == "system" && $0["topic"] as? String == "realtime:secret" }
            #expect(((revoked["payload"] as? [String: Any])?["message"] as? String)?.hasPrefix("You no longer have permission") == true)
            _ = try await socket.next { $0["event"] as? String == "phx_close" && $0["topic"] as? String == "realtime:secret" }
            // A token that does not verify ends the channel.
            _ = try await socket.send("realtime:open", "access_token", ["access_token": "not.a.jwt"])
            let refused = try await socket.next { $0["event"] as? String == "system" && $0["topic"] as? String == "realtime:open" }
            #expect(((refused["payload"] as? [String: Any])?["message"] as? String)?.hasPrefix("InvalidJWTToken") == true)
            #expect((refused["payload"] as? [String: Any])?["status"] as? String == "error")
            await socket.close()
        }
    }

    @Test("a removed tenant's sockets are closed, and a new one is refused: 404")
    func tenantRemoved() async throws {
        try await withRealtime { platform, _ in
            let tenant = try await platform.provisionTenant("rt")
            let socket = try await PhoenixTestSocket.connect(platform.url("realtime"), key: tenant.keys.publishable)
            try await socket.join("going")
            let removed = try await platform.client.execute(HTTPClientRequest(
                method: .delete, url: platform.url("realtime") + "/internal/v1/tenants/\(tenant.id.uuidString.lowercased())", headers: platform.tokenHeaders
            ))
            #expect(removed.status == 204)
            #expect(await socket.waitUntilClosed())
            let port = try #require(URL(string: platform.url("realtime"))?.port)
            let refused = try await RawHTTPConnection.offCooperativePool {
                let connection = try RawHTTPConnection(port: port)
                try connection.send(Self.upgradeRequest(key: tenant.keys.publishable))
                return try connection.response()
            }
            #expect(refused.head.hasPrefix("HTTP/1.1 404"), "\(refused.head)")
            #expect(refused.body == #"{"error":"Tenant not found"}"#)
        }
    }

    @Test("handshakes refused in Supabase's shape: no key 401, unknown key 401, bad vsn 400")
    func handshakeRefusals() async throws {
        try await withRealtime { platform, _ in
            for (query, status) in [("vsn=1.0.0", 401), ("apikey=pk_nonexistent_key_0000&vsn=1.0.0", 401), ("apikey=x&vsn=9", 400)] {
                let response = try await platform.client.execute(HTTPClientRequest(method: .get, url: platform.url("realtime") + "/realtime/v1/websocket?" + query))
                #expect(response.status == status, "\(query)")
                let body = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
                #expect(body?["error"] is String, "\(query)")
            }
        }
    }
}

extension TestPlatform {
    /// A value realtime reports at `/metrics` (`realtime_sockets_open`, …); nil when absent.
    func realtimeMetric(_ name: String) async throws -> Int? {
        let response = try await client.execute(HTTPClientRequest(method: .get, url: url("realtime") + "/metrics"))
        let text = String(decoding: response.body, as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
        return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }.map { Int($0) }
    }
}

@Suite("JSON text")
struct JSONTextTests {
    @Test("sorted keys give one text for equal objects, nested ones too; numbers and strings as JSON writes them")
    func sortedKeys() {
        let a: JSONValue = .object(["b": .number(1), "a": .object(["z": .bool(true), "y": .null]), "c": .string("q\"\n")])
        var b: [String: JSONValue] = [:]
        for key in ["c", "a", "b"] { if case .object(let members) = a { b[key] = members[key] } }
        #expect(JSONText.serialize(a, sortedKeys: true) == JSONText.serialize(.object(b), sortedKeys: true))
        #expect(JSONText.serialize(a, sortedKeys: true) == #"{"a":{"y":null,"z":true},"b":1,"c":"q\"\n"}"#)
        #expect(JSONText.serialize(.number(1.5)) == "1.5" && JSONText.serialize(.array([.number(-3)])) == "[-3]")
    }
}
