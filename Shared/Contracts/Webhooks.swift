import Foundation

/// The lifecycle events a webhook endpoint may subscribe to.
public enum WebhookEvent: String, Codable, Sendable, CaseIterable {
    case projectReady = "project.ready"
    case projectFailed = "project.failed"
    case projectDeleted = "project.deleted"
    case projectKeysRotated = "project.keys_rotated"
}

/// `POST /v1/webhooks` on provisioning: an endpoint for the caller's projects' lifecycle events
/// (every event when `events` is absent). `owner_id` only from the operator.
public struct NewWebhookRequest: Codable, Sendable, Equatable {
    public var url: String
    public var events: [WebhookEvent]?
    public var ownerId: UUID?

    public init(url: String, events: [WebhookEvent]? = nil, ownerId: UUID? = nil) {
        self.url = url
        self.events = events
        self.ownerId = ownerId
    }

    enum CodingKeys: String, CodingKey {
        case url, events
        case ownerId = "owner_id"
    }
}

/// A webhook endpoint. `secret` (Standard Webhooks, `whsec_…`) only in the answer that made it.
public struct WebhookEndpoint: Codable, Sendable, Equatable {
    public var id: UUID
    public var ownerId: UUID
    public var url: String
    public var events: [WebhookEvent]
    public var secret: String?
    public var createdAt: Date
    /// When and why deliveries to it stopped (failed too many times in a row).
    public var disabledAt: Date?
    public var disabledReason: String?

    public init(id: UUID, ownerId: UUID, url: String, events: [WebhookEvent], secret: String?, createdAt: Date,
                disabledAt: Date?, disabledReason: String?) {
        self.id = id
        self.ownerId = ownerId
        self.url = url
        self.events = events
        self.secret = secret
        self.createdAt = createdAt
        self.disabledAt = disabledAt
        self.disabledReason = disabledReason
    }

    enum CodingKeys: String, CodingKey {
        case id, url, events, secret
        case ownerId = "owner_id"
        case createdAt = "created_at"
        case disabledAt = "disabled_at"
        case disabledReason = "disabled_reason"
    }
}

/// `GET /v1/webhooks`.
public struct WebhookEndpointList: Codable, Sendable, Equatable {
    public var webhooks: [WebhookEndpoint]

    public init(webhooks: [WebhookEndpoint]) {
        self.webhooks = webhooks
    }
}

/// One delivery of one event to one endpoint, as `GET /v1/webhooks/{id}/deliveries` shows it.
public struct WebhookDelivery: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case pending, delivered, failed
    }

    /// Sent as `webhook-id`.
    public var id: UUID
    public var eventType: WebhookEvent
    public var projectId: UUID
    public var status: Status
    public var attempts: Int
    /// The last attempt's HTTP status, when the endpoint answered at all.
    public var lastStatus: Int?
    public var lastError: String?
    public var nextAttemptAt: Date?
    public var createdAt: Date
    public var deliveredAt: Date?

    public init(id: UUID, eventType: WebhookEvent, projectId: UUID, status: Status, attempts: Int, lastStatus: Int?, lastError: String?,
                nextAttemptAt: Date?, createdAt: Date, deliveredAt: Date?) {
        self.id = id
        self.eventType = eventType
        self.projectId = projectId
        self.status = status
        self.attempts = attempts
        self.lastStatus = lastStatus
        self.lastError = lastError
        self.nextAttemptAt = nextAttemptAt
        self.createdAt = createdAt
        self.deliveredAt = deliveredAt
    }

    enum CodingKeys: String, CodingKey {
        case id, status, attempts
        case eventType = "event_type"
        case projectId = "project_id"
        case lastStatus = "last_status"
        case lastError = "last_error"
        case nextAttemptAt = "next_attempt_at"
        case createdAt = "created_at"
        case deliveredAt = "delivered_at"
    }
}

/// `GET /v1/webhooks/{id}/deliveries`: the newest first.
public struct WebhookDeliveryList: Codable, Sendable, Equatable {
    public var deliveries: [WebhookDelivery]

    public init(deliveries: [WebhookDelivery]) {
        self.deliveries = deliveries
    }
}
