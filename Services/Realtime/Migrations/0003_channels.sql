-- Broadcast channels: each (tenant, public/private, topic) numbers its messages 1, 2, 3, …
-- (`last_seq`); `channel_messages` keeps the latest of them for replay, bounded by count and
-- age (REALTIME_REPLAY_MESSAGES, REALTIME_REPLAY_SECONDS). A channel row outlives its messages
-- so that its numbering never restarts while clients may still hold a number of it.
CREATE TABLE channels (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    private     boolean     NOT NULL,
    topic       text        NOT NULL,
    last_seq    bigint      NOT NULL CHECK (last_seq > 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, private, topic)
);

CREATE TABLE channel_messages (
    tenant_id   uuid        NOT NULL,
    private     boolean     NOT NULL,
    topic       text        NOT NULL,
    seq         bigint      NOT NULL,
    event       text        NOT NULL,
    -- The message's JSON payload, as text.
    payload     text        NOT NULL,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, private, topic, seq),
    FOREIGN KEY (tenant_id, private, topic) REFERENCES channels ON DELETE CASCADE
);
CREATE INDEX channel_messages_age ON channel_messages (inserted_at);

-- The realtime replicas alive now: each beats every few seconds; presences of a replica that
-- stopped beating are removed by the others (with a leave to every subscriber).
CREATE TABLE replicas (
    id           uuid        PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Who is present on which channel: one row per tracked connection and channel (`ref` is the
-- `phx_ref` clients see), owned by the replica holding the connection.
CREATE TABLE presences (
    ref         text        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    private     boolean     NOT NULL,
    topic       text        NOT NULL,
    key         text        NOT NULL,
    -- The tracked state, a JSON object as text.
    meta        text        NOT NULL,
    replica_id  uuid        NOT NULL REFERENCES replicas (id) ON DELETE CASCADE,
    tracked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX presences_topic ON presences (tenant_id, private, topic);
CREATE INDEX presences_replica ON presences (replica_id);
