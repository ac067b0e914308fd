-- How many sockets each live replica holds per tenant, written on every beat: a tenant's cap on
-- concurrent sockets (max_concurrent_users) counts its sockets on every replica, not one.
CREATE TABLE replica_sockets (
    replica_id  uuid    NOT NULL REFERENCES replicas (id) ON DELETE CASCADE,
    tenant_id   uuid    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sockets     integer NOT NULL CHECK (sockets > 0),
    PRIMARY KEY (replica_id, tenant_id)
);
CREATE INDEX replica_sockets_tenant ON replica_sockets (tenant_id);

-- Channels idle longer than the replay window with nothing retained are removed by the upkeep;
-- this index finds them.
CREATE INDEX channels_idle ON channels (updated_at);
