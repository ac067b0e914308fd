import Foundation
import Logging

/// The four services of the platform, with their default local ports.
public enum ServiceName: String, Sendable, CaseIterable {
    case auth
    case provisioning
    case realtime
    case storage

    public var defaultPort: Int {
        switch self {
        case .auth: 8081
        case .provisioning: 8082
        case .realtime: 8083
        case .storage: 8084
        }
    }

    /// How many connections the service holds open at once by default (`HTTP_MAX_CONNECTIONS`):
    /// realtime's are long-lived websockets (about 37 KiB each), the others' short requests.
    public var defaultMaxConnections: Int {
        self == .realtime ? 20_000 : 4_096
    }

    /// The environment variable that holds this service's base URL for the others.
    public var urlVariable: String { rawValue.uppercased() + "_URL" }
}

/// A configuration value that is missing or malformed; start-up stops with this message.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String

    /// Services validate their own settings (`STORAGE_ROOT`, …) with the same error.
    public init(description: String) {
        self.description = description
    }
}

/// Everything a service reads from its environment (12-factor), with defaults that work for a
/// local run. Each variable is documented in `deploy/.env.example`.
public struct ServiceConfiguration: Sendable {
    public var service: ServiceName
    /// `HOST`: the address to bind (default 127.0.0.1; containers set 0.0.0.0).
    public var host: String
    /// `PORT`: the port to bind (default: the service's own, 8081–8084; 0 picks a free one).
    public var port: Int
    /// `DATABASE_URL`: libpq connection URI. Never logged.
    public var databaseURL: String
    /// `DB_POOL_MAX`, `DB_ACQUIRE_TIMEOUT_MS`, `DB_STATEMENT_TIMEOUT_MS`, `DB_CONNECTION_MAX_USES`
    /// (leases before a connection is replaced by a fresh one; 0: never).
    public var poolSize: Int
    public var acquireTimeout: Duration
    public var statementTimeout: Duration
    public var connectionMaxUses: Int?
    /// `LOG_LEVEL` (trace … critical, default info) and `LOG_FORMAT` (json or text).
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    /// `INTERNAL_SERVICE_TOKEN`: the shared secret on `/internal/...` calls and the operator
    /// API. Required in every mode (there is no default to forget to change), at least 32
    /// characters, and never a shipped placeholder. Never logged.
    public var internalToken: String
    /// `AUTH_URL`, `PROVISIONING_URL`, `REALTIME_URL`, `STORAGE_URL`.
    public var serviceURLs: [ServiceName: String]
    /// `HTTP_IDLE_TIMEOUT_SECONDS` (default 60): a connection that has not completed a request
    /// head this long after it opened, or after its last response, is closed. The timer moves
    /// only on whole HTTP parts, never on single bytes, so it is also the header-read bound: a
    /// client trickling a request head one byte at a time is cut off at the same point.
    public var idleTimeout: Duration
    /// `HTTP_MAX_CONNECTIONS`: connections held at once; past it the server stops accepting (new
    /// ones wait in the listen backlog) until one closes. Default 4,096; realtime 20,000.
    public var maxConnections: Int
    /// `SHUTDOWN_GRACE_SECONDS`: how long in-flight requests may take after SIGTERM.
    public var shutdownGracePeriod: Duration
    /// The raw environment, for the service's own settings.
    public var environment: [String: String]

    public enum LogFormat: String, Sendable {
        case json
        case text
    }

    /// A secret's minimum length, in characters (32 random hex characters are 128 bits).
    public static let minimumSecretLength = 32

    /// What the placeholders shipped in `deploy/.env.example` and `deploy/k8s/secret.yaml`
    /// contain: a value with one of them was copied, not generated.
    static let placeholderMarkers = ["change-me", "change_me", "changeme", "replace-me", "replace_me"]

    public init(service: ServiceName, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func value(_ key: String) -> String? { Self.value(key, in: environment) }
        func integer(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
            try Self.integer(key, in: environment, default: fallback, range: range)
        }

        self.service = service
        self.environment = environment
        self.host = value("HOST") ?? "127.0.0.1"
        self.port = try integer("PORT", default: service.defaultPort, range: 0...65535)
        guard let databaseURL = value("DATABASE_URL") else {
            throw ConfigurationError(description: "DATABASE_URL is required (a libpq URI, e.g. postgresql://auth:…@db:5432/platform)")
        }
        self.databaseURL = databaseURL
        self.poolSize = try integer("DB_POOL_MAX", default: 10, range: 1...500)
        self.acquireTimeout = .milliseconds(try integer("DB_ACQUIRE_TIMEOUT_MS", default: 5000, range: 1...600_000))
        self.statementTimeout = .milliseconds(try integer("DB_STATEMENT_TIMEOUT_MS", default: 30_000, range: 1...3_600_000))
        let maxUses = try integer("DB_CONNECTION_MAX_USES", default: 1000, range: 0...100_000_000)
        self.connectionMaxUses = maxUses == 0 ? nil : maxUses
        self.shutdownGracePeriod = .seconds(try integer("SHUTDOWN_GRACE_SECONDS", default: 25, range: 0...3600))
        self.idleTimeout = .seconds(try integer("HTTP_IDLE_TIMEOUT_SECONDS", default: 60, range: 1...3600))
        self.maxConnections = try integer("HTTP_MAX_CONNECTIONS", default: service.defaultMaxConnections, range: 1...1_000_000)

        let level = value("LOG_LEVEL")?.lowercased() ?? "info"
        guard let logLevel = Logger.Level(rawValue: level) else {
            throw ConfigurationError(description: "LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical")
        }
        self.logLevel = logLevel
        guard let logFormat = LogFormat(rawValue: value("LOG_FORMAT")?.lowercased() ?? "json") else {
            throw ConfigurationError(description: "LOG_FORMAT must be json or text")
        }
        self.logFormat = logFormat

        self.internalToken = try Self.secret("INTERNAL_SERVICE_TOKEN", in: environment)

        var urls: [ServiceName: String] = [:]
        for other in ServiceName.allCases {
            let url = value(other.urlVariable) ?? "http://127.0.0.1:\(other.defaultPort)"
            urls[other] = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        self.serviceURLs = urls
    }

    /// A required secret: set, at least `minimumSecretLength` characters, and not a shipped
    /// placeholder. The message names the variable, never its value.
    public func secret(_ key: String) throws -> String {
        try Self.secret(key, in: environment)
    }

    private static func secret(_ key: String, in environment: [String: String]) throws -> String {
        guard let secret = value(key, in: environment) else {
            throw ConfigurationError(description: "\(key) is required: generate one, e.g. `openssl rand -hex 32`")
        }
        guard secret.count >= minimumSecretLength else {
            throw ConfigurationError(description: "\(key) must be at least \(minimumSecretLength) characters")
        }
        let lowered = secret.lowercased()
        guard !placeholderMarkers.contains(where: { lowered.contains($0) }) else {
            throw ConfigurationError(description: "\(key) is still the shipped placeholder: generate one, e.g. `openssl rand -hex 32`")
        }
        return secret
    }

    /// A service's own setting: the trimmed value, or nil when unset or empty.
    public func value(_ key: String) -> String? {
        Self.value(key, in: environment)
    }

    /// A service's own integer setting, checked against `range` (start-up stops with the reason).
    public func integer(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        try Self.integer(key, in: environment, default: fallback, range: range)
    }

    private static func value(_ key: String, in environment: [String: String]) -> String? {
        guard let value = environment[key]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    private static func integer(_ key: String, in environment: [String: String], default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = value(key, in: environment) else { return fallback }
        guard let number = Int(text), range.contains(number) else {
            throw ConfigurationError(description: "\(key) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }
}
