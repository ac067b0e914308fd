/// Where a workflow execution stands (`workflow_executions.status`): `pending → running →
/// succeeded`, or `running → compensating → failed`. `pending`, `running` and `compensating`
/// are open: a worker may claim the execution, and a project has at most one open execution.
enum ExecutionState: String, StoredEnum, Sendable {
    case pending, running, compensating, succeeded, failed
}
