/// `GET /internal/v1/routes` (service token, every service): the routes the service's router
/// holds, as `method` (`GET`, `PUT`, …) and `path` in OpenAPI form (`/v1/tenants/{slug}/user`),
/// sorted by path then method. Tests compare it with the service's OpenAPI document.
public struct ServiceRoutes: Codable, Sendable, Equatable {
    public var service: String
    public var routes: [ServiceRoute]

    public init(service: String, routes: [ServiceRoute]) {
        self.service = service
        self.routes = routes
    }
}

/// One route: an HTTP method and a path pattern with `{name}` for each captured component.
public struct ServiceRoute: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var method: String
    public var path: String

    public init(method: String, path: String) {
        self.method = method
        self.path = path
    }

    public var description: String { "\(method) \(path)" }

    public static func < (lhs: ServiceRoute, rhs: ServiceRoute) -> Bool {
        (lhs.path, lhs.method) < (rhs.path, rhs.method)
    }
}
