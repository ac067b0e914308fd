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
///
/// Paths are reported in OpenAPI form, so the route list, the start-up check and the document
/// compare as they are: a capture `:name` is `{name}`, and a catch-all `**` (any number of
/// components, one at least: storage's object keys, `/storage/v1/object/{bucket}/**`) is
/// `{path}`, the one path parameter OpenAPI can write for it — as a document it is a parameter
/// that may hold `/` (sent percent-encoded, `%2F`, or as it is). A route naming a capture `path`
/// as well as a catch-all would report two `{path}`s; none does. Methods for a concrete path
/// (`allowedMethods`) are resolved from the router's own patterns, where a catch-all still spans
/// components.
public final class RouteTable: Sendable {
    private struct Recorded: Sendable {
        var route: ServiceRoute
        /// The router's pattern, component by component after the leading `/` (`**` kept).
        var pattern: [Substring]
    }

    private let routes = Mutex<[Recorded]>([])

    public init() {}

    public var all: [ServiceRoute] { routes.withLock { $0.map(\.route) } }

    /// Records the router's routes: method and path, captures written `{name}` and a catch-all
    /// `{path}`, as in OpenAPI.
    public func record(_ router: Router<PlatformRequestContext>) {
        record(router.routes.map { (method: $0.method.rawValue, path: $0.path.description) })
    }

    /// Records routes given as method and the router's path pattern (`/a/:b/**`).
    public func record(_ list: [(method: String, path: String)]) {
        let recorded = list.map { route in
            Recorded(route: ServiceRoute(method: route.method, path: Self.openAPIPath(route.path)),
                     pattern: Array(Self.routerPattern(route.path).split(separator: "/", omittingEmptySubsequences: false).dropFirst()))
        }
        routes.withLock { $0 = recorded.sorted { $0.route < $1.route } }
    }

    /// The methods routed for a concrete request path, sorted; empty when the router resolves
    /// the path to no route.
    ///
    /// The path resolves as Hummingbird's trie resolves it: component by component, a constant
    /// before a capture (`{name}`, any one non-empty component) before a catch-all (`**`, one
    /// component or more), going back to try the next only when a branch cannot match the rest
    /// of the path. So `/user/identities/authorize` is the constant route's alone (its methods),
    /// even where `/user/identities/{identity}` has others: the router never sends the path there.
    public func allowedMethods(forPath path: String) -> [String] {
        let components = Array(path.split(separator: "/", omittingEmptySubsequences: false).dropFirst())
        let recorded = routes.withLock { $0 }
        guard let resolved = Self.resolve(components[...], among: recorded.map(\.pattern)) else { return [] }
        return Array(Set(recorded.filter { $0.pattern == resolved }.map(\.route.method))).sorted()
    }

    /// The pattern `components` descend to (the trie's node), or nil at a dead end.
    private static func resolve(_ components: ArraySlice<Substring>, among patterns: [[Substring]],
                                prefix: [Substring] = []) -> [Substring]? {
        guard let component = components.first else { return prefix }
        let depth = prefix.count
        let next = patterns.filter { $0.count > depth && Array($0.prefix(depth)) == prefix }.map { $0[depth] }
        var candidates: [Substring] = []
        if next.contains(component) { candidates.append(component) }
        if !component.isEmpty {
            for capture in next where isCapture(capture) && !candidates.contains(capture) { candidates.append(capture) }
        }
        for candidate in candidates {
            if let found = resolve(components.dropFirst(), among: patterns, prefix: prefix + [candidate]) { return found }
        }
        if !component.isEmpty, next.contains(catchAll) {
            // One component or more, then whatever follows the catch-all in the pattern.
            for taken in 1...components.count {
                if let found = resolve(components.dropFirst(taken), among: patterns, prefix: prefix + [catchAll]) { return found }
            }
        }
        return nil
    }

    private static let catchAll: Substring = "**"

    private static func isCapture(_ component: Substring) -> Bool {
        component.hasPrefix("{") && component.hasSuffix("}")
    }

    /// The router's pattern with captures written `{name}` (Hummingbird prints them so; `:name`
    /// is the older form) and the catch-all kept as `**`.
    static func routerPattern(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { component in
            component.hasPrefix(":") ? "{" + component.dropFirst() + "}" : String(component)
        }.joined(separator: "/")
    }

    /// The path as OpenAPI writes it: captures `{name}`, the catch-all `{path}`.
    static func openAPIPath(_ path: String) -> String {
        routerPattern(path).split(separator: "/", omittingEmptySubsequences: false).map { component in
            component == catchAll ? "{path}" : String(component)
        }.joined(separator: "/")
    }
}
