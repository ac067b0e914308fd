-- Auth's witness of each tenant's audit chain, kept outside the tenant's schema where the
-- tenant's role cannot reach it (auth's schema; the tenant's role has no privilege here).
--
-- The tenant's role owns its `audit_log`, so it can lift the append-only trigger, rewrite a row
-- and recompute every hash after it: the chain alone then still verifies. What it cannot
-- rewrite is this row: the hash of the last entry auth appended (`head_*`, updated in the same
-- transaction as each append), and of the last entry a verification reached (`verified_*`).
-- A recomputed chain no longer ends in the hash auth holds, which `audit/verify` reports.
--
-- `diverged_seq`: set (once, never cleared by auth) when an append found that the chain no
-- longer continued from auth's head: the row before the new one was not the one auth appended
-- last, so someone else rewrote or added entries in between. An append must not carry a
-- rewritten history forward as if auth had seen it, so the break is recorded here for good.
CREATE TABLE tenant_audit_checkpoints (
    tenant_id      uuid        PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    head_seq       bigint,
    head_hash      text,
    verified_seq   bigint,
    verified_hash  text,
    diverged_seq   bigint,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_audit_checkpoints_head CHECK ((head_seq IS NULL) = (head_hash IS NULL)),
    CONSTRAINT tenant_audit_checkpoints_verified CHECK ((verified_seq IS NULL) = (verified_hash IS NULL))
);
