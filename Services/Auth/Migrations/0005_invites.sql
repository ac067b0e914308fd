-- Invites: single use, expiring, for one email; the token is stored as SHA-256 only.
CREATE TABLE invites (
    id                uuid        PRIMARY KEY,
    email_normalized  text        NOT NULL,
    token_sha256      text        NOT NULL UNIQUE,
    -- NULL when an operator created it (how the first developer of an invite-only platform joins)
    invited_by        uuid        REFERENCES developers (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    accepted_at       timestamptz,
    accepted_by       uuid        REFERENCES developers (id) ON DELETE SET NULL
);
