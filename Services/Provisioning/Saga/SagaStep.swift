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

/// Which way an execution walks the steps.
enum WorkflowKind: String, StoredEnum, Sendable {
    case provision
    case deprovision

    /// Step names in the order the execution runs them.
    var stepNames: [String] {
        switch self {
        case .provision: SagaStep.allCases.map(\.rawValue)
        case .deprovision: SagaStep.allCases.reversed().map(\.undoName)
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
