-- The orchestrator instance that last claimed each execution (its lease owner: host/pid/random).
-- lease_owner names the holder only while the lease runs and is cleared when the execution ends
-- or is handed back; this stays, so operators (and the two-instance test) can see which
-- instance ran which execution.
ALTER TABLE workflow_executions ADD COLUMN claimed_by text;
