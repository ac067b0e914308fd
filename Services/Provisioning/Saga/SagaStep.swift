/// The steps of provisioning a tenant, in order (some run at once: `stages`). Each is
/// idempotent (safe to run twice, same result) and has an idempotent compensation; a deprovision
/// runs the compensations of all of them, in reverse, as steps of its own.
enum SagaStep: String, CaseIterable, Sendable {
    case createTenantSchema = "create_tenant_schema"
    case createTenantTables = "create_tenant_tables"
    case registerAuth = "register_auth"
    case registerRealtime = "register_realtime"
    case registerStorage = "register_storage"
    case generateAPIKeys = "generate_api_keys"
    case activate = "activate"

    /// The name of this step's compensation when it runs as a deprovisioning step.
    var undoName: String {
        switch self {
        case .createTenantSchema: "drop_tenant_schema"
        case .createTenantTables: "drop_tenant_tables"
        case .registerAuth: "deregister_auth"
        case .registerRealtime: "deregister_realtime"
        case .registerStorage: "deregister_storage"
        case .generateAPIKeys: "revoke_api_keys"
        case .activate: "deactivate"
        }
    }

    /// How a provision runs the steps: stages one after another; within a stage, lanes at once,
    /// each lane's steps in order. A step waits only for what it needs: the tables need the
    /// schema; the three registrations need nothing but the tenant's names, so they run beside
    /// the tenant's DDL; the keys are stored in auth, so they follow its registration; `activate`
    /// comes last. Every step appears once, lanes keep the order of `allCases`, and a failure in
    /// one lane lets the others finish their step before the compensation.
    static let stages: [[[SagaStep]]] = [
        [[.createTenantSchema, .createTenantTables], [.registerAuth], [.registerRealtime], [.registerStorage]],
        [[.generateAPIKeys]],
        [[.activate]],
    ]

    init?(undoName: String) {
        guard let step = SagaStep.allCases.first(where: { $0.undoName == undoName }) else { return nil }
        self = step
    }
}

/// The steps of rotating a project's API keys, in order. `mintKeys` and `storeKeys` are undone
/// when the rotation fails before its next set is in use; from `awaitGrace` on, the next set is
/// live and the rotation only goes forward (a failing step is retried later, never abandoned).
enum RotationStep: String, CaseIterable, Sendable {
    /// Mint the next set (hashes recorded, readable keys awaiting their one reveal).
    case mintKeys = "mint_keys"
    /// Make it active in auth beside the current set; the grace period starts.
    case storeKeys = "store_keys"
    /// Wait until the grace period is over (the execution sleeps, released until then).
    case awaitGrace = "await_grace"
    /// Revoke the old set in auth.
    case revokeOldKeys = "revoke_old_keys"
    /// Make the next set the project's, and announce `project.keys_rotated`.
    case switchKeys = "switch_keys"
}

/// Which way an execution walks the steps.
enum WorkflowKind: String, StoredEnum, Sendable {
    case provision
    case deprovision
    case rotateKeys = "rotate_keys"

    /// Step names in the order the execution runs them.
    var stepNames: [String] {
        switch self {
        case .provision: SagaStep.allCases.map(\.rawValue)
        case .deprovision: SagaStep.allCases.reversed().map(\.undoName)
        case .rotateKeys: RotationStep.allCases.map(\.rawValue)
        }
    }
}

/// A tenant's names, all derived from its slug.
struct TenantNames: Sendable {
    let slug: String
    var schema: String { "tenant_" + slug }
    /// The role that owns the schema; named like it.
    var role: String { "tenant_" + slug }

}
