import Contracts
import Foundation
import HTTPClient
import Postgres
import ServiceClients
import TestSupport
import Testing

/// Provisioning's project API for developers (their access token from auth, verified against
/// auth's JWKS plus a session check) and the operator (the service token), on real services
/// and a real database: who sees what, the project limit, keys revealed once, the event stream
/// and the long poll.
@Suite("Project API for owners")
struct ProjectOwnerTests {
    static func path(_ id: UUID, _ tail: String = "") -> String {
        "/v1/projects/" + id.uuidString.lowercased() + tail
    }

    static let operatorHeaders = [(PlatformHeader.serviceToken, TestServices.internalToken)]

    @Test("owner, another developer and the operator on every route: another's project is 404, a logout ends access")
    func access() async throws {
        try await withTestPlatform(provisioning: ["SESSION_CACHE_SECONDS": "0"]) { platform, _ in
            let alice = try await platform.registerDeveloper("alice")
            let bob = try await platform.registerDeveloper("bob")
            let project = alice.firstProject
            _ = try await platform.waitForProject(project, in: [.ready])

            // Bob, signed in, meets a 404 on every route of Alice's project, as for a made-up id.
            for (method, tail) in [(HTTPMethod.get, ""), (.get, "/api-keys"), (.get, "/events"), (.get, "?wait=1s"), (.post, "/retry"), (.delete, "")] {
                let answer = try await platform.projectsCall(method, Self.path(project, tail), token: bob.accessToken)
                #expect(answer.status == 404 && answer.errorEnvelope?.error.code == "not_found", "\(method) \(tail): \(answer)")
                let unknown = try await platform.projectsCall(method, Self.path(UUID(), tail), token: alice.accessToken)
                #expect(unknown.status == 404, "\(method) \(tail) unknown: \(unknown)")
            }
            let bobsList = try await platform.projectsCall(.get, "/v1/projects", token: bob.accessToken).decode(ProjectList.self)
            #expect(bobsList.projects.map(\.id) == [bob.firstProject])

            // No token, a made-up one, a wrong service token.
            #expect(try await platform.projectsCall(.get, Self.path(project), token: nil).status == 401)
            #expect(try await platform.projectsCall(.get, Self.path(project), token: "not.a.jwt").status == 401)
            let wrongService = try await platform.projectsCall(.get, Self.path(project), token: nil,
                                                               headers: [(PlatformHeader.serviceToken, "wrong-token-wrong-token-wrong-token")])
            #expect(wrongService.status == 403)

            // Alice sees her project, her keys (once), her list.
            let status = try await platform.projectsCall(.get, Self.path(project), token: alice.accessToken)
            #expect(status.status == 200)
            #expect(try status.decode(ProjectStatus.self).ownerId == alice.id)
            let keys = try await platform.projectsCall(.get, Self.path(project, "/api-keys"), token: alice.accessToken).decode(ProjectAPIKeys.self)
            #expect(keys.key(.publishable)?.hasPrefix("pk_") == true && keys.key(.secret)?.hasPrefix("sk_") == true)
            let list = try await platform.projectsCall(.get, "/v1/projects", token: alice.accessToken).decode(ProjectList.self)
            #expect(list.projects.map(\.id) == [project] && list.projects.allSatisfy { $0.workflow == nil })
            let retry = try await platform.projectsCall(.post, Self.path(project, "/retry"), token: alice.accessToken)
            #expect(retry.status == 409 && retry.errorEnvelope?.error.code == "not_retryable")

            // The operator sees every project, by either way of presenting the token.
            #expect(try await platform.projectsCall(.get, Self.path(project), token: TestServices.internalToken).status == 200)
            let all = try await platform.projectsCall(.get, "/v1/projects?limit=100", token: nil, headers: Self.operatorHeaders)
                .decode(ProjectList.self)
            #expect(Set(all.projects.map(\.id)).isSuperset(of: [project, bob.firstProject]))
            let alicesByOperator = try await platform.projectsCall(.get, "/v1/projects?owner_id=" + alice.id.uuidString.lowercased(), token: nil,
                                                                   headers: Self.operatorHeaders).decode(ProjectList.self)
            #expect(alicesByOperator.projects.map(\.id) == [project])

            // Bad query parameters are 422 naming the field.
            for (query, field) in [("limit=0", "limit"), ("limit=x", "limit"), ("cursor=nope", "cursor"), ("include_deleted=maybe", "include_deleted")] {
                let answer = try await platform.projectsCall(.get, "/v1/projects?" + query, token: alice.accessToken)
                #expect(answer.status == 422 && answer.errorEnvelope?.error.field == field, "\(query)")
            }
            let badWait = try await platform.projectsCall(.get, Self.path(project, "?wait=forever"), token: alice.accessToken)
            #expect(badWait.status == 422 && badWait.errorEnvelope?.error.field == "wait")

            // A logout ends the session: provisioning refuses the token from then on.
            let logout = try await platform.client.execute(HTTPClientRequest(
                method: .post, url: platform.url("auth") + "/v1/logout", headers: HTTPClientHeaders([("Authorization", "Bearer " + alice.accessToken)])))
            #expect(logout.status == 204)
            let after = try await platform.projectsCall(.get, Self.path(project), token: alice.accessToken)
            #expect(after.status == 401, "\(after)")
        }
    }

    @Test("a developer creates, pages through and deletes projects within the limit; Idempotency-Key answers a repeat with the same project")
    func createListDeleteAndLimit() async throws {
        try await withTestPlatform(provisioning: ["PROVISIONING_PROJECTS_PER_DEVELOPER": "3"]) { platform, _ in
            let dev = try await platform.registerDeveloper("lim")
            let key = [(PlatformHeader.idempotencyKey, "create-" + TestDatabase.uniqueName("k"))]
            let name = "Second " + TestDatabase.uniqueName("p")
            let created = try await platform.projectsCall(.post, "/v1/projects", token: dev.accessToken, json: NewProjectRequest(name: name), headers: key)
            #expect(created.status == 202, "\(created)")
            let second = try created.decode(ProjectAccepted.self)
            #expect(second.slug == ProjectSlug.derive(from: name) && second.status == .pending)
            // JSON as the conventions want it: lower-case UUIDs, no escaped slashes.
            let text = String(decoding: created.body, as: UTF8.self)
            #expect(text.contains(#""status_url":"http://"#) && !text.contains(#"\/"#), "\(text)")
            #expect(text.contains(second.projectId.uuidString.lowercased()) && !text.contains(second.projectId.uuidString), "\(text)")
            let repeated = try await platform.projectsCall(.post, "/v1/projects", token: dev.accessToken, json: NewProjectRequest(name: name), headers: key)
            #expect(try repeated.decode(ProjectAccepted.self).projectId == second.projectId)

            // A developer cannot create for someone else; the operator must say for whom.
            let forOther = try await platform.projectsCall(.post, "/v1/projects", token: dev.accessToken,
                                                           json: NewProjectRequest(name: "X", slug: TestDatabase.uniqueName("x"), ownerId: UUID()))
            #expect(forOther.status == 422 && forOther.errorEnvelope?.error.field == "owner_id")
            let anonymous = try await platform.projectsCall(.post, "/v1/projects", token: nil, json: NewProjectRequest(name: "X"), headers: Self.operatorHeaders)
            #expect(anonymous.status == 422 && anonymous.errorEnvelope?.error.field == "owner_id")
            let third = try await platform.projectsCall(.post, "/v1/projects", token: nil,
                                                        json: NewProjectRequest(name: "Third", slug: TestDatabase.uniqueName("third"), ownerId: dev.id),
                                                        headers: Self.operatorHeaders)
            #expect(third.status == 202)
            let thirdID = try third.decode(ProjectAccepted.self).projectId

            // The fourth is over the limit of 3.
            let fourth = try await platform.projectsCall(.post, "/v1/projects", token: dev.accessToken,
                                                         json: NewProjectRequest(name: "Fourth", slug: TestDatabase.uniqueName("fourth")))
            #expect(fourth.status == 403 && fourth.errorEnvelope?.error.code == "project_limit_reached", "\(fourth)")

            // Pages of one, newest first, cover every project once.
            var seen: [UUID] = []
            var cursor: UUID?
            repeat {
                let page = try await platform.projectsCall(.get, "/v1/projects?limit=1" + (cursor.map { "&cursor=" + $0.uuidString.lowercased() } ?? ""),
                                                           token: dev.accessToken).decode(ProjectList.self)
                #expect(page.projects.count <= 1)
                seen += page.projects.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil && seen.count < 10
            #expect(seen == [thirdID, second.projectId, dev.firstProject])

            // Deleted projects leave the list and free their place under the limit.
            for id in [second.projectId, thirdID] {
                _ = try await platform.waitForProject(id, in: [.ready, .failed])
                #expect(try await platform.projectsCall(.delete, Self.path(id), token: dev.accessToken).status == 202)
                _ = try await platform.waitForProject(id, in: [.deleted])
            }
            let remaining = try await platform.projectsCall(.get, "/v1/projects", token: dev.accessToken).decode(ProjectList.self)
            #expect(remaining.projects.map(\.id) == [dev.firstProject])
            let withDeleted = try await platform.projectsCall(.get, "/v1/projects?include_deleted=true", token: dev.accessToken).decode(ProjectList.self)
            #expect(withDeleted.projects.count == 3)
            let again = try await platform.projectsCall(.post, "/v1/projects", token: dev.accessToken,
                                                        json: NewProjectRequest(name: "Again", slug: TestDatabase.uniqueName("again")))
            #expect(again.status == 202)
        }
    }

    /// Every full API key (`pk_`/`sk_` and 43 base64url characters) in `text`.
    static func fullKeys(in text: String) -> [String] {
        let pattern = /[ps]k_[A-Za-z0-9_-]{43}/
        return text.matches(of: pattern).map { String($0.output) }
    }

    @Test("keys are revealed once and are then gone from the database (whole dump); unrevealed keys go when the reveal window ends")
    func keysRevealedOnce() async throws {
        try await withTestPlatform { platform, url in
            let dev = try await platform.registerDeveloper("keys")
            _ = try await platform.waitForProject(dev.firstProject, in: [.ready])
            // Before the reveal, the dump holds the readable keys (so the dump check below can fail).
            let before = Self.fullKeys(in: try TestDatabase.dump(url))
            #expect(before.count == 2, "\(before.count) full keys in the dump before the reveal")

            let revealed = try await platform.projectsCall(.get, Self.path(dev.firstProject, "/api-keys"), token: dev.accessToken)
            #expect(revealed.status == 200 && revealed.headers["Cache-Control"] == "no-store")
            let keys = try revealed.decode(ProjectAPIKeys.self)
            let secret = try #require(keys.key(.secret))
            let publishable = try #require(keys.key(.publishable))
            #expect(Set(before) == [secret, publishable])
            #expect(keys.keys.allSatisfy { entry in entry.key?.hasPrefix(entry.prefix) == true })

            let again = try await platform.projectsCall(.get, Self.path(dev.firstProject, "/api-keys"), token: dev.accessToken).decode(ProjectAPIKeys.self)
            #expect(again.keys.map(\.id) == keys.keys.map(\.id) && again.keys.allSatisfy { $0.key == nil })
            let dump = try TestDatabase.dump(url)
            #expect(Self.fullKeys(in: dump).isEmpty)
            #expect(!dump.contains(secret) && !dump.contains(publishable))

            // The keys work: a tenant route accepts the revealed publishable key.
            let settings = try await platform.tenantCall(.get, "auth", "/auth/v1/settings", apikey: publishable)
            #expect(settings.status == 200)
        }

        // A window of 1 second: nobody reads, the janitor deletes them, and no read reveals them.
        try await withTestPlatform(provisioning: ["PROVISIONING_KEY_REVEAL_SECONDS": "1"]) { platform, url in
            let dev = try await platform.registerDeveloper("expire")
            _ = try await platform.waitForProject(dev.firstProject, in: [.ready])
            try await waitUntil("the janitor deleted the unrevealed keys") {
                try await withPool(url: url) { try await $0.scalar("SELECT count(*)::int8 FROM provisioning.api_key_reveals") } == 0
            }
            #expect(Self.fullKeys(in: try TestDatabase.dump(url)).isEmpty)
            let keys = try await platform.projectsCall(.get, Self.path(dev.firstProject, "/api-keys"), token: dev.accessToken).decode(ProjectAPIKeys.self)
            #expect(keys.keys.count == 2 && keys.keys.allSatisfy { $0.key == nil })
        }
    }

    /// One Server-Sent Event as the stream sends it.
    struct StreamEvent: Equatable {
        var id: Int
        var event: String
        var data: [String: JSONValue]

        var status: String? { data["status"]?.stringValue }
        var step: String? { data["step"]?.stringValue }
    }

    /// Parses an event stream's text: `id:`/`event:`/`data:` lines, events separated by a blank
    /// line, comment lines (`:`) skipped.
    static func events(_ body: [UInt8]) throws -> [StreamEvent] {
        var events: [StreamEvent] = []
        for block in String(decoding: body, as: UTF8.self).components(separatedBy: "\n\n") where !block.isEmpty {
            var id: Int?
            var event: String?
            var data: String?
            for line in block.split(separator: "\n") where !line.hasPrefix(":") {
                if line.hasPrefix("id: ") { id = Int(line.dropFirst(4)) }
                if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            guard let id, let event, let data else { continue }
            let object = try JSONDecoder().decode([String: JSONValue].self, from: Data(data.utf8))
            events.append(StreamEvent(id: id, event: event, data: object))
        }
        return events
    }

    @Test("the event stream carries every transition in order, ends at ready, and resumes after Last-Event-ID; ?wait= answers on a change")
    func eventStream() async throws {
        try await withTestPlatform { platform, _ in
            let dev = try await platform.registerDeveloper("sse")
            let created = try await platform.projectsCall(.post, "/v1/projects", token: dev.accessToken,
                                                          json: NewProjectRequest(name: "Stream", slug: TestDatabase.uniqueName("sse")))
            let project = try created.decode(ProjectAccepted.self).projectId

            // A long poll started now answers once the status is no longer the one it found.
            async let polled = platform.projectsCall(.get, Self.path(project, "?wait=50s"), token: dev.accessToken, timeout: .seconds(90))
            // Opened while the project is still being provisioned, the stream ends only at ready.
            let streamed = try await platform.projectsCall(.get, Self.path(project, "/events"), token: dev.accessToken, timeout: .seconds(90))
            #expect(streamed.status == 200 && streamed.headers["Content-Type"]?.hasPrefix("text/event-stream") == true)
            let events = try Self.events(streamed.body)
            #expect(events.map(\.id) == Array(1...events.count), "gap-free numbering")
            let statuses = events.filter { $0.event == "project.status" }.compactMap(\.status)
            #expect(statuses == ["pending", "running", "ready"])
            #expect(events.last?.data["project_status"]?.stringValue == "ready")
            // Every step runs (and succeeds) once, each after it began.
            for step in ["create_tenant_schema", "create_tenant_tables", "register_auth", "register_realtime", "register_storage",
                         "generate_api_keys", "activate"] {
                let its = events.filter { $0.step == step }.map { $0.status ?? "" }
                #expect(its.last == "succeeded", "\(step): \(its)")
                if step != "activate" { #expect(its == ["running", "succeeded"], "\(step): \(its)") }
            }
            let readyAt = try #require(events.firstIndex { $0.event == "project.status" && $0.status == "ready" })
            let runningAt = try #require(events.firstIndex { $0.event == "project.status" && $0.status == "running" })
            #expect(events[runningAt..<readyAt].contains { $0.step == "generate_api_keys" && $0.status == "succeeded" })
            #expect(events.allSatisfy { $0.data["project_id"]?.stringValue == project.uuidString.lowercased() && $0.data["created_at"]?.stringValue?.hasSuffix("Z") == true })

            // Resume: only what came after the given id.
            let resumeAfter = events[2].id
            let resumed = try await platform.projectsCall(.get, Self.path(project, "/events"), token: dev.accessToken,
                                                          headers: [("Last-Event-ID", String(resumeAfter))])
            #expect(try Self.events(resumed.body) == Array(events.dropFirst(3)))
            let byQuery = try await platform.projectsCall(.get, Self.path(project, "/events?last_event_id=\(events.count)"), token: dev.accessToken)
            #expect(try Self.events(byQuery.body).isEmpty && byQuery.status == 200)
            let badResume = try await platform.projectsCall(.get, Self.path(project, "/events"), token: dev.accessToken, headers: [("Last-Event-ID", "x")])
            #expect(badResume.status == 422)

            let poll = try await polled.decode(ProjectStatus.self)
            #expect(poll.status != .pending)

            // A delete streams on from where the client left off, to deleted.
            #expect(try await platform.projectsCall(.delete, Self.path(project), token: dev.accessToken).status == 202)
            let deleting = try await platform.projectsCall(.get, Self.path(project, "/events"), token: dev.accessToken,
                                                           headers: [("Last-Event-ID", String(events.count))], timeout: .seconds(90))
            let after = try Self.events(deleting.body)
            #expect(after.first?.id == events.count + 1)
            #expect(after.filter { $0.event == "project.status" }.compactMap(\.status) == ["deprovisioning", "deleted"])
        }
    }

    @Test("a failed project's event names the failing step and its error")
    func failureEvent() async throws {
        try await withTestPlatform { platform, _ in
            let dev = try await platform.registerDeveloper("fail")
            _ = try await platform.waitForProject(dev.firstProject, in: [.ready])
            // Storage is down for good: register_storage fails permanently after its attempts.
            await platform.stop("storage")
            let created = try await platform.projectsCall(.post, "/v1/projects", token: dev.accessToken,
                                                          json: NewProjectRequest(name: "Doomed", slug: TestDatabase.uniqueName("doom")))
            let project = try created.decode(ProjectAccepted.self).projectId
            let streamed = try await platform.projectsCall(.get, Self.path(project, "/events"), token: dev.accessToken, timeout: .seconds(90))
            let events = try Self.events(streamed.body)
            let failed = try #require(events.last { $0.event == "project.status" })
            #expect(failed.status == "failed" && failed.data["is_active"] == .bool(false))
            #expect(failed.data["failed_step"]?.stringValue == "register_storage")
            #expect(failed.data["error"]?.stringValue?.isEmpty == false)
            #expect(events.contains { $0.step == "register_auth" && $0.status == "compensated" })
        }
    }
}

extension JSONValue {
    var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}
