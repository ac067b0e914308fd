import Contracts
import Foundation
import Postgres
import ServiceKit

/// Raised when this instance no longer holds an execution's lease (it expired and another
/// instance claimed the execution): the run stops at once, without writing anything more.
struct LeaseLost: Error {}

/// An execution this instance has claimed.
struct ClaimedExecution: Sendable {
    var id: UUID
    var projectID: UUID
    var kind: WorkflowKind
    var status: String
    var attempt: Int
    var tenant: TenantNames
}

/// One row of `provisioning_steps`.
struct StepRow: Sendable {
    var name: String
    var status: String
    var attempts: Int
    /// Failed without any attempt having acted (see `noEffectOutput`).
    var hadNoEffect: Bool
}

/// Everything provisioning stores: projects, workflow executions and their steps, and the
/// API keys awaiting their one reveal. Every write made while running an execution is guarded
/// by the execution's lease (`lease_owner = me`), so an instance that lost its lease cannot
/// overwrite the work of the one that took over.
struct ProjectStore: Sendable {
    let pool: PostgresPool
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
            INSERT INTO provisioning.workflow_executions (id, project_id, kind, attempt) VALUES (\(id), \(project), \(kind.rawValue), \(attempt))
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
            guard project.status == "failed" else {
                throw APIError.conflict(code: "not_retryable", "Only a failed project can be retried; this one is \(project.status).")
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
            if project.status == "deprovisioning" || project.status == "deleted" {
                let latest = try await tx.query("""
                    SELECT id FROM provisioning.workflow_executions
                    WHERE project_id = \(projectID) AND kind = 'deprovision' ORDER BY created_at DESC LIMIT 1
                    """)
                if let row = latest.first {
                    return (try row.decode("id", as: UUID.self), project.slug, ProjectState(rawValue: project.status) ?? .deprovisioning)
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
            try await tx.query("DELETE FROM provisioning.api_key_reveals WHERE project_id = \(projectID)")
            try await insertExecution(tx, id: executionID, project: projectID, kind: .deprovision, attempt: 1)
            return (executionID, project.slug, .deprovisioning)
        }
    }

    private func lockProject(_ tx: PostgresConnection, _ projectID: UUID) async throws -> (status: String, slug: String) {
        let rows = try await tx.query("SELECT status, slug FROM provisioning.projects WHERE id = \(projectID) FOR UPDATE")
        guard let row = rows.first else { throw APIError.notFound("project") }
        return (try row.decode("status"), try row.decode("slug"))
    }

    // MARK: Leases

    /// Claims the oldest execution that is open and not leased (or whose lease expired).
    func claim(owner: String, lease: Duration) async throws -> ClaimedExecution? {
        try await pool.withTransaction { tx in
            let rows = try await tx.query("""
                UPDATE provisioning.workflow_executions e
                SET lease_owner = \(owner),
                    lease_expires_at = now() + make_interval(secs => \(Double(lease.components.seconds))),
                    status = CASE WHEN e.status = 'pending' THEN 'running' ELSE e.status END,
                    started_at = coalesce(e.started_at, now())
                FROM provisioning.projects p
                WHERE p.id = e.project_id AND e.id = (
                    SELECT id FROM provisioning.workflow_executions
                    WHERE status IN ('pending', 'running', 'compensating')
                      AND (lease_expires_at IS NULL OR lease_expires_at < now())
                    ORDER BY created_at
                    LIMIT 1
                    FOR UPDATE SKIP LOCKED
                )
                RETURNING e.id, e.project_id, e.kind, e.status, e.attempt::int8 AS attempt, p.slug
                """)
            guard let row = rows.first else { return nil }
            let projectID: UUID = try row.decode("project_id")
            guard let kind = WorkflowKind(rawValue: try row.decode("kind")) else { return nil }
            if kind == .provision {
                try await tx.query("""
                    UPDATE provisioning.projects SET status = 'running', updated_at = now() WHERE id = \(projectID) AND status = 'pending'
                    """)
            }
            return ClaimedExecution(
                id: try row.decode("id"),
                projectID: projectID,
                kind: kind,
                status: try row.decode("status"),
                attempt: try row.decode("attempt"),
                tenant: TenantNames(slug: try row.decode("slug"))
            )
        }
    }

    /// Extends the lease; false when it was lost.
    func renew(_ execution: UUID, owner: String, lease: Duration) async throws -> Bool {
        let result = try await pool.query("""
            UPDATE provisioning.workflow_executions
            SET lease_expires_at = now() + make_interval(secs => \(Double(lease.components.seconds)))
            WHERE id = \(execution) AND lease_owner = \(owner)
            """)
        return result.affectedRows == 1
    }

    /// Gives the execution back to be claimed again after `delay` (by this instance or another).
    func release(_ execution: UUID, owner: String, after delay: Duration) async throws {
        try await pool.query("""
            UPDATE provisioning.workflow_executions
            SET lease_owner = NULL, lease_expires_at = now() + make_interval(secs => \(Double(delay.components.seconds)))
            WHERE id = \(execution) AND lease_owner = \(owner)
            """)
    }

    // MARK: Steps

    func steps(of execution: UUID) async throws -> [String: StepRow] {
        let rows = try await pool.query("""
            SELECT step, status, attempts::int8 AS attempts, coalesce(output->>'effect' = 'none', false) AS no_effect
            FROM provisioning.provisioning_steps WHERE execution_id = \(execution)
            """)
        var steps: [String: StepRow] = [:]
        for row in rows {
            let step = StepRow(name: try row.decode("step"), status: try row.decode("status"), attempts: try row.decode("attempts"),
                               hadNoEffect: try row.decode("no_effect"))
            steps[step.name] = step
        }
        return steps
    }

    /// Records that a step (or its compensation) is about to act: written before the side
    /// effect, so a crash leaves a trace of what may have happened.
    func begin(_ step: String, of execution: ClaimedExecution, owner: String, status: String) async throws {
        try await guarded(execution, owner: owner) { tx in
            try await tx.query("""
                UPDATE provisioning.provisioning_steps
                SET status = \(status), attempts = attempts + 1, started_at = coalesce(started_at, now()), finished_at = NULL
                WHERE execution_id = \(execution.id) AND step = \(step)
                """)
        }
    }

    func succeed(_ step: String, of execution: ClaimedExecution, owner: String, status: String, output: String?) async throws {
        try await guarded(execution, owner: owner) { tx in
            try await tx.query("""
                UPDATE provisioning.provisioning_steps SET status = \(status), finished_at = now(), output = \(output)::jsonb
                WHERE execution_id = \(execution.id) AND step = \(step)
                """)
        }
    }

    /// Records a failed attempt; `final` marks the step failed.
    func recordError(_ step: String, of execution: ClaimedExecution, owner: String, message: String, final status: String?,
                     output: String? = nil) async throws {
        try await guarded(execution, owner: owner) { tx in
            try await tx.query("""
                UPDATE provisioning.provisioning_steps
                SET last_error = \(message), status = coalesce(\(status)::text, status), output = coalesce(\(output)::jsonb, output),
                    finished_at = CASE WHEN \(status)::text IS NULL THEN finished_at ELSE now() END
                WHERE execution_id = \(execution.id) AND step = \(step)
                """)
        }
    }

    /// Runs `body` in a transaction that first checks (and locks) the lease.
    private func guarded(_ execution: ClaimedExecution, owner: String, _ body: (PostgresConnection) async throws -> Void) async throws {
        try await pool.withTransaction { tx in
            let held = try await tx.query("""
                SELECT 1 FROM provisioning.workflow_executions WHERE id = \(execution.id) AND lease_owner = \(owner) FOR UPDATE
                """)
            guard held.count == 1 else { throw LeaseLost() }
            try await body(tx)
        }
    }

    // MARK: Execution and project state

    /// Moves a running provision into compensation, recording why.
    func beginCompensation(_ execution: ClaimedExecution, owner: String, error: String) async throws {
        try await guarded(execution, owner: owner) { tx in
            try await tx.query("""
                UPDATE provisioning.workflow_executions SET status = 'compensating', error = \(error) WHERE id = \(execution.id)
                """)
        }
    }

    /// Sets the project ready and active (the `activate` step). The step and the execution are
    /// marked succeeded in the same transaction, so nobody sees a ready project whose workflow
    /// is still running. (The lease stays held; `finish` releases it.)
    func activate(_ execution: ClaimedExecution, owner: String) async throws {
        try await guarded(execution, owner: owner) { tx in
            try await tx.query("""
                UPDATE provisioning.projects SET status = 'ready', is_active = true, updated_at = now() WHERE id = \(execution.projectID)
                """)
            try await tx.query("""
                UPDATE provisioning.provisioning_steps SET status = 'succeeded', finished_at = now()
                WHERE execution_id = \(execution.id) AND step = \(SagaStep.activate.rawValue)
                """)
            try await tx.query("""
                UPDATE provisioning.workflow_executions SET status = 'succeeded', finished_at = now() WHERE id = \(execution.id)
                """)
        }
    }

    /// Takes the project out of service (the `deactivate` compensation).
    func deactivate(_ execution: ClaimedExecution, owner: String) async throws {
        try await guarded(execution, owner: owner) { tx in
            try await tx.query("""
                UPDATE provisioning.projects
                SET is_active = false, status = CASE WHEN status = 'ready' THEN 'running' ELSE status END, updated_at = now()
                WHERE id = \(execution.projectID)
                """)
        }
    }

    /// Ends an execution and moves the project to its resting state, in one transaction:
    /// provision succeeded → (already ready); provision failed → `failed`, inactive;
    /// deprovision succeeded → `deleted`.
    func finish(_ execution: ClaimedExecution, owner: String, succeeded: Bool) async throws {
        try await guarded(execution, owner: owner) { tx in
            try await tx.query("""
                UPDATE provisioning.workflow_executions
                SET status = \(succeeded ? "succeeded" : "failed"), finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
                WHERE id = \(execution.id)
                """)
            switch (execution.kind, succeeded) {
            case (.provision, true):
                break
            case (.provision, false):
                try await tx.query("""
                    UPDATE provisioning.projects SET status = 'failed', is_active = false, updated_at = now() WHERE id = \(execution.projectID)
                    """)
            case (.deprovision, _):
                try await tx.query("""
                    UPDATE provisioning.projects SET status = 'deleted', is_active = false, updated_at = now() WHERE id = \(execution.projectID)
                    """)
            }
        }
    }

    // MARK: API keys awaiting their reveal

    /// The project's key set, as hashes: the one recorded by an earlier attempt when there is
    /// one (a re-run never mints a second set), else `mint()`'s, recorded together with the
    /// readable keys awaiting their one reveal.
    func keySet(for projectID: UUID, mint: @Sendable () -> MintedKeys) async throws -> APIKeySet {
        try await pool.withTransaction { tx in
            try await tx.query("SELECT pg_advisory_xact_lock(hashtextextended(\(projectID.uuidString), 0))")
            if let row = try await tx.query("SELECT * FROM provisioning.api_key_sets WHERE project_id = \(projectID)").first {
                return APIKeySet(keys: [
                    APIKeyHash(id: try row.decode("publishable_id"), kind: .publishable,
                               prefix: try row.decode("publishable_prefix"), sha256: try row.decode("publishable_sha256")),
                    APIKeyHash(id: try row.decode("secret_id"), kind: .secret,
                               prefix: try row.decode("secret_prefix"), sha256: try row.decode("secret_sha256")),
                ])
            }
            let keys = mint()
            let set = keys.hashes
            let publishable = set.keys[0]
            let secret = set.keys[1]
            try await tx.query("""
                INSERT INTO provisioning.api_key_sets
                    (project_id, publishable_id, publishable_prefix, publishable_sha256, secret_id, secret_prefix, secret_sha256)
                VALUES (\(projectID), \(publishable.id), \(publishable.prefix), \(publishable.sha256),
                        \(secret.id), \(secret.prefix), \(secret.sha256))
                """)
            try await tx.query("""
                INSERT INTO provisioning.api_key_reveals (project_id, publishable_id, publishable, secret_id, secret)
                VALUES (\(projectID), \(keys.publishableID), \(keys.publishable), \(keys.secretID), \(keys.secret))
                ON CONFLICT (project_id) DO NOTHING
                """)
            return set
        }
    }

    /// Forgets the key set (after auth revoked it), so a later attempt mints a fresh one.
    func forgetKeys(for projectID: UUID) async throws {
        try await pool.withTransaction { tx in
            try await tx.query("DELETE FROM provisioning.api_key_reveals WHERE project_id = \(projectID)")
            try await tx.query("DELETE FROM provisioning.api_key_sets WHERE project_id = \(projectID)")
        }
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
                        name: try row.decode("step"), status: try row.decode("status"), attempts: try row.decode("attempts"),
                        lastError: try row.decode("last_error"), startedAt: try row.decode("started_at"),
                        finishedAt: try row.decode("finished_at")
                    )
                }
                workflow = WorkflowStatus(
                    id: executionID, kind: try execution.decode("kind"), status: try execution.decode("status"),
                    attempt: try execution.decode("attempt"), startedAt: try execution.decode("started_at"),
                    finishedAt: try execution.decode("finished_at"), error: try execution.decode("error"), steps: steps
                )
            }
            let state = ProjectState(rawValue: try project.decode("status")) ?? .pending
            var keys: IssuedAPIKeys?
            if state == .ready {
                let revealed = try await tx.query("""
                    DELETE FROM provisioning.api_key_reveals WHERE project_id = \(projectID) RETURNING publishable, secret
                    """)
                if let row = revealed.first {
                    keys = IssuedAPIKeys(publishable: try row.decode("publishable"), secret: try row.decode("secret"))
                }
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
