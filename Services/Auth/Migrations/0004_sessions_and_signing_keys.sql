-- Developer sessions: ES256 signing keys (rotatable), sessions, and rotating refresh tokens.

-- The key that signs access tokens (exactly one without retired_at) and the retired ones that
-- still verify tokens they signed until those expire.
CREATE TABLE signing_keys (
    kid              text        PRIMARY KEY,
    private_key_pem  text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    retired_at       timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;

-- One sign-in; also the family of its refresh tokens (reuse of a rotated token revokes it).
CREATE TABLE sessions (
    id              uuid        PRIMARY KEY,
    developer_id    uuid        NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoked_reason  text
);
CREATE INDEX sessions_live_by_developer ON sessions (developer_id) WHERE revoked_at IS NULL;

-- Opaque refresh tokens, stored as SHA-256 only; each use marks the token used and issues its
-- child.
CREATE TABLE refresh_tokens (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id    uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_sha256  text        NOT NULL UNIQUE,
    parent_id     bigint      REFERENCES refresh_tokens (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    used_at       timestamptz
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
