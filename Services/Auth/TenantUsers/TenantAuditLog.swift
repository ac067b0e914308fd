import Contracts
import Foundation
import Postgres
import ServiceKit

/// A tenant's hash-chained audit log (`tenant_<slug>.audit_log`) and auth's witness of it
/// (`auth.tenant_audit_checkpoints`): appending, reading, verifying.
///
/// **Why a witness outside the tenant's schema.** The chain is computed by the tenant's own
/// trigger, in a table its role owns: that role can `ALTER TABLE audit_log DISABLE TRIGGER`,
/// rewrite a row and recompute every hash after it, and the chain alone verifies again. Making
/// another role own the table would not be enough: the tenant's role owns the schema, and a
/// schema's owner may drop any table in it and create another, and it owns the chain's
/// functions. So auth keeps, in its own schema, the hash of the last entry it appended (in the
/// same transaction as the append) and of the last entry a verification reached. A rewritten,
/// recomputed chain no longer ends in those hashes (finding another history that does means
/// breaking SHA-256), and `verify` reports it. An append that finds the chain no longer
/// continuing from auth's last entry records the break for good (`diverged_seq`), so a later
/// append cannot carry a rewritten history forward.
///
/// Verification trusts nothing of the tenant's schema but the rows: it reads them and hashes
/// them here (not with the tenant's `audit_log_hash()`, which its role could replace).
///
/// Limits, stated: the witness starts with the first entry auth appends or verifies (an
/// existing chain is trusted up to there); an incremental verification re-reads only the row
/// at its checkpoint and the rows after it, so a row before the checkpoint changed *in place*
/// (hashes left as they were) is found by a full one (`full: true`) only; and whoever can
/// write auth's schema (the platform's own role, a superuser) can rewrite the witness too.
struct TenantAuditLog: Sendable {
    let pool: PostgresPool
    let budget: TenantConcurrency

    /// Rows read per statement while verifying: bounds the memory of one verification.
    static let batchSize = 1000

    /// The hash of "no previous entry", the first row's `prev_hash`.
    static let genesis = String(repeating: "0", count: 64)

    // MARK: Appending

    /// Appends one entry (the tenant's trigger gives it its `seq` and hashes) and moves auth's
    /// head to it, in the caller's transaction. The trigger's advisory lock serialises appends
    /// until commit, so the head moves in chain order; `ON CONFLICT DO UPDATE` sees the latest
    /// committed head even though the statement's snapshot predates the lock.
    static func append(_ audit: TenantUserStore.Audit, target: UUID, tenant: RegisteredTenant, on tx: PostgresConnection) async throws {
        try await tx.query("""
            WITH appended AS (
                INSERT INTO \(identifier: tenant.schema).audit_log (actor, action, target, details)
                VALUES (\(audit.actor), \(audit.action), \(target.uuidString.lowercased()), \(PostgresJSON(JSONValue.object(audit.details))))
                RETURNING seq, prev_hash, hash
            )
            INSERT INTO auth.tenant_audit_checkpoints AS c (tenant_id, head_seq, head_hash)
            SELECT \(tenant.id), seq, hash FROM appended
            ON CONFLICT (tenant_id) DO UPDATE SET
                head_seq = excluded.head_seq,
                head_hash = excluded.head_hash,
                diverged_seq = coalesce(c.diverged_seq, CASE
                    WHEN c.head_seq IS NOT NULL
                         AND (excluded.head_seq <> c.head_seq + 1 OR (SELECT prev_hash FROM appended) <> c.head_hash)
                    THEN excluded.head_seq END),
                updated_at = now()
            """)
    }

    // MARK: Reading

    /// Entries in chain order after `afterSeq`.
    func entries(_ tenant: RegisteredTenant, afterSeq: Int, limit: Int) async throws -> [AuditEntry] {
        try await budget.withPermit(tenant.id) {
            try await pool.withTransaction { tx in
                try await tx.query("""
                    SELECT id, seq, occurred_at, actor, action, target, details, prev_hash, hash
                    FROM \(identifier: tenant.schema).audit_log WHERE seq > \(afterSeq) ORDER BY seq LIMIT \(limit)
                    """).map { row in
                    AuditEntry(id: try row.decode("id"), seq: try row.decode("seq"), occurredAt: try row.decode("occurred_at"),
                               actor: try row.decode("actor"), action: try row.decode("action"), target: try row.decode("target"),
                               details: try row.decode("details", as: PostgresJSON<JSONValue>.self).value,
                               prevHash: try row.decode("prev_hash"), hash: try row.decode("hash"))
                }
            }
        }
    }

    // MARK: Verifying

    /// Auth's witness of one tenant's chain.
    struct Checkpoint: Sendable {
        var head: Link?
        var verified: Link?
        var divergedSeq: Int?
    }

    /// A position in the chain and the hash of the entry there.
    struct Link: Sendable, Equatable {
        var seq: Int
        var hash: String
    }

    /// One row as the hash covers it, every field as the tenant's table gives it (nil where the
    /// table no longer has what auth wrote: such a row cannot hash right).
    struct Row: Sendable {
        var id: Int
        var seq: Int
        var prevHash: String?
        var hash: String?
        var occurredAt: String?
        var actor: String?
        var action: String?
        var target: String
        var details: String?

        /// SHA-256 of `prev_hash|seq|occurred_at|actor|action|target|details`, exactly as the
        /// tenant migration's `audit_log_hash()` computes it at append time.
        var computedHash: String? {
            guard let prevHash, let occurredAt, let actor, let action, let details else { return nil }
            return SecureToken.sha256Hex([prevHash, String(seq), occurredAt, actor, action, target, details].joined(separator: "|"))
        }

        /// Hashes right and carries the hash it claims.
        var isIntact: Bool { hash != nil && computedHash == hash }
    }

    /// Verifies the tenant's chain: from auth's checkpoint on (the row there must still hold the
    /// checkpointed hash), or from the first row when `full`. Every row read must link to the one
    /// before and hash right; the row at auth's head must hold the head's hash; rows auth
    /// appended or verified must all still be there. A chain that holds moves the checkpoint to
    /// its last row, so the next call reads only what was added since.
    func verify(_ tenant: RegisteredTenant, full: Bool) async throws -> AuditVerification {
        try await budget.withPermit(tenant.id) {
            try await pool.withTransaction { tx in
                let checkpoint = try await Self.checkpoint(tenant, on: tx)
                let walk: Walk
                do {
                    walk = try await tx.withSavepoint { savepoint in try await Self.walk(tenant, from: checkpoint, full: full, on: savepoint) }
                } catch let error as PostgresError where error.kind == .statementError || error.kind == .decoding {
                    // The tenant's role dropped or reshaped its audit log: what auth wrote is gone.
                    return AuditVerification(valid: false, entries: checkpoint.head?.seq ?? 0, firstBrokenId: nil, checked: 0, reason: "unreadable")
                }
                if let last = walk.last { try await Self.recordVerified(tenant, last, on: tx) }
                return walk.answer
            }
        }
    }

    /// What a walk found, and the link a chain that holds ends on (nil when broken or empty).
    private struct Walk: Sendable {
        var answer: AuditVerification
        var last: Link?

        static func broken(_ reason: String, at row: Row?, entries: Int, checked: Int) -> Walk {
            Walk(answer: AuditVerification(valid: false, entries: entries, firstBrokenId: row?.id, checked: checked, reason: reason), last: nil)
        }
    }

    private static func walk(_ tenant: RegisteredTenant, from checkpoint: Checkpoint, full: Bool, on tx: PostgresConnection) async throws -> Walk {
        let lastSeq: Int = try await tx.query("SELECT coalesce(max(seq), 0)::int8 AS n FROM \(identifier: tenant.schema).audit_log").single().decode("n")
        if let diverged = checkpoint.divergedSeq {
            return .broken("diverged", at: try await row(tenant, seq: diverged, on: tx), entries: lastSeq, checked: 0)
        }
        var expected = Link(seq: 1, hash: genesis)
        var checked = 0
        if !full, let verified = checkpoint.verified {
            // The row the last verification ended on must still be the one it saw.
            let row = try await row(tenant, seq: verified.seq, on: tx)
            checked = 1
            guard let row, row.isIntact, row.hash == verified.hash else {
                return .broken(row == nil ? "rows_missing" : "checkpoint_mismatch", at: row, entries: lastSeq, checked: checked)
            }
            expected = Link(seq: verified.seq + 1, hash: verified.hash)
        }
        // Every hash auth recorded, by position: the rows there must still carry them.
        var witnessed: [Int: String] = [:]
        if let head = checkpoint.head { witnessed[head.seq] = head.hash }
        if let verified = checkpoint.verified { witnessed[verified.seq] = verified.hash }

        while true {
            let batch = try await rows(tenant, fromSeq: expected.seq, limit: batchSize, on: tx)
            for row in batch {
                guard row.seq == expected.seq else { return .broken("rows_missing", at: row, entries: lastSeq, checked: checked) }
                checked += 1
                guard row.prevHash == expected.hash, row.isIntact, let hash = row.hash else {
                    return .broken("chain_broken", at: row, entries: lastSeq, checked: checked)
                }
                if let witnessedHash = witnessed[row.seq], witnessedHash != hash {
                    return .broken("checkpoint_mismatch", at: row, entries: lastSeq, checked: checked)
                }
                expected = Link(seq: row.seq + 1, hash: hash)
            }
            if batch.count < batchSize { break }
        }
        let last = expected.seq - 1
        // Entries auth appended or verified are gone (the log was cut short).
        if let furthest = witnessed.keys.max(), furthest > last {
            return .broken("rows_missing", at: nil, entries: last, checked: checked)
        }
        return Walk(answer: AuditVerification(valid: true, entries: last, firstBrokenId: nil, checked: checked),
                    last: last > 0 ? Link(seq: last, hash: expected.hash) : nil)
    }

    private static func checkpoint(_ tenant: RegisteredTenant, on tx: PostgresConnection) async throws -> Checkpoint {
        guard let row = try await tx.query("""
            SELECT head_seq, head_hash, verified_seq, verified_hash, diverged_seq
            FROM auth.tenant_audit_checkpoints WHERE tenant_id = \(tenant.id)
            """).first else { return Checkpoint() }
        func link(_ seq: String, _ hash: String) throws -> Link? {
            guard let seq: Int = try row.decode(seq), let hash: String = try row.decode(hash) else { return nil }
            return Link(seq: seq, hash: hash)
        }
        return Checkpoint(head: try link("head_seq", "head_hash"), verified: try link("verified_seq", "verified_hash"),
                          divergedSeq: try row.decode("diverged_seq"))
    }

    /// Moves the verification checkpoint to where a chain that holds ended, never back past a
    /// later one a concurrent verification recorded.
    private static func recordVerified(_ tenant: RegisteredTenant, _ last: Link, on tx: PostgresConnection) async throws {
        try await tx.query("""
            INSERT INTO auth.tenant_audit_checkpoints AS c (tenant_id, verified_seq, verified_hash)
            VALUES (\(tenant.id), \(last.seq), \(last.hash))
            ON CONFLICT (tenant_id) DO UPDATE SET
                verified_seq = excluded.verified_seq, verified_hash = excluded.verified_hash, updated_at = now()
            WHERE c.verified_seq IS NULL OR c.verified_seq <= excluded.verified_seq
            """)
    }

    /// The columns the hash covers, rendered by PostgreSQL's built-ins exactly as the trigger
    /// renders them (schema-qualified, so nothing of the tenant's can stand in for them).
    private static let rowColumns = """
        id, seq, prev_hash, hash, actor, action, coalesce(target, '') AS target, details::text AS details,
        pg_catalog.to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at
        """

    private static func rows(_ tenant: RegisteredTenant, fromSeq: Int, limit: Int, on tx: PostgresConnection) async throws -> [Row] {
        try await tx.query("""
            SELECT \(unescaped: rowColumns) FROM \(identifier: tenant.schema).audit_log
            WHERE seq >= \(fromSeq) ORDER BY seq LIMIT \(limit)
            """).map(Self.row)
    }

    private static func row(_ tenant: RegisteredTenant, seq: Int, on tx: PostgresConnection) async throws -> Row? {
        try await tx.query("SELECT \(unescaped: rowColumns) FROM \(identifier: tenant.schema).audit_log WHERE seq = \(seq)")
            .first.map(Self.row)
    }

    private static func row(_ row: PostgresRow) throws -> Row {
        Row(id: try row.decode("id"), seq: try row.decode("seq"), prevHash: try row.decode("prev_hash"), hash: try row.decode("hash"),
            occurredAt: try row.decode("occurred_at"), actor: try row.decode("actor"), action: try row.decode("action"),
            target: try row.decode("target") ?? "", details: try row.decode("details"))
    }
}
