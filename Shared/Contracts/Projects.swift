import Foundation

// MARK: - Registration (developer → auth)

/// `POST /v1/register` on auth.
public struct RegisterRequest: Codable, Sendable, Equatable {
    public var email: String
    public var password: String
    public var projectName: String
    /// Optional; derived from the project name when absent.
    public var slug: String?
    /// Required when registration is invite-only: the token of an invite for this email.
    public var inviteToken: String?

    public init(email: String, password: String, projectName: String, slug: String? = nil, inviteToken: String? = nil) {
        self.email = email
        self.password = password
        self.projectName = projectName
        self.slug = slug
        self.inviteToken = inviteToken
    }

    enum CodingKeys: String, CodingKey {
        case email, password, slug
        case projectName = "project_name"
        case inviteToken = "invite_token"
    }
}

/// `202 Accepted` answer of `POST /v1/register` (and of provisioning's project creation).
public struct ProjectAccepted: Codable, Sendable, Equatable {
    public var developerId: UUID?
    public var projectId: UUID
    public var workflowId: UUID
    public var slug: String
    public var status: ProjectState
    /// Where to follow the project: provisioning's `GET /v1/projects/{id}`.
    public var statusUrl: String

    public init(developerId: UUID? = nil, projectId: UUID, workflowId: UUID, slug: String, status: ProjectState, statusUrl: String) {
        self.developerId = developerId
        self.projectId = projectId
        self.workflowId = workflowId
        self.slug = slug
        self.status = status
        self.statusUrl = statusUrl
    }

    enum CodingKeys: String, CodingKey {
        case slug, status
        case developerId = "developer_id"
        case projectId = "project_id"
        case workflowId = "workflow_id"
        case statusUrl = "status_url"
    }
}

// MARK: - Provisioning (auth → provisioning, operators → provisioning)

/// `POST /internal/v1/projects` on provisioning: create a project and start provisioning it.
public struct CreateProjectRequest: Codable, Sendable, Equatable {
    public var ownerId: UUID
    public var name: String
    public var slug: String

    public init(ownerId: UUID, name: String, slug: String) {
        self.ownerId = ownerId
        self.name = name
        self.slug = slug
    }

    enum CodingKeys: String, CodingKey {
        case name, slug
        case ownerId = "owner_id"
    }
}

/// A project's lifecycle: `pending → running → ready`, or `→ failed` after compensation;
/// `deprovisioning → deleted` when it is removed.
public enum ProjectState: String, Codable, Sendable, CaseIterable {
    case pending, running, ready, failed, deprovisioning, deleted

    /// A state the project rests in until someone acts (retry, delete): where an event stream ends.
    public var isResting: Bool { self == .ready || self == .failed || self == .deleted }
}

/// `GET /v1/projects/{id}` on provisioning.
public struct ProjectStatus: Codable, Sendable, Equatable {
    public var id: UUID
    public var slug: String
    public var name: String
    public var ownerId: UUID
    public var status: ProjectState
    public var isActive: Bool
    public var createdAt: Date
    public var updatedAt: Date
    /// The latest workflow execution, with its steps (absent in lists).
    public var workflow: WorkflowStatus?

    public init(id: UUID, slug: String, name: String, ownerId: UUID, status: ProjectState, isActive: Bool,
                createdAt: Date, updatedAt: Date, workflow: WorkflowStatus?) {
        self.id = id
        self.slug = slug
        self.name = name
        self.ownerId = ownerId
        self.status = status
        self.isActive = isActive
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.workflow = workflow
    }

    enum CodingKeys: String, CodingKey {
        case id, slug, name, status, workflow
        case ownerId = "owner_id"
        case isActive = "is_active"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

public struct WorkflowStatus: Codable, Sendable, Equatable {
    public var id: UUID
    public var kind: String
    public var status: String
    public var attempt: Int
    public var startedAt: Date?
    public var finishedAt: Date?
    public var error: String?
    public var steps: [StepStatus]

    public init(id: UUID, kind: String, status: String, attempt: Int, startedAt: Date?, finishedAt: Date?, error: String?, steps: [StepStatus]) {
        self.id = id
        self.kind = kind
        self.status = status
        self.attempt = attempt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.error = error
        self.steps = steps
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, status, attempt, error, steps
        case startedAt = "started_at"
        case finishedAt = "finished_at"
    }
}

public struct StepStatus: Codable, Sendable, Equatable {
    public var name: String
    public var status: String
    public var attempts: Int
    public var lastError: String?
    public var startedAt: Date?
    public var finishedAt: Date?

    public init(name: String, status: String, attempts: Int, lastError: String?, startedAt: Date?, finishedAt: Date?) {
        self.name = name
        self.status = status
        self.attempts = attempts
        self.lastError = lastError
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    enum CodingKeys: String, CodingKey {
        case name, status, attempts
        case lastError = "last_error"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
    }
}

/// `GET /v1/projects` on provisioning: one page of projects, newest first.
public struct ProjectList: Codable, Sendable, Equatable {
    public var projects: [ProjectStatus]
    /// Pass as `cursor` for the next page; absent on the last page.
    public var nextCursor: UUID?

    public init(projects: [ProjectStatus], nextCursor: UUID?) {
        self.projects = projects
        self.nextCursor = nextCursor
    }

    enum CodingKeys: String, CodingKey {
        case projects
        case nextCursor = "next_cursor"
    }
}

/// `POST /v1/projects` on provisioning: a developer's new project (the slug derived from the
/// name when absent). `owner_id` only from the operator, who creates projects for a developer.
public struct NewProjectRequest: Codable, Sendable, Equatable {
    public var name: String
    public var slug: String?
    public var ownerId: UUID?

    public init(name: String, slug: String? = nil, ownerId: UUID? = nil) {
        self.name = name
        self.slug = slug
        self.ownerId = ownerId
    }

    enum CodingKeys: String, CodingKey {
        case name, slug
        case ownerId = "owner_id"
    }
}

/// `GET /v1/projects/{id}/api-keys` on provisioning.
public struct ProjectAPIKeys: Codable, Sendable, Equatable {
    public var keys: [ProjectAPIKey]

    public init(keys: [ProjectAPIKey]) {
        self.keys = keys
    }

    /// The readable key of `kind`, in the one answer that reveals it.
    public func key(_ kind: APIKeyHash.Kind) -> String? {
        keys.first { $0.kind == kind && $0.key != nil }?.key
    }
}

/// One of a project's API keys: always its id, kind, prefix and age; the key itself in exactly
/// one answer (it is not kept in readable form after that, nor beyond the reveal window).
public struct ProjectAPIKey: Codable, Sendable, Equatable {
    /// Where a key stands: `active` (the project's), during a rotation `next` (already working)
    /// and `retiring` (still working until `retires_at`).
    public enum State: String, Codable, Sendable {
        case active, next, retiring
    }

    public var id: UUID
    public var kind: APIKeyHash.Kind
    public var prefix: String
    public var createdAt: Date
    public var key: String?
    public var state: State
    public var retiresAt: Date?

    public init(id: UUID, kind: APIKeyHash.Kind, prefix: String, createdAt: Date, key: String?, state: State = .active, retiresAt: Date? = nil) {
        self.id = id
        self.kind = kind
        self.prefix = prefix
        self.createdAt = createdAt
        self.key = key
        self.state = state
        self.retiresAt = retiresAt
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, prefix, key, state
        case createdAt = "created_at"
        case retiresAt = "retires_at"
    }
}

/// `POST /v1/projects/{id}/api-keys/rotate` on provisioning: how long the current keys keep
/// working beside the new ones (`PROVISIONING_KEY_GRACE_SECONDS` when absent).
public struct RotateKeysRequest: Codable, Sendable, Equatable {
    public var graceSeconds: Int?

    public init(graceSeconds: Int? = nil) {
        self.graceSeconds = graceSeconds
    }

    enum CodingKeys: String, CodingKey {
        case graceSeconds = "grace_seconds"
    }
}
