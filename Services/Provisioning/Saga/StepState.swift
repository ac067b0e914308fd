/// Where one step row stands (`provisioning_steps.status`): `pending → running → succeeded |
/// failed`, then, when its execution compensates, `compensating → compensated`. A deprovision
/// records its undo steps with the forward states (`running → succeeded`).
enum StepState: String, StoredEnum, Sendable {
    case pending, running, succeeded, failed, compensating, compensated
}
