-- Lifecycle webhooks: developers' endpoints and the deliveries owed to them (an outbox).
--
-- A delivery is written by a trigger in the transaction that moves a project to `ready`,
-- `failed` or `deleted`, one per subscribed endpoint of the project's owner, so no event is lost
-- (the change and its deliveries commit together) or invented (a change rolled back takes its
-- deliveries with it). Its payload is fixed when it is written: every attempt sends the same
-- bytes under the same `webhook-id`.

CREATE TABLE webhook_endpoints (
    id                    uuid        PRIMARY KEY,
    owner_id              uuid        NOT NULL,
    url                   text        NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    -- The Standard Webhooks signing secret (`whsec_` + base64 of 32 random bytes), shown to
    -- the developer once, when the endpoint is made.
    secret                text        NOT NULL CHECK (secret LIKE 'whsec\_%'),
    events                text[]      NOT NULL CHECK (cardinality(events) >= 1 AND events <@ ARRAY[
                              'project.ready', 'project.failed', 'project.deleted', 'project.keys_rotated']),
    -- Failed attempts in a row; at the limit the endpoint is disabled with the reason.
    consecutive_failures  integer     NOT NULL DEFAULT 0,
    disabled_at           timestamptz,
    disabled_reason       text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_endpoints_reason_iff_disabled CHECK ((disabled_at IS NULL) = (disabled_reason IS NULL))
);
CREATE INDEX webhook_endpoints_by_owner ON webhook_endpoints (owner_id, created_at);

CREATE TABLE webhook_deliveries (
    -- Sent as `webhook-id`: the same on every attempt and redelivery of this delivery.
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id      uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    project_id       uuid        NOT NULL,
    event_type       text        NOT NULL,
    -- The exact JSON every attempt sends.
    payload          text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    -- When the next attempt is due; while an attempt runs, when its claim lapses.
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at DESC);

-- Writes the deliveries of one lifecycle event (`project.ready`, …) of a project: one per
-- enabled endpoint of its owner subscribed to it, the payload in the Standard Webhooks shape
-- (`type`, `timestamp`, `data`); wakes the dispatchers.
CREATE FUNCTION enqueue_webhooks(p_project uuid, p_type text, p_data jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    owner uuid;
    written integer;
BEGIN
    SELECT owner_id INTO owner FROM provisioning.projects WHERE id = p_project;
    INSERT INTO provisioning.webhook_deliveries (endpoint_id, project_id, event_type, payload)
    SELECT e.id, p_project, p_type, jsonb_build_object(
               'type', p_type,
               'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
               'data', p_data)::text
    FROM provisioning.webhook_endpoints e
    WHERE e.owner_id = owner AND e.disabled_at IS NULL AND p_type = ANY (e.events);
    GET DIAGNOSTICS written = ROW_COUNT;
    IF written > 0 THEN
        PERFORM pg_notify('provisioning_webhooks', '');
    END IF;
END
$$;

-- A project that came to rest in `ready`, `failed` or `deleted`: its lifecycle event carries the
-- project and the status event just recorded (migration 7's trigger fires first: triggers run in
-- name order), so a failure names the failing step and its error here too.
CREATE FUNCTION project_webhook_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    event jsonb;
BEGIN
    SELECT data INTO event FROM provisioning.project_events WHERE project_id = NEW.id ORDER BY seq DESC LIMIT 1;
    PERFORM provisioning.enqueue_webhooks(NEW.id, 'project.' || NEW.status, jsonb_strip_nulls(jsonb_build_object(
        'project_id', NEW.id,
        'slug', NEW.slug,
        'name', NEW.name,
        'status', NEW.status,
        'workflow_id', event->'workflow_id',
        'failed_step', event->'failed_step',
        'error', event->'error'
    )));
    RETURN NULL;
END
$$;

CREATE TRIGGER project_webhook_event AFTER UPDATE OF status ON projects
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('ready', 'failed', 'deleted'))
    EXECUTE FUNCTION project_webhook_event();
