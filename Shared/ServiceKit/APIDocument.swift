import Contracts
import Foundation
import Hummingbird
import Synchronization

/// A service's OpenAPI 3.1 document (`Services/<Name>/openapi.json`, bundled with the
/// executable as a resource), served as it is at `GET /openapi.json`.
///
/// It is parsed once at start-up, enough to know which operations it describes, so the service
/// can compare them with its router's routes (`ServiceRuntime.makeApplication` logs any
/// difference; `Tests/ServiceTests/OpenAPITests.swift` fails on one).
public struct APIDocument: Sendable {
    /// The document's bytes, exactly as served.
    public let bytes: [UInt8]
    /// The `openapi` field (`3.1.x`).
    public let version: String
    /// Every operation of `paths`, as method (upper case) and path.
    public let operations: Set<ServiceRoute>

    static let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    public init(json bytes: [UInt8]) throws {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes))
        } catch {
            throw ConfigurationError(description: "the OpenAPI document is not valid JSON: \(error)")
        }
        guard let document = object as? [String: Any], let version = document["openapi"] as? String,
              let paths = document["paths"] as? [String: Any]
        else {
            throw ConfigurationError(description: "the OpenAPI document lacks `openapi` or `paths`")
        }
        guard version.hasPrefix("3.1") else {
            throw ConfigurationError(description: "the OpenAPI document is version \(version), not 3.1")
        }
        var operations = Set<ServiceRoute>()
        for (path, item) in paths {
            guard let item = item as? [String: Any] else { continue }
            for method in Self.methods where item[method] != nil {
                operations.insert(ServiceRoute(method: method.uppercased(), path: path))
            }
        }
        self.bytes = bytes
        self.version = version
        self.operations = operations
    }

    /// Loads the service's bundled `openapi.json`.
    public static func bundled(in bundle: Bundle) throws -> APIDocument {
        guard let url = bundle.url(forResource: "openapi", withExtension: "json") else {
            throw ConfigurationError(description: "the service's openapi.json resource is missing from its bundle")
        }
        return try APIDocument(json: Array(try Data(contentsOf: url)))
    }

    /// Routes the router has that the document lacks, and operations the document has that no
    /// route serves.
    public func differences(from routes: [ServiceRoute]) -> (undocumented: [ServiceRoute], unrouted: [ServiceRoute]) {
        let routed = Set(routes)
        return (routed.subtracting(operations).sorted(), operations.subtracting(routed).sorted())
    }
}

/// The routes of a service's router, recorded once every route has been added (when the
/// application is made), for `GET /internal/v1/routes`.
public final class RouteTable: Sendable {
    private let routes = Mutex<[ServiceRoute]>([])

    public init() {}

    public var all: [ServiceRoute] { routes.withLock { $0 } }

    /// Records the router's routes: method and path, captures written `{name}` as in OpenAPI.
    public func record(_ router: Router<PlatformRequestContext>) {
        let list = router.routes.map { ServiceRoute(method: $0.method.rawValue, path: Self.openAPIPath($0.path.description)) }
        routes.withLock { $0 = list.sorted() }
    }

    /// The methods routed for a concrete request path, sorted; empty when the router resolves
    /// the path to no route.
    ///
    /// The path resolves as Hummingbird's trie resolves it: component by component, a constant
    /// before a capture (`{name}`, any one non-empty component), going back to try a capture only
    /// when the constant's branch cannot match the rest of the path. So `/user/identities/authorize`
    /// is the constant route's alone (its methods), even where `/user/identities/{identity}`
    /// has others: the router never sends the path there.
    public func allowedMethods(forPath path: String) -> [String] {
        let components = Array(path.split(separator: "/", omittingEmptySubsequences: false).dropFirst())
        let routes = all.map { route in
            (method: route.method, pattern: Array(route.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()))
        }
        guard let resolved = Self.resolve(components, among: routes.map(\.pattern)) else { return [] }
        return Array(Set(routes.filter { $0.pattern == resolved }.map(\.method))).sorted()
    }

    /// The pattern prefix `components` descend to (the trie's node), or nil at a dead end.
    private static func resolve(_ components: [Substring], among patterns: [[Substring]], depth: Int = 0,
                                prefix: [Substring] = []) -> [Substring]? {
        guard depth < components.count else { return prefix }
        let component = components[depth]
        let next = patterns.filter { $0.count > depth && Array($0.prefix(depth)) == prefix }.map { $0[depth] }
        var candidates: [Substring] = []
        if next.contains(component) { candidates.append(component) }
        if !component.isEmpty {
            for capture in next where isCapture(capture) && !candidates.contains(capture) { candidates.append(capture) }
        }
        for candidate in candidates {
            if let found = resolve(components, among: patterns, depth: depth + 1, prefix: prefix + [candidate]) { return found }
        }
        return nil
    }

    private static func isCapture(_ component: Substring) -> Bool {
        component.hasPrefix("{") && component.hasSuffix("}")
    }

    /// Hummingbird prints a captured component as `{name}` already; a `:name` (older forms) is
    /// rewritten the same way, so either spelling compares equal to the document's paths.
    static func openAPIPath(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { component in
            component.hasPrefix(":") ? "{" + component.dropFirst() + "}" : String(component)
        }.joined(separator: "/")
    }
}
