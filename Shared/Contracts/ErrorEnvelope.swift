import Foundation

/// The one error shape every service answers with, for every 4xx and 5xx:
/// `{"error":{"code":"…","message":"…"}}`.
///
/// `code` is a stable, machine-readable snake_case identifier (`not_found`, `validation_failed`,
/// `slug_taken`, …); `message` is a human-readable sentence that never carries internals (SQL,
/// connection strings, stack traces). `field` names the offending input field when there is one.
public struct ErrorEnvelope: Codable, Sendable, Equatable {
    public struct Body: Codable, Sendable, Equatable {
        public var code: String
        public var message: String
        public var field: String?

        public init(code: String, message: String, field: String? = nil) {
            self.code = code
            self.message = message
            self.field = field
        }
    }

    public var error: Body

    public init(code: String, message: String, field: String? = nil) {
        self.error = Body(code: code, message: message, field: field)
    }

    /// The envelope a response body holds, or nil when it holds none (empty, not JSON, another
    /// shape): how a caller reads a platform error from whatever transport carried it.
    public init?(body: [UInt8]) {
        guard !body.isEmpty, let envelope = try? JSONDecoder().decode(Self.self, from: Data(body)) else { return nil }
        self = envelope
    }
}

/// Header names shared by every hop.
public enum PlatformHeader {
    /// Carries the request id through every service-to-service call and into every log line.
    public static let requestID = "X-Request-Id"
    /// Carries the internal service token on `/internal/...` calls.
    public static let serviceToken = "X-Service-Token"
    /// Makes a POST safe to repeat (Stripe-style idempotency keys).
    public static let idempotencyKey = "Idempotency-Key"
    /// Set to `true` on a response that repeats the stored answer to an earlier request with
    /// the same `Idempotency-Key`.
    public static let idempotentReplayed = "Idempotent-Replayed"
    /// Carries a tenant's publishable or secret API key on every tenant-facing request.
    public static let apiKey = "apikey"
}

/// Small answers shared by every service's operational endpoints.
public struct HealthStatus: Codable, Sendable, Equatable {
    public var status: String
    public var service: String
    public var checks: [String: String]?

    public init(status: String, service: String, checks: [String: String]? = nil) {
        self.status = status
        self.service = service
        self.checks = checks
    }
}
