-- child_salt: set when a token is first used; its child is HMAC-SHA256(the token, the salt), so
-- the same token presented again inside the reuse grace window answers the same child, while
-- only SHA-256 of tokens is stored (see SessionStore.refresh).
ALTER TABLE refresh_tokens ADD COLUMN child_salt text;
