import Contracts
import Foundation
import HTTPClient
import Logging
import Postgres
import ServiceClients
import ServiceKit

/// A step that failed for good: a permanent error, or a transient one that kept failing.
struct StepFailure: Error {
    var step: String
    var message: String
}

/// The output recorded on a failed step none of whose attempts can have acted (every one was
/// refused before anything was sent, and none of an earlier run was left without a recorded
/// outcome): compensation leaves such a step alone, so a service that is down does not block
/// compensating the steps before it.
let noEffectOutput = #"{"effect":"none"}"#

/// Runs one claimed execution to its end (or until the lease is lost or the task cancelled).
///
/// Provision: each step not yet `succeeded` runs, stage by stage (`SagaStep.stages`: independent
/// steps at once); its row is written before the side effect (`running`, attempts + 1) and
/// after it (`succeeded`, or the error). Transient
/// failures (`HTTPClientError.isTransient`, the HTTP client's own rule, and
/// `PostgresError.isTransient`) are retried with
/// capped exponential backoff and full jitter up to `maxAttempts`; a permanent failure, or
/// retries exhausted, marks the step `failed` and compensates, in reverse, every step that
/// may have acted (`succeeded`, `running`, `failed`), each compensation idempotent; then the
/// execution and the project end `failed`, inactive. A resumed execution (after a crash) picks
/// up where the rows say it stopped: steps are idempotent, so re-running a `running` one is safe.
///
/// Deprovision: the compensations of every step, in reverse, as steps of their own; then the
/// project is `deleted`. A compensation that keeps failing leaves its execution open and
/// releases it for a later retry rather than pretending it is done.
struct SagaRunner: Sendable {
    let ledger: ExecutionLedger
    let vault: KeyVault
    let tenants: TenantDatabase
    let registrar: ServiceRegistrar
    let settings: ProvisioningSettings
    let logger: Logger

    func run(_ execution: ClaimedExecution, owner: String) async throws {
        var logger = self.logger
        logger[metadataKey: "workflow.id"] = "\(execution.id)"
        logger[metadataKey: "project.id"] = "\(execution.projectID)"
        logger[metadataKey: "tenant.slug"] = "\(execution.tenant.slug)"
        switch (execution.kind, execution.status) {
        case (.provision, .compensating):
            logger.info("resuming compensation")
            try await compensate(execution, owner: owner, logger: logger)
        case (.provision, _):
            try await provision(execution, owner: owner, logger: logger)
        case (.deprovision, _):
            try await deprovision(execution, owner: owner, logger: logger)
        case (.rotateKeys, .compensating):
            logger.info("resuming the undoing of a key rotation")
            try await undoRotation(execution, owner: owner, logger: logger)
        case (.rotateKeys, _):
            try await rotate(execution, owner: owner, logger: logger)
        }
    }

    // MARK: Key rotation

    /// Rotates the project's keys, step by step (`RotationStep`). Before its next set works
    /// (`mint_keys`, `store_keys`) a failure undoes the rotation and the current keys stay;
    /// after, the rotation only goes forward: a failing step is retried later. The grace period
    /// is waited out durably: the execution is handed back until it ends, so no worker (and no
    /// restart) holds it meanwhile.
    private func rotate(_ execution: ClaimedExecution, owner: String, logger: Logger) async throws {
        let steps = try await ledger.steps(of: execution.id)
        for step in RotationStep.allCases where steps[step.rawValue]?.status != .succeeded {
            if step == .awaitGrace, let until = try await vault.rotation(execution.id)?.graceUntil, until > Date() {
                // Whole seconds, rounded up: the lease is handed back for at least a second.
                let remaining = Duration.seconds(Int(until.timeIntervalSinceNow.rounded(.up)))
                logger.info("key rotation waits out its grace period", metadata: ["grace_until": "\(until)"])
                try await ledger.release(execution.id, owner: owner, after: remaining)
                return
            }
            do {
                try await attempt(step.rawValue, of: execution, owner: owner, running: .running, done: .succeeded,
                                  outcomeUnknown: steps[step.rawValue]?.status == .running, logger: logger) {
                    try await perform(step, execution)
                }
            } catch let failure as StepFailure {
                guard step == .mintKeys || step == .storeKeys else {
                    logger.error("a key rotation step failed; it is retried later", metadata: ["step": "\(failure.step)", "error": "\(failure.message)"])
                    try await ledger.release(execution.id, owner: owner, after: settings.retryMax)
                    return
                }
                logger.warning("key rotation step failed; undoing the rotation", metadata: ["step": "\(failure.step)", "error": "\(failure.message)"])
                try await ledger.beginCompensation(execution, owner: owner, error: "\(failure.step): \(failure.message)")
                try await undoRotation(execution, owner: owner, logger: logger)
                return
            }
        }
        try await ledger.finish(execution, owner: owner, succeeded: true)
        logger.info("api keys rotated")
    }

    private func perform(_ step: RotationStep, _ execution: ClaimedExecution) async throws -> String? {
        switch step {
        case .mintKeys:
            let next = try await vault.nextKeySet(for: execution.id, project: execution.projectID, mint: APIKeyMinter.mint)
            let ids = next.keys.map { #""\#($0.kind.rawValue)":"\#($0.id.uuidString.lowercased())""# }
            return "{" + ids.joined(separator: ",") + "}"
        case .storeKeys:
            guard let next = try await vault.rotation(execution.id)?.next else { throw APIError.conflict("The rotation has no next key set.") }
            try await registrar.storeNextAPIKeys(next, tenantID: execution.projectID)
            let until = try await vault.markNextStored(execution.id)
            return #"{"grace_until":"\#(ISO8601DateFormatter().string(from: until))"}"#
        case .awaitGrace:
            return nil
        case .revokeOldKeys:
            let current = try await vault.currentKeyIDs(of: execution.projectID)
            let next = try await vault.rotation(execution.id)?.next?.keys.map(\.id) ?? []
            try await registrar.revokeAPIKeys(current.filter { !next.contains($0) }, tenantID: execution.projectID)
            return nil
        case .switchKeys:
            try await vault.switchToNextKeySet(execution.id, project: execution.projectID)
            return nil
        }
    }

    /// Undoes a rotation whose next set never came into use: revokes it in auth (if it may have
    /// been stored), forgets it, and ends the execution failed; the current keys stay.
    private func undoRotation(_ execution: ClaimedExecution, owner: String, logger: Logger) async throws {
        let steps = try await ledger.steps(of: execution.id)
        let acted: Set<StepState> = [.succeeded, .running, .failed, .compensating]
        for step in [RotationStep.storeKeys, .mintKeys] {
            guard let row = steps[step.rawValue], acted.contains(row.status), !(row.status == .failed && row.hadNoEffect) else { continue }
            do {
                try await attempt(step.rawValue, of: execution, owner: owner, running: .compensating, done: .compensated,
                                  keepFailedStatus: true, logger: logger) {
                    switch step {
                    case .storeKeys:
                        let next = try await vault.rotation(execution.id)?.next?.keys.map(\.id) ?? []
                        try await registrar.revokeAPIKeys(next, tenantID: execution.projectID)
                    default:
                        try await vault.forgetNextKeySet(execution.id, project: execution.projectID)
                    }
                    return nil
                }
            } catch let failure as StepFailure {
                logger.error("undoing a key rotation step failed; will retry later", metadata: ["step": "\(failure.step)", "error": "\(failure.message)"])
                try await ledger.release(execution.id, owner: owner, after: settings.retryMax)
                return
            }
        }
        try await vault.endRotation(execution.id, project: execution.projectID)
        try await ledger.finish(execution, owner: owner, succeeded: false)
        logger.info("key rotation failed and was undone; the current keys stay")
    }

    // MARK: Provision

    private func provision(_ execution: ClaimedExecution, owner: String, logger: Logger) async throws {
        let steps = try await ledger.steps(of: execution.id)
        for stage in SagaStep.stages {
            // The stage's lanes at once; each returns the failure that stopped it, if any.
            let failures = try await withThrowingTaskGroup(of: StepFailure?.self) { group in
                for lane in stage {
                    group.addTask {
                        for step in lane where steps[step.rawValue]?.status != .succeeded {
                            do {
                                // A step found `running` was begun by an earlier holder of the lease
                                // that never recorded how it ended (a crash between the side effect
                                // and its record): it may have acted, whatever this run's attempts see.
                                try await attempt(step.rawValue, of: execution, owner: owner, running: .running, done: .succeeded,
                                                  outcomeUnknown: steps[step.rawValue]?.status == .running, logger: logger) {
                                    try await perform(step, execution, owner: owner)
                                }
                            } catch let failure as StepFailure {
                                return failure
                            }
                        }
                        return nil
                    }
                }
                var failures: [StepFailure] = []
                for try await failure in group {
                    if let failure { failures.append(failure) }
                }
                return failures
            }
            if let failure = failures.first {
                logger.warning("step failed; compensating", metadata: ["step": "\(failure.step)", "error": "\(failure.message)"])
                try await ledger.beginCompensation(execution, owner: owner, error: "\(failure.step): \(failure.message)")
                try await compensate(execution, owner: owner, logger: logger)
                return
            }
        }
        try await ledger.finish(execution, owner: owner, succeeded: true)
        logger.info("project provisioned")
    }

    /// The side effect of one step; returns the JSON output recorded on the step, if any.
    private func perform(_ step: SagaStep, _ execution: ClaimedExecution, owner: String) async throws -> String? {
        let tenant = execution.tenant
        switch step {
        case .createTenantSchema:
            try await tenants.createSchemaAndRole(tenant)
            return #"{"schema":"\#(tenant.schema)","role":"\#(tenant.role)"}"#
        case .createTenantTables:
            let version = try await tenants.migrate(tenant)
            return #"{"tenant_schema_version":\#(version)}"#
        case .registerAuth:
            try await registrar.register(.auth, tenantID: execution.projectID, tenant: tenant)
            return nil
        case .registerRealtime:
            try await registrar.register(.realtime, tenantID: execution.projectID, tenant: tenant)
            return nil
        case .registerStorage:
            try await registrar.register(.storage, tenantID: execution.projectID, tenant: tenant)
            return nil
        case .generateAPIKeys:
            let keys = try await vault.keySet(for: execution.projectID, mint: APIKeyMinter.mint)
            try await registrar.storeAPIKeys(keys, tenantID: execution.projectID)
            let ids = keys.keys.map { #""\#($0.kind.rawValue)":"\#($0.id.uuidString.lowercased())""# }
            return "{" + ids.joined(separator: ",") + "}"
        case .activate:
            try await ledger.activate(execution, owner: owner)
            return nil
        }
    }

    /// Undoes one step. Every branch is idempotent.
    private func undo(_ step: SagaStep, _ execution: ClaimedExecution, owner: String) async throws {
        let tenant = execution.tenant
        switch step {
        case .createTenantSchema:
            try await tenants.dropSchemaAndRole(tenant)
        case .createTenantTables:
            try await tenants.dropTables(tenant)
        case .registerAuth:
            try await registrar.deregister(.auth, tenantID: execution.projectID)
        case .registerRealtime:
            try await registrar.deregister(.realtime, tenantID: execution.projectID)
        case .registerStorage:
            try await registrar.deregister(.storage, tenantID: execution.projectID)
        case .generateAPIKeys:
            try await registrar.revokeAPIKeys(tenantID: execution.projectID)
            try await vault.forgetKeys(for: execution.projectID)
        case .activate:
            try await ledger.deactivate(execution, owner: owner)
        }
    }

    // MARK: Compensation

    private func compensate(_ execution: ClaimedExecution, owner: String, logger: Logger) async throws {
        let steps = try await ledger.steps(of: execution.id)
        let acted: Set<StepState> = [.succeeded, .running, .failed, .compensating]
        let toUndo = SagaStep.allCases.reversed().filter { step in
            guard let row = steps[step.rawValue] else { return false }
            return acted.contains(row.status) && !(row.status == .failed && row.hadNoEffect)
        }
        guard try await undo(toUndo, recordedAs: \.rawValue, running: .compensating, done: .compensated,
                             keepFailedStatus: true, execution, owner: owner, logger: logger)
        else { return }
        try await ledger.finish(execution, owner: owner, succeeded: false)
        logger.info("provisioning failed and was fully compensated")
    }

    // MARK: Deprovision

    private func deprovision(_ execution: ClaimedExecution, owner: String, logger: Logger) async throws {
        let steps = try await ledger.steps(of: execution.id)
        let toUndo = SagaStep.allCases.reversed().filter { steps[$0.undoName]?.status != .succeeded }
        guard try await undo(toUndo, recordedAs: \.undoName, running: .running, done: .succeeded,
                             keepFailedStatus: false, execution, owner: owner, logger: logger)
        else { return }
        try await ledger.finish(execution, owner: owner, succeeded: true)
        logger.info("project deprovisioned")
    }

    /// Undoes `steps` in the order given, each recorded on the step row `recordedAs` names.
    /// Returns false when one kept failing: the execution is then released to be retried later
    /// (an undo is never abandoned half-way).
    private func undo(
        _ steps: [SagaStep],
        recordedAs rowName: (SagaStep) -> String,
        running: StepState,
        done: StepState,
        keepFailedStatus: Bool,
        _ execution: ClaimedExecution,
        owner: String,
        logger: Logger
    ) async throws -> Bool {
        for step in steps {
            do {
                try await attempt(rowName(step), of: execution, owner: owner, running: running, done: done,
                                  keepFailedStatus: keepFailedStatus, logger: logger) {
                    try await undo(step, execution, owner: owner)
                    return nil
                }
            } catch let failure as StepFailure {
                logger.error("undoing a step failed; will retry later", metadata: ["step": "\(failure.step)", "error": "\(failure.message)"])
                try await ledger.release(execution.id, owner: owner, after: settings.retryMax)
                return false
            }
        }
        return true
    }

    // MARK: Attempts

    /// Runs `action` for one step row with the retry policy, recording every attempt.
    private func attempt(
        _ step: String,
        of execution: ClaimedExecution,
        owner: String,
        running: StepState,
        done: StepState,
        keepFailedStatus: Bool = false,
        outcomeUnknown: Bool = false,
        logger: Logger,
        _ action: () async throws -> String?
    ) async throws {
        var attempts = 0
        // Only a step none of whose attempts can have reached its service is marked as having
        // had no effect; an attempt of an earlier run whose outcome was never recorded might have.
        var mayHaveActed = outcomeUnknown
        while true {
            attempts += 1
            try await ledger.begin(step, of: execution, owner: owner, status: running)
            do {
                let output = try await action()
                if let failpoint = settings.failpoint, failpoint.fires(after: step) {
                    // Test only (PROVISIONING_FAILPOINT): die between the effect and its record.
                    logger.critical("failpoint after_effect fired; killing the process", metadata: ["step": "\(step)"])
                    Failpoint.crash()
                }
                try await ledger.succeed(step, of: execution, owner: owner, status: done, output: output)
                return
            } catch let error where error is LeaseLost || error is CancellationError {
                throw error
            } catch {
                let message = Self.describe(error)
                mayHaveActed = mayHaveActed || !Self.neverSent(error)
                let retry = Self.isTransient(error) && attempts < settings.maxAttempts
                // A failed compensation stays `compensating` (it is retried later); a failed
                // step becomes `failed`.
                let finalStatus: StepState? = retry ? nil : (keepFailedStatus ? nil : .failed)
                try await ledger.recordError(step, of: execution, owner: owner, message: message, final: finalStatus,
                                            output: finalStatus != nil && !mayHaveActed ? noEffectOutput : nil)
                guard retry else { throw StepFailure(step: step, message: message) }
                let delay = settings.backoff.delay(beforeRetry: attempts)
                logger.info("transient failure; retrying", metadata: [
                    "step": "\(step)", "attempt": "\(attempts)", "retry_in": "\(delay)", "error": "\(message)",
                ])
                try await Task.sleep(for: delay)
            }
        }
    }

    /// True when the request provably never reached the other side (the connection was refused).
    static func neverSent(_ error: any Error) -> Bool {
        (error as? HTTPClientError)?.requestNeverSent == true
    }

    /// HTTP calls follow the HTTP client's one rule (`HTTPClientError.isTransient`), database
    /// work PostgresError's; anything else will not pass.
    static func isTransient(_ error: any Error) -> Bool {
        switch error {
        case let error as HTTPClientError:
            return error.isTransient
        case let error as PostgresError:
            return error.isTransient
        default:
            return false
        }
    }

    /// A description fit for the step's `last_error`: the kits' descriptions carry no secrets;
    /// anything else is named by its type only.
    static func describe(_ error: any Error) -> String {
        let text: String
        switch error {
        case let error as HTTPClientError: text = error.platformDescription
        case let error as PostgresError: text = error.description
        case let error as APIError: text = "\(error.code): \(error.message)"
        default: text = "unexpected error (\(type(of: error)))"
        }
        return String(text.prefix(500))
    }
}
