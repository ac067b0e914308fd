-- API key rotation: a workflow of its own (`rotate_keys`) that mints a project's next key set,
-- makes it active in auth beside the current one, waits out a grace period in which either set
-- works, then revokes the old set and makes the new one the project's.

ALTER TABLE workflow_executions DROP CONSTRAINT workflow_executions_kind_check;
ALTER TABLE workflow_executions ADD CONSTRAINT workflow_executions_kind_check
    CHECK (kind IN ('provision', 'deprovision', 'rotate_keys'));

-- The rotation in progress of a project (one at most: one open execution per project), kept
-- until it ends: the next set as hashes, the set it replaces, and when the grace period ends
-- (set once the next set is active in auth). The readable next keys wait in api_key_reveals.
-- Written when the rotation starts; removed when the new set becomes the project's.
CREATE TABLE api_key_rotations (
    execution_id        uuid        PRIMARY KEY REFERENCES workflow_executions (id) ON DELETE CASCADE,
    project_id          uuid        NOT NULL UNIQUE REFERENCES projects (id) ON DELETE CASCADE,
    grace_seconds       integer     NOT NULL CHECK (grace_seconds BETWEEN 0 AND 2592000),
    -- The next set: NULL until mint_keys has run (and again after a failed rotation undid it).
    publishable_id      uuid,
    publishable_prefix  text,
    publishable_sha256  text,
    secret_id           uuid,
    secret_prefix       text,
    secret_sha256       text,
    stored_at           timestamptz,
    grace_until         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_key_rotations_set_whole CHECK (num_nulls(publishable_id, publishable_prefix, publishable_sha256,
                                                            secret_id, secret_prefix, secret_sha256) IN (0, 6)),
    CONSTRAINT api_key_rotations_grace_once_stored CHECK ((stored_at IS NULL) = (grace_until IS NULL))
);
