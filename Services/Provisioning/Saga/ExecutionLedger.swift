import Foundation
import Postgres

/// Raised when this instance no longer holds an execution's lease (it expired and another
/// instance claimed the execution): the run stops at once, without writing anything more.
struct LeaseLost: Error {}

/// An execution this instance has claimed.
struct ClaimedExecution: Sendable {
    var id: UUID
    var projectID: UUID
    var kind: WorkflowKind
    var status: ExecutionState
    var attempt: Int
    var tenant: TenantNames
}

/// One row of `provisioning_steps`.
struct StepRow: Sendable {
    var name: String
    var status: StepState
    var attempts: Int
    /// Failed without any attempt having acted (see `noEffectOutput`).
    var hadNoEffect: Bool
}

/// The record of running executions: who holds which one (the lease), what each step did, and
/// the state the execution and its project move to. Kept apart from `ProjectStore` (what the
/// API asks for) because every write here is made by a lease holder and guarded by the lease
/// (`lease_owner = me`, checked under a row lock in the same transaction), so an instance that
/// lost its lease cannot overwrite the work of the one that took over; nothing else writes
/// through this type.
struct ExecutionLedger: Sendable {
    let pool: PostgresPool

    // MARK: Leases

    /// Claims the oldest execution that is open and not leased (or whose lease expired), and
    /// records `owner` in `claimed_by` too, which outlives the lease.
    func claim(owner: String, lease: Duration) async throws -> ClaimedExecution? {
        try await pool.withTransaction { tx in
            let rows = try await tx.query("""
                UPDATE provisioning.workflow_executions e
                SET lease_owner = \(owner),
                    claimed_by = \(owner),
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
            let kind: WorkflowKind = try row.decode("kind")
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
    func begin(_ step: String, of execution: ClaimedExecution, owner: String, status: StepState) async throws {
        try await guarded(execution, owner: owner) { tx in
            try await tx.query("""
                UPDATE provisioning.provisioning_steps
                SET status = \(status), attempts = attempts + 1, started_at = coalesce(started_at, now()), finished_at = NULL
                WHERE execution_id = \(execution.id) AND step = \(step)
                """)
        }
    }

    func succeed(_ step: String, of execution: ClaimedExecution, owner: String, status: StepState, output: String?) async throws {
        try await guarded(execution, owner: owner) { tx in
            try await tx.query("""
                UPDATE provisioning.provisioning_steps SET status = \(status), finished_at = now(), output = \(output)::jsonb
                WHERE execution_id = \(execution.id) AND step = \(step)
                """)
        }
    }

    /// Records a failed attempt; `final` marks the step failed.
    func recordError(_ step: String, of execution: ClaimedExecution, owner: String, message: String, final status: StepState?,
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
    /// is still running. (The lease stays held; `finish` releases it.) The project keeps the
    /// tenant schema version its tables step reached, for the tenant upgrade.
    func activate(_ execution: ClaimedExecution, owner: String) async throws {
        try await guarded(execution, owner: owner) { tx in
            try await tx.query("""
                UPDATE provisioning.projects SET status = 'ready', is_active = true, updated_at = now(),
                    tenant_schema_version = (
                        SELECT (output->>'tenant_schema_version')::int FROM provisioning.provisioning_steps
                        WHERE execution_id = \(execution.id) AND step = \(SagaStep.createTenantTables.rawValue)
                    )
                WHERE id = \(execution.projectID)
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
    /// deprovision succeeded → `deleted`; a key rotation leaves the project as it is.
    func finish(_ execution: ClaimedExecution, owner: String, succeeded: Bool) async throws {
        try await guarded(execution, owner: owner) { tx in
            try await tx.query("""
                UPDATE provisioning.workflow_executions
                SET status = \(succeeded ? ExecutionState.succeeded : .failed), finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
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
            case (.rotateKeys, _):
                break  // the project stays ready, with its new keys or its old ones
            }
        }
    }
}
