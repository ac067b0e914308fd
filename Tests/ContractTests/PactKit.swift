import Contracts
import Foundation
import Hummingbird
import Logging
import Synchronization

/// A small Pact kit for consumer tests (Pact specification v3, HTTP interactions only):
///
/// 1. Declare an ``Interaction`` in Swift: description, provider states (name + params), the
///    request the consumer sends, the response it expects, with ``PactValue`` matchers where the
///    exact value does not matter (`like` = same type, `term` = regex, `eachLike` = an array
///    of such elements).
/// 2. ``Pact/verify(_:_:)`` runs the consumer's real code against a stub HTTP server that knows
///    only that interaction: a request that matches it gets the declared response, anything
///    else gets a 500 and fails the test, and so does the interaction never being requested.
/// 3. ``Pact/write(to:)`` writes `contracts/pacts/<consumer>-<provider>.json` in Pact v3 JSON,
///    which the provider side (`deploy/scripts/contracts.sh`) replays against the real
///    provider with the official Pact verifier.
enum PactKit {
    /// `PACT_OUTPUT_DIR`, or `contracts/pacts` at the repository root.
    static var outputDirectory: URL {
        if let directory = ProcessInfo.processInfo.environment["PACT_OUTPUT_DIR"], !directory.isEmpty {
            return URL(fileURLWithPath: directory, isDirectory: true)
        }
        // …/Tests/ContractTests/PactKit.swift → the repository root.
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("contracts/pacts", isDirectory: true)
    }

    static let specificationVersion = "3.0.0"
}

// MARK: - Examples with matching rules

/// A JSON example, with Pact matching rules wherever the exact value does not matter.
indirect enum PactValue: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByDictionaryLiteral, ExpressibleByArrayLiteral
{
    case string(String)
    case integer(Int)
    case number(Double)
    case bool(Bool)
    case null
    /// Keys in declaration order (the file is written with sorted keys anyway).
    case object([(String, PactValue)])
    case array([PactValue])
    /// Any value of the example's type; for objects and arrays the rule cascades to what is
    /// inside (Pact's `like`).
    case like(PactValue)
    /// A string matching `regex` (Pact's `term`); the example must match it.
    case term(regex: String, example: String)
    /// An array of at least `min` elements, each like `element` (Pact's `eachLike`).
    case eachLike(PactValue, min: Int)

    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .integer(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(dictionaryLiteral elements: (String, PactValue)...) { self = .object(elements) }
    init(arrayLiteral elements: PactValue...) { self = .array(elements) }

    /// UUIDs lower-case, as every service writes them (bodies, paths and PostgreSQL alike).
    static let uuidPattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    /// RFC 3339 date-times in seconds and UTC (`Z`): what the services' encoders write and what
    /// the consumers' decoders (`.iso8601`, no fractional seconds) read.
    static let timestampPattern = #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"#

    static func uuid(_ example: String) -> PactValue { .term(regex: uuidPattern, example: example.lowercased()) }
    static func timestamp(_ example: String) -> PactValue { .term(regex: timestampPattern, example: example) }
    /// Exactly this string, even inside a `like` or `eachLike` (whose type rule would otherwise
    /// accept any string).
    static func exactly(_ value: String) -> PactValue {
        .term(regex: "^" + NSRegularExpression.escapedPattern(for: value) + "$", example: value)
    }

    /// The example as plain JSON, appending the matching rules it carries (Pact v3 paths) to
    /// `rules`.
    func flatten(at path: String, into rules: inout [(path: String, matcher: PactMatcher)]) -> JSONValue {
        switch self {
        case .string(let value): return .string(value)
        case .integer(let value): return .number(Double(value))
        case .number(let value): return .number(value)
        case .bool(let value): return .bool(value)
        case .null: return .null
        case .object(let pairs):
            var object: [String: JSONValue] = [:]
            for (key, value) in pairs { object[key] = value.flatten(at: PactPath.appending(key: key, to: path), into: &rules) }
            return .object(object)
        case .array(let items):
            return .array(items.enumerated().map { index, item in item.flatten(at: "\(path)[\(index)]", into: &rules) })
        case .like(let inner):
            rules.append((path, .type(min: nil)))
            return inner.flatten(at: path, into: &rules)
        case .term(let regex, let example):
            rules.append((path, .regex(regex)))
            return .string(example)
        case .eachLike(let element, let min):
            rules.append((path, .type(min: min)))
            let example = element.flatten(at: path + "[*]", into: &rules)
            return .array(Array(repeating: example, count: Swift.max(min, 1)))
        }
    }
}

/// One Pact v3 matcher.
enum PactMatcher: Sendable, Equatable {
    case type(min: Int?)
    case regex(String)

    var json: [String: Any] {
        switch self {
        case .type(let min?): ["match": "type", "min": min]
        case .type(nil): ["match": "type"]
        case .regex(let regex): ["match": "regex", "regex": regex]
        }
    }
}

/// Pact v3 JSON paths: `$`, `$.name`, `$['odd name']`, `$.list[0]`, `$.list[*]`, `$.*`.
enum PactPath {
    enum Token: Equatable {
        case field(String)
        case index(Int)
        case anyField
        case anyIndex
    }

    static func appending(key: String, to path: String) -> String {
        let plain = key.first.map { $0.isLetter || $0 == "_" } == true && key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
        return plain ? path + "." + key : path + "['" + key + "']"
    }

    /// The tokens of a rule path, or nil when it is not one this kit writes.
    static func parse(_ path: String) -> [Token]? {
        guard path.hasPrefix("$") else { return nil }
        var tokens: [Token] = []
        var rest = Substring(path.dropFirst())
        while !rest.isEmpty {
            if rest.hasPrefix(".*") {
                tokens.append(.anyField)
                rest = rest.dropFirst(2)
            } else if rest.hasPrefix(".") {
                rest = rest.dropFirst()
                let name = rest.prefix { $0 != "." && $0 != "[" }
                guard !name.isEmpty else { return nil }
                tokens.append(.field(String(name)))
                rest = rest.dropFirst(name.count)
            } else if rest.hasPrefix("['") {
                guard let end = rest.range(of: "']") else { return nil }
                tokens.append(.field(String(rest[rest.index(rest.startIndex, offsetBy: 2)..<end.lowerBound])))
                rest = rest[end.upperBound...]
            } else if rest.hasPrefix("[*]") {
                tokens.append(.anyIndex)
                rest = rest.dropFirst(3)
            } else if rest.hasPrefix("[") {
                guard let end = rest.firstIndex(of: "]"), let index = Int(rest[rest.index(after: rest.startIndex)..<end]) else { return nil }
                tokens.append(.index(index))
                rest = rest[rest.index(after: end)...]
            } else {
                return nil
            }
        }
        return tokens
    }

    static func render(_ tokens: [Token]) -> String {
        tokens.reduce("$") { path, token in
            switch token {
            case .field(let name): appending(key: name, to: path)
            case .index(let index): "\(path)[\(index)]"
            case .anyField: path + ".*"
            case .anyIndex: path + "[*]"
            }
        }
    }

    /// Whether `rule` names `actual` (wildcards match any field or index).
    static func matches(_ rule: [Token], _ actual: [Token]) -> Bool {
        guard rule.count == actual.count else { return false }
        return zip(rule, actual).allSatisfy { ruleToken, token in
            switch (ruleToken, token) {
            case (.anyField, .field), (.anyIndex, .index): true
            default: ruleToken == token
            }
        }
    }
}

// MARK: - Interactions

/// A provider state: what must hold on the provider before the request is replayed. `params`
/// tell the provider's state handler the ids, slugs and keys involved.
struct ProviderState: Sendable {
    var name: String
    var params: [(String, PactValue)] = []
}

/// One request the consumer sends and the response it relies on.
struct Interaction: Sendable {
    struct Request: Sendable {
        var method: String
        var path: String
        var query: [(String, [String])] = []
        /// Headers the provider needs; the consumer may send more (Pact allows extra request
        /// headers). A `.term` value matches by regex.
        var headers: [(String, PactValue)] = []
        var body: PactValue?
    }

    struct Response: Sendable {
        var status: Int
        /// Headers the consumer relies on; the provider may send more.
        var headers: [(String, PactValue)] = []
        /// Nil: the consumer does not read the body, so none is required.
        var body: PactValue?
    }

    var description: String
    var states: [ProviderState]
    var request: Request
    var response: Response
}

/// The flattened form of an interaction's part: example values and matching rules.
struct FlattenedPart {
    var headers: [String: String] = [:]
    var headerRules: [String: PactMatcher] = [:]
    var body: JSONValue?
    var bodyRules: [(path: String, matcher: PactMatcher)] = []

    init(headers: [(String, PactValue)], body: PactValue?) {
        for (name, value) in headers {
            var rules: [(path: String, matcher: PactMatcher)] = []
            if case .string(let text) = value.flatten(at: "$", into: &rules) {
                self.headers[name] = text
            }
            if let rule = rules.first { headerRules[name] = rule.matcher }
        }
        self.body = body.map { $0.flatten(at: "$", into: &bodyRules) }
    }

    /// The v3 `matchingRules` object for this part (nil when there are none).
    var matchingRules: [String: Any]? {
        var result: [String: Any] = [:]
        if !bodyRules.isEmpty {
            var grouped: [String: [[String: Any]]] = [:]
            for rule in bodyRules { grouped[rule.path, default: []].append(rule.matcher.json) }
            result["body"] = grouped.mapValues { ["matchers": $0, "combine": "AND"] as [String: Any] }
        }
        if !headerRules.isEmpty {
            result["header"] = headerRules.mapValues { ["matchers": [$0.json], "combine": "AND"] as [String: Any] }
        }
        return result.isEmpty ? nil : result
    }
}

extension Interaction {
    /// The interaction as Pact v3 JSON (Foundation objects for `JSONSerialization`).
    var pactJSON: [String: Any] {
        let requestPart = FlattenedPart(headers: request.headers, body: request.body)
        let responsePart = FlattenedPart(headers: response.headers, body: response.body)
        var requestJSON: [String: Any] = ["method": request.method, "path": request.path]
        if !request.query.isEmpty { requestJSON["query"] = Dictionary(request.query, uniquingKeysWith: { $1 }) }
        if !requestPart.headers.isEmpty { requestJSON["headers"] = requestPart.headers }
        if let body = requestPart.body { requestJSON["body"] = body.foundation }
        if let rules = requestPart.matchingRules { requestJSON["matchingRules"] = rules }
        var responseJSON: [String: Any] = ["status": response.status]
        if !responsePart.headers.isEmpty { responseJSON["headers"] = responsePart.headers }
        if let body = responsePart.body { responseJSON["body"] = body.foundation }
        if let rules = responsePart.matchingRules { responseJSON["matchingRules"] = rules }
        return [
            "description": description,
            "providerStates": states.map { state -> [String: Any] in
                var rules: [(path: String, matcher: PactMatcher)] = []
                let params = PactValue.object(state.params).flatten(at: "$", into: &rules)
                return ["name": state.name, "params": params.foundation]
            },
            "request": requestJSON,
            "response": responseJSON,
        ]
    }

    /// "description (given a, b)": how failures name the interaction.
    var title: String {
        states.isEmpty ? "«\(description)»" : "«\(description)» (given \(states.map(\.name).joined(separator: ", ")))"
    }
}

extension JSONValue {
    /// For `JSONSerialization`: integral numbers as integers, so `201` is not written `201.0`.
    var foundation: Any {
        switch self {
        case .null: NSNull()
        case .bool(let value): value
        case .number(let value):
            if value.rounded() == value, abs(value) < 9_007_199_254_740_992 { Int(value) } else { value }
        case .string(let value): value
        case .array(let values): values.map(\.foundation)
        case .object(let values): values.mapValues(\.foundation)
        }
    }
}

// MARK: - Matching

/// Compares an actual JSON document with an example under Pact v3 matching rules: the rule with
/// the most specific path that names a value (or, for `type`, one of its ancestors) decides;
/// without one, values must be equal. Objects must carry every expected key; unexpected keys
/// are refused in requests and allowed in responses (Pact's rule: be strict in what you send).
struct PactComparison {
    let rules: [(tokens: [PactPath.Token], matcher: PactMatcher)]
    let allowUnexpectedKeys: Bool

    init(rules: [(path: String, matcher: PactMatcher)], allowUnexpectedKeys: Bool) {
        self.rules = rules.compactMap { rule in PactPath.parse(rule.path).map { ($0, rule.matcher) } }
        self.allowUnexpectedKeys = allowUnexpectedKeys
    }

    func mismatches(expected: JSONValue, actual: JSONValue) -> [String] {
        compare(expected, actual, at: [])
    }

    private func rule(for path: [PactPath.Token]) -> PactMatcher? {
        var best: (length: Int, matcher: PactMatcher)?
        for rule in rules where rule.tokens.count <= path.count {
            let length = rule.tokens.count
            let applies: PactMatcher
            if length == path.count {
                applies = rule.matcher
            } else if case .type = rule.matcher {
                applies = .type(min: nil)  // a type rule cascades inside; its `min` is its own array's
            } else {
                continue  // a regex names one value
            }
            guard PactPath.matches(rule.tokens, Array(path.prefix(length))) else { continue }
            if best.map({ length >= $0.length }) ?? true { best = (length, applies) }
        }
        return best?.matcher
    }

    private func compare(_ expected: JSONValue, _ actual: JSONValue, at path: [PactPath.Token]) -> [String] {
        let here = PactPath.render(path)
        switch rule(for: path) {
        case .regex(let pattern)?:
            let text: String
            switch actual {
            case .string(let value): text = value
            case .number(let value): text = JSONValue.number(value).foundation is Int ? String(Int(value)) : String(value)
            case .bool(let value): text = String(value)
            default: return ["\(here): expected a value matching /\(pattern)/, got \(actual.summary)"]
            }
            return Self.matches(text, pattern) ? [] : ["\(here): \(actual.summary) does not match /\(pattern)/"]
        case .type(let min)?:
            guard expected.kind == actual.kind else {
                return ["\(here): expected \(expected.kind) (like \(expected.summary)), got \(actual.summary)"]
            }
            if case .array(let examples) = expected, case .array(let values) = actual {
                var problems: [String] = []
                if let min, values.count < min { problems.append("\(here): expected at least \(min) elements, got \(values.count)") }
                guard let example = examples.first else { return problems }
                for (index, value) in values.enumerated() {
                    problems += compare(example, value, at: path + [.index(index)])
                }
                return problems
            }
            return compareStructure(expected, actual, at: path)
        case nil:
            if case .array(let examples) = expected, case .array(let values) = actual {
                guard examples.count == values.count else {
                    return ["\(here): expected \(examples.count) elements, got \(values.count)"]
                }
                return zip(examples, values).enumerated().flatMap { index, pair in compare(pair.0, pair.1, at: path + [.index(index)]) }
            }
            if case .object = expected {
                return compareStructure(expected, actual, at: path)
            }
            return expected == actual ? [] : ["\(here): expected \(expected.summary), got \(actual.summary)"]
        }
    }

    /// Objects key by key; anything else of the same kind passes (a type rule).
    private func compareStructure(_ expected: JSONValue, _ actual: JSONValue, at path: [PactPath.Token]) -> [String] {
        let here = PactPath.render(path)
        guard case .object(let examples) = expected else {
            return expected.kind == actual.kind ? [] : ["\(here): expected \(expected.summary), got \(actual.summary)"]
        }
        guard case .object(let values) = actual else { return ["\(here): expected an object, got \(actual.summary)"] }
        var problems: [String] = []
        for key in examples.keys.sorted() {
            guard let value = values[key], let example = examples[key] else {
                problems.append("\(PactPath.render(path + [.field(key)])): missing")
                continue
            }
            problems += compare(example, value, at: path + [.field(key)])
        }
        if !allowUnexpectedKeys {
            for key in values.keys.sorted() where examples[key] == nil {
                problems.append("\(PactPath.render(path + [.field(key)])): unexpected key")
            }
        }
        return problems
    }

    static func matches(_ text: String, _ pattern: String) -> Bool {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return false }
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}

extension JSONValue {
    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// A short rendering for mismatch messages.
    var summary: String {
        guard let data = try? JSONSerialization.data(withJSONObject: foundation, options: [.sortedKeys, .fragmentsAllowed]) else { return kind }
        let text = String(decoding: data, as: UTF8.self)
        return text.count > 120 ? String(text.prefix(117)) + "…" : text
    }
}

// MARK: - The stub provider

/// A request as the stub saw it.
struct RecordedRequest: Sendable {
    var method: String
    var path: String
    var query: String?
    var headers: [(String, String)]
    var body: [UInt8]

    var title: String { "\(method) \(path)\(query.map { "?" + $0 } ?? "")" }

    func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }
}

extension Interaction.Request {
    /// Why `actual` is not this request (empty when it is).
    func mismatches(_ actual: RecordedRequest) -> [String] {
        var problems: [String] = []
        if method.uppercased() != actual.method.uppercased() { problems.append("method: expected \(method), got \(actual.method)") }
        if path != actual.path { problems.append("path: expected \(path), got \(actual.path)") }
        let actualQuery = Self.parseQuery(actual.query)
        let expectedQuery = Dictionary(query, uniquingKeysWith: { $1 })
        if actualQuery != expectedQuery { problems.append("query: expected \(expectedQuery), got \(actualQuery)") }
        let part = FlattenedPart(headers: headers, body: body)
        for (name, example) in part.headers.sorted(by: { $0.key < $1.key }) {
            guard let value = actual.header(name) else {
                problems.append("header \(name): missing")
                continue
            }
            if case .regex(let pattern)? = part.headerRules[name] {
                if !PactComparison.matches(value, pattern) { problems.append("header \(name): \"\(value)\" does not match /\(pattern)/") }
            } else if value != example {
                problems.append("header \(name): expected \"\(example)\", got \"\(value)\"")
            }
        }
        if let expectedBody = part.body {
            guard let actualBody = try? JSONDecoder().decode(JSONValue.self, from: Data(actual.body)) else {
                problems.append("body: expected JSON like \(expectedBody.summary), got \(actual.body.count) bytes that are not JSON")
                return problems
            }
            let comparison = PactComparison(rules: part.bodyRules, allowUnexpectedKeys: false)
            problems += comparison.mismatches(expected: expectedBody, actual: actualBody).map { "body " + $0 }
        }
        return problems
    }

    static func parseQuery(_ query: String?) -> [String: [String]] {
        guard let query, !query.isEmpty else { return [:] }
        var result: [String: [String]] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(parts[1])) : ""
            result[name, default: []].append(value)
        }
        return result
    }
}

/// A stub provider for one consumer test: answers requests that match one of `interactions`
/// with its response, and records everything else.
final class PactStub: Sendable {
    let interactions: [Interaction]
    private let state = Mutex<(hits: [Int], unexpected: [String])>(([], []))

    init(_ interactions: [Interaction]) {
        self.interactions = interactions
        state.withLock { $0.hits = Array(repeating: 0, count: interactions.count) }
    }

    /// Unexpected requests, then interactions never requested: what fails the test.
    var problems: [String] {
        state.withLock { state in
            state.unexpected + zip(interactions, state.hits).compactMap { interaction, hits in
                hits == 0 ? "missing request: \(interaction.title) expected \(interaction.request.method) \(interaction.request.path), never received" : nil
            }
        }
    }

    func respond(to recorded: RecordedRequest) -> Response {
        var explanations: [String] = []
        for (index, interaction) in interactions.enumerated() {
            let problems = interaction.request.mismatches(recorded)
            if problems.isEmpty {
                state.withLock { $0.hits[index] += 1 }
                return Self.response(interaction.response)
            }
            explanations.append("  against \(interaction.title):\n" + problems.map { "    - " + $0 }.joined(separator: "\n"))
        }
        let message = "unexpected request \(recorded.title)\n" + explanations.joined(separator: "\n")
        state.withLock { $0.unexpected.append(message) }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let body = try? JSONSerialization.data(withJSONObject: ["error": ["code": "pact_mismatch", "message": message]])
        return Response(status: .internalServerError, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body ?? Data())))
    }

    static func response(_ response: Interaction.Response) -> Response {
        let part = FlattenedPart(headers: response.headers, body: response.body)
        var headers = HTTPFields()
        for (name, value) in part.headers.sorted(by: { $0.key < $1.key }) {
            if let field = HTTPFields.Element.Name(name) { headers[field] = value }
        }
        var bytes: [UInt8] = []
        if let body = part.body,
           let data = try? JSONSerialization.data(withJSONObject: body.foundation, options: [.sortedKeys, .fragmentsAllowed]) {
            bytes = Array(data)
            if headers[.contentType] == nil { headers[.contentType] = "application/json" }
        }
        return Response(status: HTTPResponse.Status(code: response.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// Runs the stub on 127.0.0.1 (an ephemeral port) while `body` runs with its base URL; then
    /// returns the stub's problems (and rethrows `body`'s error, if any, after stopping).
    static func run(
        _ interactions: [Interaction],
        _ body: @Sendable (String) async throws -> Void
    ) async throws -> (problems: [String], error: (any Error)?) {
        let stub = PactStub(interactions)
        var logger = Logger(label: "pact-stub")
        logger.logLevel = .critical
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            let bytes = try await request.body.collect(upTo: 1 << 20)
            let recorded = RecordedRequest(
                method: request.method.rawValue, path: request.uri.path, query: request.uri.query,
                headers: request.headers.map { ($0.name.rawName, $0.value) }, body: Array(buffer: bytes)
            )
            return stub.respond(to: recorded)
        }
        let app = Application(
            responder: responder,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger
        )
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            defer { group.cancelAll() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else { throw PactFailure(messages: ["the stub server did not start"]) }
            var failure: (any Error)?
            do {
                try await body("http://127.0.0.1:\(port)")
            } catch {
                failure = error
            }
            return (stub.problems, failure)
        }
    }
}

struct PactFailure: Error, CustomStringConvertible {
    var messages: [String]
    var description: String { messages.joined(separator: "\n") }
}

// MARK: - The pact file

/// The interactions of one consumer–provider pair, verified one by one against the stub, and
/// written as a Pact v3 file once all passed.
struct Pact: Sendable {
    let consumer: String
    let provider: String
    private(set) var interactions: [Interaction] = []

    init(consumer: String, provider: String) {
        self.consumer = consumer
        self.provider = provider
    }

    /// Runs `consumerCode` (the consumer's real client calls, with their assertions) against a
    /// stub that knows only `interaction`, and keeps the interaction for the file when the
    /// consumer sent exactly the declared request and nothing else, and itself passed.
    mutating func verify(_ interaction: Interaction, _ consumerCode: @Sendable (_ baseURL: String) async throws -> Void) async throws {
        let (problems, error) = try await PactStub.run([interaction], consumerCode)
        guard problems.isEmpty else {
            var messages = ["\(consumer) → \(provider): \(interaction.title) failed on the stub:"] + problems
            if let error { messages.append("the consumer code threw: \(error)") }
            throw PactFailure(messages: messages)
        }
        if let error { throw error }
        interactions.append(interaction)
    }

    /// The file's name: `<consumer>-<provider>.json`.
    var fileName: String { "\(consumer)-\(provider).json" }

    /// The Pact v3 document, pretty-printed with sorted keys so regenerating it changes nothing
    /// unless an interaction did.
    func document() throws -> Data {
        var seen = Set<String>()
        for interaction in interactions {
            let key = interaction.description + "|" + interaction.states.map(\.name).joined(separator: "|")
            guard seen.insert(key).inserted else { throw PactFailure(messages: ["duplicate interaction \(interaction.title)"]) }
        }
        let document: [String: Any] = [
            "consumer": ["name": consumer],
            "provider": ["name": provider],
            "interactions": interactions.map(\.pactJSON),
            "metadata": ["pactSpecification": ["version": PactKit.specificationVersion]],
        ]
        var data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        data.append(0x0A)
        return data
    }

    /// Writes the file into `directory` (default `contracts/pacts`); returns its URL.
    @discardableResult
    func write(to directory: URL = PactKit.outputDirectory) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent(fileName)
        try document().write(to: url, options: .atomic)
        return url
    }
}
