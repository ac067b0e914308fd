import Contracts
import Foundation
import Postgres
import ServiceKit

/// Projects as the API sees them: created, read, retried and deleted. Each of these starts (or
/// shows) an execution, so a new execution and its pending steps are written here, in the same
/// transaction as the project change that asks for them; running an execution is the
/// `ExecutionLedger`'s, and the keys are the `KeyVault`'s (whose one-time reveal a read joins).
struct ProjectStore: Sendable {
    let pool: PostgresPool
    let vault: KeyVault
    /// Woken on every new or retried execution, in every instance (LISTEN/NOTIFY).
    static let workChannel = "provisioning_work"

    // MARK: Starting work

    /// Creates a project in `pending` with its provisioning execution and steps, in one
    /// transaction. A taken slug is a 409; an owner who already has `limit` projects (any but
    /// deleted ones) a 403 `project_limit_reached`, counted under a lock on the owner so two
    /// concurrent creations cannot both pass. `ownerUnconfirmed`: made for a registration, whose
    /// owner auth commits only afterwards (`OrphanReconciler`).
    func createProject(ownerID: UUID, name: String, slug: String, limit: Int,
                       ownerUnconfirmed: Bool = false) async throws -> (project: UUID, execution: UUID) {
        let projectID = UUID()
        let executionID = UUID()
        do {
            try await pool.withTransaction { tx in
                try await tx.query("SELECT pg_advisory_xact_lock(hashtextextended(\("provisioning.projects.owner." + ownerID.uuidString), 0))")
                let owned = try await tx.query("""
                    SELECT count(*)::int8 AS n FROM provisioning.projects WHERE owner_id = \(ownerID) AND status <> 'deleted'
                    """).single().decode("n", as: Int.self)
                guard owned < limit else {
                    throw APIError(.forbidden, code: "project_limit_reached",
                                   message: "A developer may have at most \(limit) projects; delete one before creating another.")
                }
                try await tx.query("""
                    INSERT INTO provisioning.projects (id, slug, name, owner_id, owner_unconfirmed_since)
                    VALUES (\(projectID), \(slug), \(name), \(ownerID), CASE WHEN \(ownerUnconfirmed) THEN now() END)
                    """)
                try await insertExecution(tx, id: executionID, project: projectID, kind: .provision, attempt: 1)
            }
        } catch let error as PostgresError where error.kind == .uniqueViolation && error.constraint == "projects_slug_key" {
            throw APIError.conflict(code: "slug_taken", "The slug \(slug) is already taken.")
        }
        return (projectID, executionID)
    }

    private func insertExecution(_ tx: PostgresConnection, id: UUID, project: UUID, kind: WorkflowKind, attempt: Int) async throws {
        try await tx.query("""
            INSERT INTO provisioning.workflow_executions (id, project_id, kind, attempt) VALUES (\(id), \(project), \(kind), \(attempt))
            """)
        try await tx.query("""
            INSERT INTO provisioning.provisioning_steps (execution_id, step, position)
            SELECT \(id), step, position::int FROM unnest(\(kind.stepNames)::text[]) WITH ORDINALITY AS s(step, position)
            """)
        try await tx.query("SELECT pg_notify(\(Self.workChannel), \(id.uuidString))")
    }

    /// Starts a new provisioning attempt of a failed project. 404 when unknown (or not
    /// `owner`'s), 409 when the project is not `failed`. The execution is written before the
    /// status, so the status event names it.
    func retry(projectID: UUID, owner: UUID?) async throws -> (execution: UUID, slug: String) {
        try await pool.withTransaction { tx in
            let project = try await lockProject(tx, projectID, owner: owner)
            guard project.status == .failed else {
                throw APIError.conflict(code: "not_retryable", "Only a failed project can be retried; this one is \(project.status.rawValue).")
            }
            let attempt = try await tx.query("""
                SELECT coalesce(max(attempt), 0)::int8 AS n FROM provisioning.workflow_executions
                WHERE project_id = \(projectID) AND kind = 'provision'
                """).single().decode("n", as: Int.self)
            let executionID = UUID()
            try await insertExecution(tx, id: executionID, project: projectID, kind: .provision, attempt: attempt + 1)
            try await tx.query("UPDATE provisioning.projects SET status = 'pending', updated_at = now() WHERE id = \(projectID)")
            return (executionID, project.slug)
        }
    }

    /// Starts deprovisioning: the project leaves service at once (`deprovisioning`, inactive)
    /// and an execution undoes every step. 404 when unknown (or not `owner`'s); 423 while
    /// another execution is open; a project already deleted or being deleted answers with its
    /// current execution.
    func deprovision(projectID: UUID, owner: UUID?) async throws -> (execution: UUID, slug: String, status: ProjectState) {
        try await pool.withTransaction { tx in
            let project = try await lockProject(tx, projectID, owner: owner)
            if project.status == .deprovisioning || project.status == .deleted {
                let latest = try await tx.query("""
                    SELECT id FROM provisioning.workflow_executions
                    WHERE project_id = \(projectID) AND kind = 'deprovision' ORDER BY created_at DESC LIMIT 1
                    """)
                if let row = latest.first {
                    return (try row.decode("id", as: UUID.self), project.slug, project.status)
                }
            }
            try await requireNoOpenExecution(tx, projectID, "The project is being provisioned or its keys rotated; delete it once that has finished.")
            let executionID = UUID()
            try await insertExecution(tx, id: executionID, project: projectID, kind: .deprovision, attempt: 1)
            try await tx.query("""
                UPDATE provisioning.projects SET status = 'deprovisioning', is_active = false, updated_at = now() WHERE id = \(projectID)
                """)
            try await vault.discardReveal(of: projectID, in: tx)
            return (executionID, project.slug, .deprovisioning)
        }
    }

    /// Starts rotating a ready project's API keys (a `rotate_keys` execution and its record,
    /// with the grace period the current keys keep working for). 404 when unknown (or not
    /// `owner`'s), 409 `not_ready` unless the project is ready, 423 while another execution
    /// (provisioning, a rotation) is open.
    func startRotation(projectID: UUID, owner: UUID?, grace: Duration) async throws -> (execution: UUID, slug: String) {
        try await pool.withTransaction { tx in
            let project = try await lockProject(tx, projectID, owner: owner)
            guard project.status == .ready else {
                throw APIError.conflict(code: "not_ready", "Only a ready project's keys can be rotated; this one is \(project.status.rawValue).")
            }
            try await requireNoOpenExecution(tx, projectID, "Another operation on this project is running (a key rotation, perhaps); try again once it has finished.")
            let executionID = UUID()
            try await insertExecution(tx, id: executionID, project: projectID, kind: .rotateKeys, attempt: 1)
            try await tx.query("""
                INSERT INTO provisioning.api_key_rotations (execution_id, project_id, grace_seconds)
                VALUES (\(executionID), \(projectID), \(Int(grace.components.seconds)))
                """)
            return (executionID, project.slug)
        }
    }

    /// 423 `operation_in_progress` with `message` while an execution of the project is open.
    private func requireNoOpenExecution(_ tx: PostgresConnection, _ projectID: UUID, _ message: String) async throws {
        let open = try await tx.query("""
            SELECT count(*)::int8 AS n FROM provisioning.workflow_executions
            WHERE project_id = \(projectID) AND status IN ('pending', 'running', 'compensating')
            """).single().decode("n", as: Int.self)
        guard open == 0 else {
            throw APIError(.init(code: 423, reasonPhrase: "Locked"), code: "operation_in_progress", message: message)
        }
    }

    /// The project's row, locked; 404 when there is none, or it is not `owner`'s (nil: any owner).
    private func lockProject(_ tx: PostgresConnection, _ projectID: UUID, owner: UUID?) async throws -> (status: ProjectState, slug: String) {
        let rows = try await tx.query("""
            SELECT status, slug FROM provisioning.projects WHERE id = \(projectID) AND (\(owner)::uuid IS NULL OR owner_id = \(owner)) FOR UPDATE
            """)
        guard let row = rows.first else { throw APIError.notFound("project") }
        return (try row.decode("status"), try row.decode("slug"))
    }

    // MARK: Reading

    /// The project with its latest execution and steps; nil when there is none, or it is not
    /// `owner`'s (nil: any owner). One snapshot: the steps match the status.
    func status(of projectID: UUID, owner: UUID?) async throws -> ProjectStatus? {
        try await pool.withTransaction { tx in
            try await tx.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            let projects = try await tx.query("""
                SELECT \(unescaped: Self.projectColumns) FROM provisioning.projects
                WHERE id = \(projectID) AND (\(owner)::uuid IS NULL OR owner_id = \(owner))
                """)
            guard let project = projects.first else { return nil }
            var workflow: WorkflowStatus?
            let executions = try await tx.query("""
                SELECT id, kind, status, attempt::int8 AS attempt, started_at, finished_at, error
                FROM provisioning.workflow_executions WHERE project_id = \(projectID) ORDER BY created_at DESC LIMIT 1
                """)
            if let execution = executions.first {
                let executionID: UUID = try execution.decode("id")
                let steps = try await tx.query("""
                    SELECT step, status, attempts::int8 AS attempts, last_error, started_at, finished_at
                    FROM provisioning.provisioning_steps WHERE execution_id = \(executionID) ORDER BY position
                    """).map { row in
                    StepStatus(
                        name: try row.decode("step"), status: try row.decode("status", as: StepState.self).rawValue, attempts: try row.decode("attempts"),
                        lastError: try row.decode("last_error"), startedAt: try row.decode("started_at"),
                        finishedAt: try row.decode("finished_at")
                    )
                }
                workflow = WorkflowStatus(
                    id: executionID, kind: try execution.decode("kind", as: WorkflowKind.self).rawValue,
                    status: try execution.decode("status", as: ExecutionState.self).rawValue,
                    attempt: try execution.decode("attempt"), startedAt: try execution.decode("started_at"),
                    finishedAt: try execution.decode("finished_at"), error: try execution.decode("error"), steps: steps
                )
            }
            var status = try Self.project(project)
            status.workflow = workflow
            return status
        }
    }

    private static let projectColumns = "id, slug, name, owner_id, status, is_active, created_at, updated_at"

    private static func project(_ row: PostgresRow) throws -> ProjectStatus {
        ProjectStatus(
            id: try row.decode("id"), slug: try row.decode("slug"), name: try row.decode("name"),
            ownerId: try row.decode("owner_id"), status: try row.decode("status"), isActive: try row.decode("is_active"),
            createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"), workflow: nil
        )
    }

    /// One page of projects, newest first: `owner`'s (nil: everyone's), without deleted ones
    /// unless asked, after the project `cursor` names (keyset: no page repeats or skips a
    /// project however many are created meanwhile). The next page's cursor is the last id when
    /// the page is full.
    func list(owner: UUID?, includeDeleted: Bool, limit: Int, after cursor: UUID?) async throws -> ProjectList {
        let rows = try await pool.query("""
            SELECT \(unescaped: Self.projectColumns) FROM provisioning.projects p
            WHERE (\(owner)::uuid IS NULL OR owner_id = \(owner))
              AND (\(includeDeleted) OR status <> 'deleted')
              AND (\(cursor)::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM provisioning.projects WHERE id = \(cursor)))
            ORDER BY created_at DESC, id DESC
            LIMIT \(limit)
            """)
        let projects = try rows.map(Self.project)
        return ProjectList(projects: projects, nextCursor: projects.count == limit ? projects.last?.id : nil)
    }

    /// The project's API keys (`KeyVault.apiKeys`): revealed in this answer only while the
    /// project is ready; nil when there is no such project of `owner`'s.
    func apiKeys(of projectID: UUID, owner: UUID?, revealTTL: Duration) async throws -> ProjectAPIKeys? {
        try await pool.withTransaction { tx in
            let rows = try await tx.query("""
                SELECT status FROM provisioning.projects WHERE id = \(projectID) AND (\(owner)::uuid IS NULL OR owner_id = \(owner))
                """)
            guard let row = rows.first else { return nil }
            let status: ProjectState = try row.decode("status")
            return try await vault.apiKeys(of: projectID, reveal: status == .ready, revealTTL: revealTTL, in: tx)
        }
    }
}
