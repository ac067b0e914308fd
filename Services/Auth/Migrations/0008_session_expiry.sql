-- Sessions end: after an absolute lifetime (SESSION_TIMEBOX_SECONDS, from started_at), after
-- inactivity (SESSION_INACTIVITY_TIMEOUT_SECONDS, from refreshed_at), and refresh tokens expire
-- (REFRESH_TOKEN_TTL_SECONDS, from issued_at). These three instants are auth's clock (as access
-- tokens' iat/exp are), not the database's; the limits are applied when a token is presented,
-- so a changed setting applies to sessions already open. Auth always sets them; the database's
-- now() is only the default for a row written by hand (an operator's, the contract fixtures').
ALTER TABLE sessions
    ADD COLUMN started_at   timestamptz,
    ADD COLUMN refreshed_at timestamptz;
UPDATE sessions s SET
    started_at = s.created_at,
    refreshed_at = coalesce((SELECT max(r.created_at) FROM refresh_tokens r WHERE r.session_id = s.id), s.created_at);
ALTER TABLE sessions
    ALTER COLUMN started_at SET NOT NULL, ALTER COLUMN started_at SET DEFAULT now(),
    ALTER COLUMN refreshed_at SET NOT NULL, ALTER COLUMN refreshed_at SET DEFAULT now();

-- child_salt: set when a token is first used; its child is HMAC-SHA256(the token, the salt), so
-- the same token presented again inside the reuse grace window answers the same child, while
-- only SHA-256 of tokens is stored (see SessionStore.refresh).
ALTER TABLE refresh_tokens
    ADD COLUMN issued_at  timestamptz,
    ADD COLUMN child_salt text;
UPDATE refresh_tokens SET issued_at = created_at;
ALTER TABLE refresh_tokens ALTER COLUMN issued_at SET NOT NULL, ALTER COLUMN issued_at SET DEFAULT now();
