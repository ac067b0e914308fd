-- Projects and the durable provisioning saga's state.

CREATE TABLE projects (
    id          uuid        PRIMARY KEY,
    slug        text        NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9_]{2,39}$'),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    owner_id    uuid        NOT NULL,
    status      text        NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'ready', 'failed', 'deprovisioning', 'deleted')),
    is_active   boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- A project is active exactly when it is ready.
    CONSTRAINT projects_active_iff_ready CHECK (is_active = (status = 'ready'))
);

CREATE TABLE workflow_executions (
    id               uuid        PRIMARY KEY,
    project_id       uuid        NOT NULL REFERENCES projects (id),
    kind             text        NOT NULL CHECK (kind IN ('provision', 'deprovision')),
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'compensating', 'succeeded', 'failed')),
    attempt          integer     NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    -- Lease: the orchestrator instance running it, and until when (renewed by heartbeat).
    lease_owner      text,
    lease_expires_at timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- One open execution per project at a time.
CREATE UNIQUE INDEX workflow_executions_one_open_per_project
    ON workflow_executions (project_id) WHERE status IN ('pending', 'running', 'compensating');
CREATE INDEX workflow_executions_claimable
    ON workflow_executions (lease_expires_at) WHERE status IN ('pending', 'running', 'compensating');

CREATE TABLE provisioning_steps (
    execution_id uuid        NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    step         text        NOT NULL,
    position     integer     NOT NULL,
    status       text        NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'compensating', 'compensated')),
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text,
    output       jsonb,
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (execution_id, step)
);
