-- Stripe-style idempotency keys for POST endpoints (ServiceKit's IdempotencyStore).
--
-- One row per (scope, key). It is claimed ('in_flight', with a fresh claim_id) before the
-- operation runs, so a concurrent duplicate sees it; when the operation answers, the answer is
-- stored ('completed') and every repeat with the same request gets it back. Only the claim's
-- owner (same claim_id) may complete or release it, so a process that was presumed dead and
-- taken over cannot overwrite the new owner's row. Rows older than the store's retention count
-- as absent and are purged, a few at a time, as new keys are claimed in the same scope.

CREATE TABLE idempotency_keys (
    -- What the key is unique within, e.g. 'POST /internal/v1/projects'.
    scope                 text        NOT NULL CHECK (length(scope) BETWEEN 1 AND 200),
    key                   text        NOT NULL CHECK (key ~ '^[!-~]{1,255}$'),
    -- Hex SHA-256 of method, path and body: a repeat must be the same request.
    fingerprint           text        NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    state                 text        NOT NULL DEFAULT 'in_flight' CHECK (state IN ('in_flight', 'completed')),
    claim_id              uuid        NOT NULL,
    response_status       integer     CHECK (response_status BETWEEN 100 AND 599),
    response_body         bytea,
    response_content_type text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    completed_at          timestamptz,
    PRIMARY KEY (scope, key),
    -- A completed row carries its whole answer; an in-flight one carries none.
    CONSTRAINT idempotency_keys_response_iff_completed CHECK (
        (state = 'completed') = (response_status IS NOT NULL AND response_body IS NOT NULL
                                 AND response_content_type IS NOT NULL AND completed_at IS NOT NULL)
        AND (state = 'completed' OR (response_status IS NULL AND response_body IS NULL
                                     AND response_content_type IS NULL AND completed_at IS NULL))
    )
);

-- The purge walks a scope's oldest rows.
CREATE INDEX idempotency_keys_scope_created_at ON idempotency_keys (scope, created_at);
