-- A new tenant's API keys, kept readable only until the owner's first read of the project
-- (then deleted: they exist nowhere else in readable form; auth holds only their hashes).
CREATE TABLE api_key_reveals (
    project_id      uuid        PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    publishable_id  uuid        NOT NULL,
    publishable     text        NOT NULL,
    secret_id       uuid        NOT NULL,
    secret          text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The saga reads its steps in order.
CREATE INDEX provisioning_steps_by_position ON provisioning_steps (execution_id, position);
CREATE INDEX workflow_executions_by_project ON workflow_executions (project_id, created_at DESC);
