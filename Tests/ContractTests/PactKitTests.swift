import Contracts
import Foundation
import HTTPClient
import Testing

/// The Pact kit itself: matching rules, the stub's refusals, and the v3 file it writes.
@Suite("Pact kit")
struct PactKitTests {
    static func json(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    static func mismatches(_ example: PactValue, _ actual: String, strict: Bool = false) throws -> [String] {
        var rules: [(path: String, matcher: PactMatcher)] = []
        let expected = example.flatten(at: "$", into: &rules)
        return PactComparison(rules: rules, allowUnexpectedKeys: !strict).mismatches(expected: expected, actual: try json(actual))
    }

    @Test("matching rules: type, regex, eachLike with min, exact values elsewhere, missing and unexpected keys")
    func matching() throws {
        let example: PactValue = [
            "id": .uuid("e220582a-be1d-41e2-9357-345acb6f639a"),
            "count": .like(3),
            "name": "exact",
            "when": .timestamp("2026-01-01T12:00:00Z"),
            "items": .eachLike(["kind": .exactly("EC"), "kid": .like("a")], min: 1),
        ]
        let good = #"{"id":"00000000-0000-4000-8000-000000000000","count":7,"name":"exact","when":"2030-05-06T07:08:09Z","items":[{"kind":"EC","kid":"x"},{"kind":"EC","kid":"y"}]}"#
        #expect(try Self.mismatches(example, good).isEmpty)

        let bad = #"{"id":"e220582a-be1d-41e2-9357","count":"7","name":"other","when":"2030-05-06T07:08:09.123Z","items":[{"kind":"RSA","kid":1}]}"#
        let problems = try Self.mismatches(example, bad)
        #expect(problems.contains { $0.hasPrefix("$.id:") })            // not a whole UUID
        #expect(problems.contains { $0.hasPrefix("$.count:") })         // a string, not a number
        #expect(problems.contains { $0.hasPrefix("$.name:") })          // no rule: must be equal
        #expect(problems.contains { $0.hasPrefix("$.when:") })          // fractional seconds: .iso8601 cannot read them
        #expect(problems.contains { $0.hasPrefix("$.items[0].kind:") }) // the exact rule beats the cascading type rule
        #expect(problems.contains { $0.hasPrefix("$.items[0].kid:") })  // the cascading type rule
        #expect(problems.count == 6, "\(problems)")

        #expect(try Self.mismatches(example, #"{"id":"00000000-0000-4000-8000-000000000000","count":1,"name":"exact","when":"2030-05-06T07:08:09Z","items":[]}"#)
            == ["$.items: expected at least 1 elements, got 0"])
        #expect(try Self.mismatches(["a": 1], #"{"b":1}"#) == ["$.a: missing"])
        // Unexpected keys: allowed in responses, refused in requests.
        #expect(try Self.mismatches(["a": 1], #"{"a":1,"b":2}"#).isEmpty)
        #expect(try Self.mismatches(["a": 1], #"{"a":1,"b":2}"#, strict: true) == ["$.b: unexpected key"])
    }

    static let interaction = Interaction(
        description: "a request for a thing",
        states: [ProviderState(name: "the thing exists", params: [("id", "7")])],
        request: .init(method: "PUT", path: "/things/7", headers: [("X-Token", .term(regex: "^t-", example: "t-1"))], body: ["name": .like("x")]),
        response: .init(status: 201, headers: [("Content-Type", "application/json")], body: ["id": .like("7"), "made_at": .timestamp("2026-01-01T00:00:00Z")])
    )

    static func send(_ url: String, method: HTTPMethod = .put, path: String = "/things/7", token: String = "t-2", body: String = #"{"name":"y"}"#) async throws -> HTTPClientResponse {
        var status: HTTPClientResponse?
        try await Fixtures.withClient { http in
            status = try await http.execute(HTTPClientRequest(method: method, url: url + path, headers: [("X-Token", token)], body: Array(body.utf8)))
        }
        return try #require(status)
    }

    @Test("the stub answers a matching request with the declared response, and nothing else")
    func stubAnswers() async throws {
        let (problems, error) = try await PactStub.run([Self.interaction]) { url in
            let response = try await Self.send(url)
            #expect(response.status == 201)
            #expect(response.headers["Content-Type"] == "application/json")
            #expect(try JSONDecoder().decode([String: String].self, from: Data(response.body)) == ["id": "7", "made_at": "2026-01-01T00:00:00Z"])
        }
        #expect(problems.isEmpty && error == nil)
    }

    @Test("the stub fails the test on an unexpected request, naming what differs, and on a missing one")
    func stubRefuses() async throws {
        let (problems, _) = try await PactStub.run([Self.interaction]) { url in
            let wrong = try await Self.send(url, token: "bad", body: #"{"name":1,"extra":true}"#)
            #expect(wrong.status == 500)
        }
        let text = problems.joined(separator: "\n")
        #expect(problems.count == 2, "\(problems)")
        #expect(text.contains("unexpected request PUT /things/7"))
        #expect(text.contains("header X-Token: \"bad\" does not match /^t-/"))
        #expect(text.contains("body $.name: expected a string"))
        #expect(text.contains("body $.extra: unexpected key"))
        #expect(text.contains("missing request: «a request for a thing» (given the thing exists)"))

        let (silent, _) = try await PactStub.run([Self.interaction]) { _ in }
        #expect(silent.count == 1 && silent[0].hasPrefix("missing request"))
    }

    @Test("a pact keeps only interactions the consumer passed, and is refused when the consumer sent something else")
    func verifyRefuses() async throws {
        var pact = Pact(consumer: "c", provider: "p")
        await #expect(throws: PactFailure.self) {
            try await pact.verify(Self.interaction) { url in _ = try await Self.send(url, path: "/things/8") }
        }
        #expect(pact.interactions.isEmpty)
        try await pact.verify(Self.interaction) { url in _ = try await Self.send(url) }
        #expect(pact.interactions.count == 1)
    }

    @Test("the file is Pact v3: consumer, provider, providerStates with params, v3 matchingRules, metadata 3.0.0")
    func fileFormat() async throws {
        var pact = Pact(consumer: "c", provider: "p")
        try await pact.verify(Self.interaction) { url in _ = try await Self.send(url) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pactkit-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = try pact.write(to: directory)
        #expect(url.lastPathComponent == "c-p.json")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        #expect((document["consumer"] as? [String: String]) == ["name": "c"])
        #expect((document["provider"] as? [String: String]) == ["name": "p"])
        #expect(((document["metadata"] as? [String: Any])?["pactSpecification"] as? [String: String]) == ["version": "3.0.0"])
        let interaction = try #require((document["interactions"] as? [[String: Any]])?.first)
        #expect(interaction["description"] as? String == "a request for a thing")
        let state = try #require((interaction["providerStates"] as? [[String: Any]])?.first)
        #expect(state["name"] as? String == "the thing exists" && (state["params"] as? [String: String]) == ["id": "7"])
        let request = try #require(interaction["request"] as? [String: Any])
        #expect(request["method"] as? String == "PUT" && request["path"] as? String == "/things/7")
        let requestRules = try #require(request["matchingRules"] as? [String: Any])
        let nameRule = try #require((requestRules["body"] as? [String: Any])?["$.name"] as? [String: Any])
        #expect((nameRule["matchers"] as? [[String: String]]) == [["match": "type"]])
        let headerRule = try #require((requestRules["header"] as? [String: Any])?["X-Token"] as? [String: Any])
        #expect((headerRule["matchers"] as? [[String: String]]) == [["match": "regex", "regex": "^t-"]])
        let response = try #require(interaction["response"] as? [String: Any])
        #expect(response["status"] as? Int == 201)
        let madeAt = try #require(((response["matchingRules"] as? [String: Any])?["body"] as? [String: Any])?["$.made_at"] as? [String: Any])
        #expect((madeAt["matchers"] as? [[String: String]])?.first?["match"] == "regex")
        // Stable bytes: writing again changes nothing.
        #expect(try pact.document() == Data(contentsOf: url))
    }
}
