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
    /// transaction. A taken slug is a 409.
    func createProject(ownerID: UUID, name: String, slug: String) async throws -> (project: UUID, execution: UUID) {
        let projectID = UUID()
        let executionID = UUID()
        do {
            try await pool.withTransaction { tx in
                try await tx.query("""
                    INSERT INTO provisioning.projects (id, slug, name, owner_id) VALUES (\(projectID), \(slug), \(name), \(ownerID))
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

    /// Starts a new provisioning attempt of a failed project. 404 when unknown, 409 when the
    /// project is not `failed`.
    func retry(projectID: UUID) async throws -> (execution: UUID, slug: String) {
        try await pool.withTransaction { tx in
            let project = try await lockProject(tx, projectID)
            guard project.status == .failed else {
                throw APIError.conflict(code: "not_retryable", "Only a failed project can be retried; this one is \(project.status.rawValue).")
            }
            let attempt = try await tx.query("""
                SELECT coalesce(max(attempt), 0)::int8 AS n FROM provisioning.workflow_executions
                WHERE project_id = \(projectID) AND kind = 'provision'
                """).single().decode("n", as: Int.self)
            let executionID = UUID()
            try await tx.query("UPDATE provisioning.projects SET status = 'pending', updated_at = now() WHERE id = \(projectID)")
            try await insertExecution(tx, id: executionID, project: projectID, kind: .provision, attempt: attempt + 1)
            return (executionID, project.slug)
        }
    }

    /// Starts deprovisioning: the project leaves service at once (`deprovisioning`, inactive)
    /// and an execution undoes every step. 404 when unknown; 409 while another execution is
    /// open; a project already deleted or being deleted answers with its current execution.
    func deprovision(projectID: UUID) async throws -> (execution: UUID, slug: String, status: ProjectState) {
        try await pool.withTransaction { tx in
            let project = try await lockProject(tx, projectID)
            if project.status == .deprovisioning || project.status == .deleted {
                let latest = try await tx.query("""
                    SELECT id FROM provisioning.workflow_executions
                    WHERE project_id = \(projectID) AND kind = 'deprovision' ORDER BY created_at DESC LIMIT 1
                    """)
                if let row = latest.first {
                    return (try row.decode("id", as: UUID.self), project.slug, project.status)
                }
            }
            let open = try await tx.query("""
                SELECT count(*)::int8 AS n FROM provisioning.workflow_executions
                WHERE project_id = \(projectID) AND status IN ('pending', 'running', 'compensating')
                """).single().decode("n", as: Int.self)
            guard open == 0 else {
                throw APIError(.init(code: 423, reasonPhrase: "Locked"), code: "operation_in_progress",
                               message: "The project is being provisioned; delete it once that has finished.")
            }
            let executionID = UUID()
            try await tx.query("""
                UPDATE provisioning.projects SET status = 'deprovisioning', is_active = false, updated_at = now() WHERE id = \(projectID)
                """)
            try await vault.discardReveal(of: projectID, in: tx)
            try await insertExecution(tx, id: executionID, project: projectID, kind: .deprovision, attempt: 1)
            return (executionID, project.slug, .deprovisioning)
        }
    }

    private func lockProject(_ tx: PostgresConnection, _ projectID: UUID) async throws -> (status: ProjectState, slug: String) {
        let rows = try await tx.query("SELECT status, slug FROM provisioning.projects WHERE id = \(projectID) FOR UPDATE")
        guard let row = rows.first else { throw APIError.notFound("project") }
        return (try row.decode("status"), try row.decode("slug"))
    }

    // MARK: Reading

    /// The project with its latest execution and steps; its API keys in the first answer after
    /// it became ready (the keys are deleted in the same transaction).
    func status(of projectID: UUID) async throws -> ProjectStatus? {
        try await pool.withTransaction { tx in
            let projects = try await tx.query("""
                SELECT id, slug, name, owner_id, status, is_active, created_at, updated_at
                FROM provisioning.projects WHERE id = \(projectID)
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
            let state: ProjectState = try project.decode("status")
            var keys: IssuedAPIKeys?
            if state == .ready {
                keys = try await vault.takeReveal(of: projectID, in: tx)
            }
            return ProjectStatus(
                id: projectID, slug: try project.decode("slug"), name: try project.decode("name"),
                ownerId: try project.decode("owner_id"), status: state, isActive: try project.decode("is_active"),
                createdAt: try project.decode("created_at"), updatedAt: try project.decode("updated_at"),
                workflow: workflow, apiKeys: keys
            )
        }
    }
}
